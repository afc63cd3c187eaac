-- lock_log --
-- One transaction-scoped advisory lock serialises every append: positions are taken
-- and committed in one order, so a reader paging with `after` never sees position
-- N+1 before N has committed. Released by COMMIT or ROLLBACK, never leaked.
SELECT pg_advisory_xact_lock(7201940021)

-- log_head --
-- Under the lock: the last position and its time. recorded_at never goes backwards,
-- even if the clock does, so "known at K" and "as of P" always agree.
SELECT coalesce(max(position), 0) AS position,
       greatest(clock_timestamp(), (SELECT recorded_at FROM events ORDER BY position DESC LIMIT 1))
           AS recorded_at
FROM events

-- find_by_idempotency_keys --
SELECT idempotency_key, event_id, position, recorded_at, content_hash
FROM events WHERE idempotency_key = ANY($1::text[])

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

-- events_by_ids --
SELECT event_id, type FROM events WHERE event_id = ANY($1::uuid[])

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

-- known_entities --
SELECT kind, id FROM entities WHERE (kind, id) IN (SELECT * FROM unnest($1::text[], $2::text[]))

-- insert_entities --
INSERT INTO entities (kind, id, first_position)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
ON CONFLICT DO NOTHING

-- insert_events --
-- One statement for the whole batch: unnest turns the column arrays back into rows,
-- which costs one round trip instead of one per event.
INSERT INTO events (position, event_id, type, schema_version, data, status, source,
                    idempotency_key, content_hash, fact_key, recorded_at, api_key_name)
SELECT p, e, t, v, d::jsonb, s, src::jsonb, k, h, f, $11, $12
FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::int[], $5::text[], $6::text[],
            $7::text[], $8::text[], $9::bytea[], $10::text[]) AS u(p, e, t, v, d, s, src, k, h, f)
