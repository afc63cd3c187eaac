-- Writing the bitemporal cache (service/projection.py). Rows arrive as one JSON array
-- per statement: jsonb_to_recordset turns it into typed rows in one round trip.
-- Closing a row sets the upper end of its position range: the row held until then.

-- insert_membership_rows --
INSERT INTO membership_rows
SELECT decode(r.row_key, 'hex'), r.person_id, r.org_id, r.role, r.title, r.start_value,
       r.start_earliest, r.start_latest, r.ended, r.end_value, r.end_earliest, r.end_latest,
       r.seg_from, r.seg_until, r.status, r.fact_key, r.sources, r.valid, r.positions
FROM jsonb_to_recordset($1::jsonb) AS r(
    row_key text, person_id text, org_id text, role text, title text, start_value text,
    start_earliest date, start_latest date, ended boolean, end_value text, end_earliest date,
    end_latest date, seg_from date, seg_until date, status text, fact_key text, sources jsonb,
    valid daterange, positions int8range)

-- close_membership_rows --
UPDATE membership_rows AS t SET positions = int8range(lower(t.positions), c.position)
FROM unnest($1::text[], $2::bytea[], $3::bigint[]) AS c(id, key, position)
WHERE t.person_id = c.id AND t.row_key = c.key AND upper_inf(t.positions)

-- insert_move_rows --
INSERT INTO move_rows
SELECT decode(r.row_key, 'hex'), r.person_id, r.from_org_id, r.to_org_id, r.on_value,
       r.on_earliest, r.on_latest, r.sources, r.positions
FROM jsonb_to_recordset($1::jsonb) AS r(
    row_key text, person_id text, from_org_id text, to_org_id text, on_value text,
    on_earliest date, on_latest date, sources jsonb, positions int8range)

-- close_move_rows --
UPDATE move_rows AS t SET positions = int8range(lower(t.positions), c.position)
FROM unnest($1::text[], $2::bytea[], $3::bigint[]) AS c(id, key, position)
WHERE t.person_id = c.id AND t.row_key = c.key AND upper_inf(t.positions)

-- insert_person_rows --
INSERT INTO person_rows
SELECT decode(r.row_key, 'hex'), r.person_id, r.name, r.aliases, r.positions
FROM jsonb_to_recordset($1::jsonb) AS r(
    row_key text, person_id text, name text, aliases jsonb, positions int8range)

-- close_person_rows --
UPDATE person_rows AS t SET positions = int8range(lower(t.positions), c.position)
FROM unnest($1::text[], $2::bytea[], $3::bigint[]) AS c(id, key, position)
WHERE t.person_id = c.id AND t.row_key = c.key AND upper_inf(t.positions)

-- insert_org_rows --
INSERT INTO org_rows
SELECT decode(r.row_key, 'hex'), r.org_id, r.name, r.kind, r.parent_id, r.valid_from,
       r.valid_until, r.ended, r.valid, r.positions
FROM jsonb_to_recordset($1::jsonb) AS r(
    row_key text, org_id text, name text, kind text, parent_id text, valid_from date,
    valid_until date, ended boolean, valid daterange, positions int8range)

-- close_org_rows --
UPDATE org_rows AS t SET positions = int8range(lower(t.positions), c.position)
FROM unnest($1::text[], $2::bytea[], $3::bigint[]) AS c(id, key, position)
WHERE t.org_id = c.id AND t.row_key = c.key AND upper_inf(t.positions)

-- gist_indexes --
-- The GiST indexes of a schema's projection tables, as statements that make them again:
-- rebuild drops them while it loads the shadow tables and runs these afterwards.
SELECT indexdef FROM pg_indexes
WHERE schemaname = $1 AND tablename = ANY($2::text[]) AND indexdef LIKE '% USING gist %'
ORDER BY indexname
