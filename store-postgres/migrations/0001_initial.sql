-- Recount's PostgreSQL schema, version 1.
--
-- This file names no schema: `PgEventStore::migrate` runs it on a connection whose
-- `search_path` is the configured schema alone, so every object lands there, and the functions
-- capture that schema with `SET search_path FROM CURRENT`.

-- One row per stream ever written or deleted. `version` is the stream's current version;
-- a tombstone keeps its version and sets `deleted` (store contract, item 8).
CREATE TABLE streams (
    stream_id text PRIMARY KEY,
    category  text NOT NULL,
    version   bigint NOT NULL,
    deleted   boolean NOT NULL DEFAULT false
);

-- The events. Payload and metadata are `json` (validated text, returned as stored, never
-- re-encoded on read); the ids that are queried live in their own columns.
--
-- The global log is ordered by (transaction_id, global_position): a reader only takes rows
-- whose transaction is older than every transaction still running, so a transaction that drew
-- positions and commits late can never be skipped (store contract, item 5).
CREATE TABLE events (
    global_position bigint GENERATED ALWAYS AS IDENTITY,
    transaction_id  xid8 NOT NULL DEFAULT pg_current_xact_id(),
    stream_id       text NOT NULL,
    stream_version  bigint NOT NULL,
    category        text NOT NULL,
    event_id        uuid NOT NULL,
    event_type      text NOT NULL,
    schema_version  integer NOT NULL,
    payload         json NOT NULL,
    metadata        json NOT NULL,
    correlation_id  uuid,
    causation_id    uuid,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_log_order PRIMARY KEY (transaction_id, global_position),
    CONSTRAINT events_stream_version UNIQUE (stream_id, stream_version),
    CONSTRAINT events_event_id UNIQUE (event_id)
);

-- Filtered log reads (store contract, item 6).
CREATE INDEX events_by_category ON events (category, transaction_id, global_position);
CREATE INDEX events_by_type ON events (event_type, transaction_id, global_position);
-- Tracing a request or a cause (only rows that carry one are indexed).
CREATE INDEX events_by_correlation ON events (correlation_id) WHERE correlation_id IS NOT NULL;
CREATE INDEX events_by_causation ON events (causation_id) WHERE causation_id IS NOT NULL;

-- The newest snapshot per stream (store contract, item 9).
CREATE TABLE snapshots (
    stream_id text PRIMARY KEY,
    version   bigint NOT NULL,
    tag       text NOT NULL,
    state     text NOT NULL
);

-- Named cursors (store contract, item 10). A cursor's two u64 parts are stored bit for bit
-- in signed columns.
CREATE TABLE checkpoints (
    name       text PRIMARY KEY,
    major      bigint NOT NULL,
    minor      bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Whether the ids of an append are an exact retry of one already stored (store contract,
-- item 4). Returns a NULL outcome when none of the ids is stored; outcome 1 with the original
-- result when all are stored in `p_stream`, in order, contiguous; otherwise outcome 4 naming
-- the first stored id.
CREATE FUNCTION classify_retry(p_stream text, p_ids uuid[],
    OUT outcome integer, OUT stream_version bigint, OUT transaction_id xid8,
    OUT global_position bigint, OUT event_id uuid)
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT AS $$
DECLARE
    v_found integer := 0;
    v_exact boolean := true;
    v_first_version bigint;
    v_first_id uuid;
    r record;
BEGIN
    FOR r IN
        SELECT u.ord, e.event_id AS id, e.stream_id AS sid, e.stream_version AS ver,
               e.transaction_id AS tx, e.global_position AS pos
        FROM unnest(p_ids) WITH ORDINALITY AS u(id, ord)
        JOIN events e ON e.event_id = u.id
        ORDER BY u.ord
    LOOP
        v_found := v_found + 1;
        IF v_first_id IS NULL THEN
            v_first_id := r.id;
            v_first_version := r.ver - (r.ord - 1);
        END IF;
        IF r.sid <> p_stream OR r.ver <> v_first_version + (r.ord - 1) THEN
            v_exact := false;
        END IF;
        stream_version := r.ver;
        transaction_id := r.tx;
        global_position := r.pos;
    END LOOP;
    IF v_found = 0 THEN
        RETURN;
    END IF;
    IF v_exact AND v_found = cardinality(p_ids) THEN
        outcome := 1;
        event_id := NULL;
    ELSE
        outcome := 4;
        event_id := v_first_id;
        stream_version := NULL;
        transaction_id := NULL;
        global_position := NULL;
    END IF;
END;
$$;

-- Appends a batch to one stream in one call (store contract, items 1–4).
--
-- p_expected: -1 any, -2 the stream exists, n >= 0 exactly version n (0: no stream).
-- outcome: 0 written, 1 an exact retry (the original result, nothing written), 2 version
-- conflict (stream_version is the actual version), 3 the stream is deleted, 4 duplicate id
-- (event_id names it).
--
-- A per-stream advisory lock is taken before anything else. It serializes the writers of one
-- stream (never of different streams, short of a hash collision) *before* their transaction
-- is given an id, so within a stream a later version always has a later transaction id and
-- the log order (transaction_id, global_position) agrees with version order. Call it as the
-- first write of its transaction.
--
-- The version check happens before any global position is drawn. A stored event id makes
-- the insert fail with unique_violation; the caller then asks `classify_retry`.
CREATE FUNCTION append_events(
    p_stream text, p_category text, p_expected bigint,
    p_ids uuid[], p_types text[], p_schema_versions integer[],
    p_payloads text[], p_metadata text[], p_correlation_ids uuid[], p_causation_ids uuid[],
    OUT outcome integer, OUT stream_version bigint, OUT transaction_id xid8,
    OUT global_position bigint, OUT event_id uuid)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_count bigint := cardinality(p_ids);
    v_before bigint;
    v_deleted boolean;
BEGIN
    PERFORM pg_advisory_xact_lock(1919250021, hashtext(p_stream));
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

-- Tombstones a stream (store contract, item 8) under the same per-stream lock as appends.
-- outcome: 0 deleted, 2 version conflict (stream_version is the actual version), 3 already
-- deleted.
CREATE FUNCTION delete_stream(p_stream text, p_category text, p_expected bigint,
    OUT outcome integer, OUT stream_version bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_deleted boolean;
BEGIN
    PERFORM pg_advisory_xact_lock(1919250021, hashtext(p_stream));
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
