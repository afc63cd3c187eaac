-- group_lookups --
-- Everything an append is checked against, in one round trip, by one statement, before
-- the log's lock is taken (append_group, under the lock, catches the one thing an append
-- committed since can change: a key taken). One row shape, told apart by `what`:
-- 'head': the last position, and the time an append now would record at: the group's
--         provisional place;
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

-- append_group --
-- The group's events and the ids new to the log, inserted after the head under the
-- log's lock (migration 0007): no row if a key of theirs was stored since group_lookups.
SELECT head, recorded_at FROM append_group($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)

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
