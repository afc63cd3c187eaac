-- begin_append --
-- One transaction-scoped advisory lock serialises every append: positions are taken
-- and committed in one order, so a reader paging with `after` never sees position
-- N+1 before N has committed. Released by COMMIT or ROLLBACK, never leaked. The
-- transaction begins with it in one round trip (a query without parameters may hold two
-- statements): appends are serialised, so each round trip under the lock is one that
-- every writer waits for.
BEGIN; SELECT pg_advisory_xact_lock(7201940021)

-- group_lookups --
-- Everything an append is checked against, in one round trip, by one statement after
-- begin_append (a statement reads what was committed when it started: taken with the
-- lock, it could miss the append that held the lock before). One row shape, told apart by
-- `what`:
-- 'head': the last position, and the time to record at: recorded_at never goes
--         backwards, even if the clock does, so "known at K" and "as of P" agree;
-- 'key': the stored events holding the group's idempotency keys (replay, or 409);
-- 'entity': the person and org ids the log knows (an unknown id needs a name);
-- 'event': the stored events the group's claims name.
SELECT 'head' AS what, NULL AS id, NULL AS kind, NULL::uuid AS event_id,
       coalesce(max(position), 0) AS position,
       greatest(clock_timestamp(), (SELECT recorded_at FROM events ORDER BY position DESC LIMIT 1))
           AS recorded_at,
       NULL::bytea AS content_hash
FROM events
UNION ALL
SELECT 'key', idempotency_key, NULL, event_id, position, recorded_at, content_hash
FROM events WHERE idempotency_key = ANY($1::text[])
UNION ALL
SELECT 'entity', id, kind, NULL, NULL, NULL, NULL
FROM entities WHERE (kind, id) IN (SELECT * FROM unnest($2::text[], $3::text[]))
UNION ALL
SELECT 'event', NULL, NULL, event_id, NULL, NULL, NULL
FROM events WHERE event_id = ANY($4::uuid[])

-- events_after --
SELECT position, event_id, type, schema_version, data::text AS data, status,
       source::text AS source, idempotency_key, fact_key, recorded_at
FROM events
WHERE position > $1 AND position <= $2 AND ($3::text[] IS NULL OR type = ANY($3::text[]))
ORDER BY position
LIMIT $4

-- event_by_id --
SELECT position, event_id, type, schema_version, data::text AS data, status,
       source::text AS source, idempotency_key, fact_key, recorded_at
FROM events WHERE event_id = $1

-- head_position --
SELECT coalesce(max(position), 0) FROM events

-- key_by_hash --
SELECT name, scope FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL

-- key_create --
INSERT INTO api_keys (name, key_hash, scope) VALUES ($1, $2, $3)

-- key_list --
SELECT name, scope, created_at, revoked_at FROM api_keys ORDER BY name

-- key_revoke --
UPDATE api_keys SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL RETURNING name

-- insert_events --
-- One statement for the whole group: unnest turns the column arrays back into rows,
-- which costs one round trip instead of one per event. api_key_name is an array too:
-- the events of one group come from several requests, each with its own key. The ids
-- new to the log go in by the same statement (a data-modifying WITH runs whether or not
-- the outer query reads it), once each, with the position that first mentions them.
-- ON CONFLICT DO NOTHING is only a backstop: under the lock, the store inserts only ids
-- that group_lookups did not find.
WITH new_events AS (
    INSERT INTO events (position, event_id, type, schema_version, data, status, source,
                        idempotency_key, content_hash, fact_key, api_key_name, recorded_at)
    SELECT p, e, t, v, d::jsonb, s, src::jsonb, k, h, f, n, $12
    FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::int[], $5::text[], $6::text[],
                $7::text[], $8::text[], $9::bytea[], $10::text[], $11::text[])
        AS u(p, e, t, v, d, s, src, k, h, f, n)
)
INSERT INTO entities (kind, id, first_position)
SELECT * FROM unnest($13::text[], $14::text[], $15::bigint[])
ON CONFLICT DO NOTHING

-- stream_page --
-- A page of the live feed (GET /events/stream): the log's head, and the events after $1
-- up to it (of the types $2; NULL: all), at most $3, in position order, in one snapshot.
-- With a type filter, a page of fewer than $3 events has looked at every position up to
-- the head, so the feed moves its cursor there; a log with nothing new still gives one
-- row, with the head and no event.
WITH head AS (SELECT coalesce(max(position), 0) AS position FROM events)
SELECT head.position AS head, e.*
FROM head
LEFT JOIN LATERAL (
    SELECT position, event_id, type, schema_version, data::text AS data, status,
           source::text AS source, idempotency_key, fact_key, recorded_at
    FROM events
    WHERE position > $1 AND position <= head.position AND ($2::text[] IS NULL OR type = ANY($2::text[]))
    ORDER BY position
    LIMIT $3
) AS e ON true
ORDER BY e.position
