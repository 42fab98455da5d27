-- Recount's PostgreSQL schema, version 3: the stream row's lock before any write.
--
-- The single-event append at an exact version of an existing stream (the common case) is sent
-- as one plain statement without the per-stream advisory lock (see `APPEND_EXACT` in
-- `src/queries.rs`). It gets its transaction id when its `UPDATE` of the stream row starts,
-- possibly before it waits for that row; but it only writes if the row is unchanged after the
-- wait, so whenever it writes, every earlier writer of the stream committed before it began
-- (with a smaller transaction id).
--
-- These functions keep the advisory lock, which orders them among themselves (and covers a
-- stream row that does not exist yet), and now lock the stream row right after it, before
-- anything can give their transaction an id. Locking a row assigns the id only once the lock
-- is granted, after every writer that held the row has ended, so a function call that writes
-- after a fast-path append always has the later transaction id: within a stream, log order
-- (transaction_id, global_position) stays version order. The new statement snapshot after the
-- lock also sees what that writer committed, so `delete_stream` checks the newest version.
--
-- The bodies are those of versions 1 and 2 with that one added statement, and with the
-- explanation of a refused append, which both append functions wrote out, in one function.

-- Why an append wrote nothing (its version check did not pass), with the outcomes of
-- `append_events`: 3 when the stream is deleted, else the exact retry (1) or duplicate id (4)
-- that `classify_retry` finds, else 2, a conflict, with the stream's actual version. Called
-- by both append functions under their locks.
CREATE FUNCTION append_refused(p_stream text, p_ids uuid[],
    OUT outcome integer, OUT stream_version bigint, OUT transaction_id xid8,
    OUT global_position bigint, OUT event_id uuid)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_deleted boolean;
BEGIN
    SELECT s.version, s.deleted INTO stream_version, v_deleted
    FROM streams s WHERE s.stream_id = p_stream;
    IF v_deleted THEN
        outcome := 3;
        RETURN;
    END IF;
    SELECT * INTO outcome, stream_version, transaction_id, global_position, event_id
    FROM classify_retry(p_stream, p_ids) c
    WHERE c.outcome IS NOT NULL;
    IF FOUND THEN
        RETURN;
    END IF;
    SELECT s.version INTO stream_version FROM streams s WHERE s.stream_id = p_stream;
    outcome := 2;
    stream_version := coalesce(stream_version, 0);
END;
$$;

CREATE OR REPLACE FUNCTION append_events(
    p_stream text, p_category text, p_expected bigint,
    p_ids uuid[], p_types text[], p_schema_versions integer[],
    p_payloads text[], p_metadata text[], p_correlation_ids uuid[], p_causation_ids uuid[],
    OUT outcome integer, OUT stream_version bigint, OUT transaction_id xid8,
    OUT global_position bigint, OUT event_id uuid)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_count bigint := cardinality(p_ids);
    v_before bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(1919250021, hashtext(p_stream));
    PERFORM FROM streams s WHERE s.stream_id = p_stream FOR NO KEY UPDATE;
    IF p_expected = 0 THEN
        INSERT INTO streams AS s (stream_id, category, version)
        VALUES (p_stream, p_category, v_count)
        ON CONFLICT (stream_id) DO NOTHING
        RETURNING 0 INTO v_before;
    ELSIF p_expected > 0 THEN
        UPDATE streams AS s SET version = s.version + v_count
        WHERE s.stream_id = p_stream AND s.version = p_expected AND NOT s.deleted
        RETURNING p_expected INTO v_before;
    ELSIF p_expected = -2 THEN
        UPDATE streams AS s SET version = s.version + v_count
        WHERE s.stream_id = p_stream AND s.version > 0 AND NOT s.deleted
        RETURNING s.version - v_count INTO v_before;
    ELSE
        INSERT INTO streams AS s (stream_id, category, version)
        VALUES (p_stream, p_category, v_count)
        ON CONFLICT (stream_id) DO UPDATE SET version = s.version + v_count
            WHERE NOT s.deleted
        RETURNING s.version - v_count INTO v_before;
    END IF;

    IF v_before IS NULL THEN
        -- Nothing written: the stream is deleted, the append is a retry, or a conflict.
        SELECT * INTO outcome, stream_version, transaction_id, global_position, event_id
        FROM append_refused(p_stream, p_ids);
        RETURN;
    END IF;

    INSERT INTO events (stream_id, stream_version, category, event_id, event_type,
        schema_version, payload, metadata, correlation_id, causation_id)
    SELECT p_stream, v_before + u.ord, p_category, u.id, u.event_type, u.schema_version,
        u.payload::json, u.metadata::json, u.correlation_id, u.causation_id
    FROM unnest(p_ids, p_types, p_schema_versions, p_payloads, p_metadata,
        p_correlation_ids, p_causation_ids)
        WITH ORDINALITY AS u(id, event_type, schema_version, payload, metadata,
            correlation_id, causation_id, ord);

    outcome := 0;
    stream_version := v_before + v_count;
    transaction_id := pg_current_xact_id();
    global_position := lastval();
END;
$$;

CREATE OR REPLACE FUNCTION append_event(
    p_stream text, p_category text, p_expected bigint,
    p_id uuid, p_type text, p_schema_version integer,
    p_payload text, p_metadata text, p_correlation_id uuid, p_causation_id uuid,
    OUT outcome integer, OUT stream_version bigint, OUT transaction_id xid8,
    OUT global_position bigint, OUT event_id uuid)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_before bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(1919250021, hashtext(p_stream));
    PERFORM FROM streams s WHERE s.stream_id = p_stream FOR NO KEY UPDATE;
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
        SELECT * INTO outcome, stream_version, transaction_id, global_position, event_id
        FROM append_refused(p_stream, ARRAY[p_id]);
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

CREATE OR REPLACE FUNCTION delete_stream(p_stream text, p_category text, p_expected bigint,
    OUT outcome integer, OUT stream_version bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_deleted boolean;
BEGIN
    PERFORM pg_advisory_xact_lock(1919250021, hashtext(p_stream));
    PERFORM FROM streams s WHERE s.stream_id = p_stream FOR NO KEY UPDATE;
    SELECT s.version, s.deleted INTO stream_version, v_deleted
    FROM streams s WHERE s.stream_id = p_stream;
    IF v_deleted THEN
        outcome := 3;
        RETURN;
    END IF;
    stream_version := coalesce(stream_version, 0);
    IF NOT (p_expected = -1 OR (p_expected = -2 AND stream_version > 0)
            OR p_expected = stream_version) THEN
        outcome := 2;
        RETURN;
    END IF;
    INSERT INTO streams AS s (stream_id, category, version, deleted)
    VALUES (p_stream, p_category, 0, true)
    ON CONFLICT (stream_id) DO UPDATE SET deleted = true;
    DELETE FROM snapshots s WHERE s.stream_id = p_stream;
    outcome := 0;
END;
$$;
