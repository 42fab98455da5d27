-- Recount's PostgreSQL schema, version 2: a single-event append that takes scalars.
--
-- Most appends carry one event. `append_event` is `append_events` for exactly one event, with
-- the same lock, the same checks in the same order and the same outcomes, but it binds plain
-- values instead of ten one-element arrays and inserts with a single-row `VALUES` instead of
-- `unnest`: less work for the client and the server on the hottest path. Like every function
-- here it names no schema and captures the migration's with `SET search_path FROM CURRENT`.

-- Appends one event to one stream (store contract, items 1–4); outcomes as `append_events`.
--
-- The per-stream advisory lock comes first, before any write gives the transaction an id, so
-- within a stream a later version always has a later transaction id (see `append_events`).
-- A stored event id makes the insert fail with unique_violation; the caller then asks
-- `classify_retry`.
CREATE FUNCTION append_event(
    p_stream text, p_category text, p_expected bigint,
    p_id uuid, p_type text, p_schema_version integer,
    p_payload text, p_metadata text, p_correlation_id uuid, p_causation_id uuid,
    OUT outcome integer, OUT stream_version bigint, OUT transaction_id xid8,
    OUT global_position bigint, OUT event_id uuid)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_before bigint;
    v_deleted boolean;
BEGIN
    PERFORM pg_advisory_xact_lock(1919250021, hashtext(p_stream));
    IF p_expected > 0 THEN
        UPDATE streams AS s SET version = s.version + 1
        WHERE s.stream_id = p_stream AND s.version = p_expected AND NOT s.deleted
        RETURNING p_expected INTO v_before;
    ELSIF p_expected = 0 THEN
        INSERT INTO streams AS s (stream_id, category, version)
        VALUES (p_stream, p_category, 1)
        ON CONFLICT (stream_id) DO NOTHING
        RETURNING 0 INTO v_before;
    ELSIF p_expected = -2 THEN
        UPDATE streams AS s SET version = s.version + 1
        WHERE s.stream_id = p_stream AND s.version > 0 AND NOT s.deleted
        RETURNING s.version - 1 INTO v_before;
    ELSE
        INSERT INTO streams AS s (stream_id, category, version)
        VALUES (p_stream, p_category, 1)
        ON CONFLICT (stream_id) DO UPDATE SET version = s.version + 1
            WHERE NOT s.deleted
        RETURNING s.version - 1 INTO v_before;
    END IF;

    IF v_before IS NULL THEN
        -- Nothing written: the stream is deleted, the append is a retry, or a conflict.
        SELECT s.version, s.deleted INTO stream_version, v_deleted
        FROM streams s WHERE s.stream_id = p_stream;
        IF v_deleted THEN
            outcome := 3;
            RETURN;
        END IF;
        SELECT * INTO outcome, stream_version, transaction_id, global_position, event_id
        FROM classify_retry(p_stream, ARRAY[p_id]) c
        WHERE c.outcome IS NOT NULL;
        IF FOUND THEN
            RETURN;
        END IF;
        SELECT s.version INTO stream_version FROM streams s WHERE s.stream_id = p_stream;
        outcome := 2;
        stream_version := coalesce(stream_version, 0);
        RETURN;
    END IF;

    INSERT INTO events AS e (stream_id, stream_version, category, event_id, event_type,
        schema_version, payload, metadata, correlation_id, causation_id)
    VALUES (p_stream, v_before + 1, p_category, p_id, p_type, p_schema_version,
        p_payload::json, p_metadata::json, p_correlation_id, p_causation_id)
    RETURNING e.transaction_id, e.global_position INTO transaction_id, global_position;

    outcome := 0;
    stream_version := v_before + 1;
END;
$$;
