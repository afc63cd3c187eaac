-- The serialised part of an append, in one call: no round trip to the client while the
-- log's lock is held. The store checks a group (idempotency keys, ids, claim targets)
-- before it takes the lock, against what the log held then (group_lookups); this
-- function takes the lock, makes sure no event of the group lost its key to an append
-- that committed since (the one check that can turn from pass to fail: the log only
-- grows, so an id or an event found stays found), and inserts the group after the head.
--
-- One transaction-scoped lock serialises every append, so positions are taken and
-- committed in one order: a reader paging with `after` never sees position N+1 before N
-- has committed. Called outside a transaction block, the statement is its transaction:
-- the lock is released at its commit. VOLATILE, so each statement below reads what was
-- committed when it started: after the lock, everything the previous append committed.
--
-- Answers the position the group was inserted after and its recorded_at (which never
-- goes backwards, even if the clock does, so "known at K" and "as of P" agree); or no
-- row, having inserted nothing, when a key was taken since the check: the store checks
-- the group again, and that key is then a replay or a 409.
--
-- The events come as column arrays (one round trip, whatever the group's size); their
-- positions are the head plus 1, 2, ... in array order. The ids new to the log come
-- with the offset of the event that first names them; ON CONFLICT keeps the first
-- position of an id that an append since has introduced.
CREATE FUNCTION append_group(
    event_ids uuid[], types text[], versions int[], datas text[], statuses text[],
    sources text[], keys text[], hashes bytea[], fact_keys text[], key_names text[],
    entity_kinds text[], entity_ids text[], entity_offsets bigint[]
) RETURNS TABLE (head bigint, recorded_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    at timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(7201940021);
    IF EXISTS (SELECT FROM events AS e WHERE e.idempotency_key = ANY(keys)) THEN
        RETURN;
    END IF;
    SELECT e.position, e.recorded_at INTO head, at FROM events AS e ORDER BY e.position DESC LIMIT 1;
    head := coalesce(head, 0);
    at := greatest(clock_timestamp(), at);  -- greatest() skips the NULL of an empty log
    INSERT INTO events (position, event_id, type, schema_version, data, status, source,
                        idempotency_key, content_hash, fact_key, api_key_name, recorded_at)
    SELECT head + u.n, u.e, u.t, u.v, u.d::jsonb, u.s, u.src::jsonb, u.k, u.h, u.f, u.a, at
    FROM unnest(event_ids, types, versions, datas, statuses, sources, keys, hashes,
                fact_keys, key_names) WITH ORDINALITY AS u(e, t, v, d, s, src, k, h, f, a, n);
    INSERT INTO entities (kind, id, first_position)
    SELECT u.kind, u.id, head + u.n
    FROM unnest(entity_kinds, entity_ids, entity_offsets) AS u(kind, id, n)
    ON CONFLICT DO NOTHING;
    recorded_at := at;
    RETURN NEXT;
END;
$$;
