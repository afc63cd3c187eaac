-- The projector (service/projector.py, service/projection.py): reading the log after its
-- checkpoint, loading what re-deriving an id needs, finding who an event reaches, and
-- writing one batch's rows, files and checkpoint in one transaction.

-- projector_election --
-- One projector works at a time across every process: the one holding this session
-- lock. It is released when its connection ends, a killed process's included, and a
-- standby that asks again takes over. One lock per schema (each projection is one).
SELECT pg_try_advisory_lock(720194, hashtext(current_schema()))

-- projection_write_lock --
-- Taken by each batch, and by `rebuild` when it swaps its tables in: a batch never writes
-- into tables being swapped, and sees the checkpoint the swap left. Two projectors that
-- both believe they won the election (one cut off from the database) take turns here,
-- and the checkpoint's compare and set makes the second start from where the first got.
SELECT pg_advisory_xact_lock(720195, hashtext(current_schema()))

-- checkpoint --
SELECT position FROM projection_checkpoint

-- move_checkpoint --
-- Compare and set: a batch moves the checkpoint only from where it read it, so two
-- projectors (a partition that lost the election lock, a rebuild) can never both apply
-- the same events.
UPDATE projection_checkpoint SET position = $2, updated_at = now() WHERE position = $1

-- notify_projection --
-- Readers waiting for a position are woken at commit.
SELECT pg_notify('hiring_news_projection', $1::text)

-- head_and_checkpoint --
SELECT (SELECT coalesce(max(position), 0) FROM events) AS head,
       (SELECT position FROM projection_checkpoint) AS projected

-- load_people --
-- Each person's names, claims (in position order, with the status each holds now) and
-- the keys of the rows of theirs that hold now (the open ones): what the next rows are
-- compared with. One round trip for a whole batch's people; no row for an id the fold
-- has never seen.
SELECT i.id, p.name, p.aliases::text AS aliases, k.positions, k.claims, k.statuses, k.since,
       ARRAY(SELECT row_key FROM membership_rows
             WHERE person_id = i.id AND upper_inf(positions)) AS memberships,
       ARRAY(SELECT row_key FROM move_rows WHERE person_id = i.id AND upper_inf(positions)) AS moves,
       ARRAY(SELECT row_key FROM person_rows WHERE person_id = i.id AND upper_inf(positions)) AS names
FROM unnest($1::text[]) AS i(id)
JOIN fold_people AS p ON p.person_id = i.id
CROSS JOIN LATERAL (
    SELECT array_agg(c.position ORDER BY c.position) AS positions,
           array_agg(c.claim ORDER BY c.position) AS claims,
           array_agg(s.status ORDER BY c.position) AS statuses,
           array_agg(s.since ORDER BY c.position) AS since
    FROM fold_claims AS c LEFT JOIN fold_statuses AS s ON s.position = c.position
    WHERE c.holder = 'person' AND c.id = i.id
) AS k

-- load_orgs --
-- The orgs asked for, with every org a career or an org version may consult through
-- them: upwards (parents and what they merged into, for sub-org cascades and heirs) and
-- down through merges (stints carried over). A recursive term may name the CTE once,
-- hence one join with both directions. Each with its names, the orgs merged into it, its
-- claims (`org`) and the lead-making claims in it (`lead`), and its open version keys.
WITH RECURSIVE wanted(org_id) AS (
    SELECT unnest($1::text[])
    UNION
    SELECT CASE WHEN e.lower = w.org_id THEN e.upper ELSE e.lower END
    FROM fold_org_edges AS e
    JOIN wanted AS w ON e.lower = w.org_id OR (e.merge AND e.upper = w.org_id)
)
SELECT w.org_id AS id, o.name, o.merged_in::text AS merged_in, k.holders, k.positions, k.claims, k.statuses, k.since,
       ARRAY(SELECT row_key FROM org_rows WHERE org_id = w.org_id AND upper_inf(positions)) AS versions
FROM wanted AS w
JOIN fold_orgs AS o ON o.org_id = w.org_id
CROSS JOIN LATERAL (
    SELECT array_agg(c.holder ORDER BY c.position) AS holders,
           array_agg(c.position ORDER BY c.position) AS positions,
           array_agg(c.claim ORDER BY c.position) AS claims,
           array_agg(s.status ORDER BY c.position) AS statuses,
           array_agg(s.since ORDER BY c.position) AS since
    FROM fold_claims AS c LEFT JOIN fold_statuses AS s ON s.position = c.position
    WHERE c.holder IN ('org', 'lead') AND c.id = w.org_id
) AS k

-- claim_targets --
-- What the events that claim.* events name are about, to load their holders.
SELECT event_id, type, data->>'person_id' AS person_id, data->>'org_id' AS org_id
FROM events WHERE event_id = ANY($1::uuid[])

-- save_people --
INSERT INTO fold_people (person_id, name, aliases)
SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[]) AS u(id, name, aliases)
ON CONFLICT (person_id) DO UPDATE SET name = EXCLUDED.name, aliases = EXCLUDED.aliases

-- save_orgs --
INSERT INTO fold_orgs (org_id, name, merged_in)
SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[]) AS u(id, name, merged_in)
ON CONFLICT (org_id) DO UPDATE SET name = EXCLUDED.name, merged_in = EXCLUDED.merged_in

-- save_statuses --
INSERT INTO fold_statuses (position, status, since)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[])
ON CONFLICT (position) DO UPDATE SET status = EXCLUDED.status, since = EXCLUDED.since

-- add_org_people --
INSERT INTO fold_org_people AS p (org_id, person_id, leaver)
SELECT * FROM unnest($1::text[], $2::text[], $3::boolean[])
ON CONFLICT (org_id, person_id) DO UPDATE SET leaver = true WHERE EXCLUDED.leaver AND NOT p.leaver

-- add_org_edges --
INSERT INTO fold_org_edges (upper, lower, merge)
SELECT * FROM unnest($1::text[], $2::text[], $3::boolean[])
ON CONFLICT DO NOTHING

-- reach_holders --
-- Rule 4: which of the people $3 (who made lead-making claims in org $1) hold its lead on
-- day $2 by their rows as the projection holds them: a lead row open then, a segment
-- counting from its own day, the first one from the stint's start.
SELECT DISTINCT m.person_id
FROM membership_rows AS m
WHERE m.person_id = ANY($3::text[]) AND m.org_id = $1 AND upper_inf(m.positions)
  AND m.role = 'lead'
  AND coalesce(m.seg_from, m.start_earliest, m.start_latest, '-infinity') <= $2
  AND (m.seg_until IS NULL OR $2 < m.seg_until)
  AND (NOT m.ended OR coalesce(m.end_earliest, m.end_latest, '-infinity') > $2)

-- reach_structure --
-- Who an org event on $1 may reach through the structure, walked whatever the claims'
-- status: `below`, the org and every org ever claimed under it (merged ones included);
-- `carried`, the org and the orgs merged into it; `above`, every org ever claimed above
-- it. For each person with claims below: whether they are in `carried`, below but not in
-- `carried`, have left an org above, or left one of `carried`; and whether their rows,
-- as the projection holds them, have a stint open in $1 on day $2 (`unsure`: rows this
-- batch derived again, $3, which the projector checks in memory instead).
-- The org sets go to fold_org_people as arrays (`= ANY (ARRAY(...))`): the planner cannot
-- tell how many orgs a recursive walk finds, guessed hundreds, and read all of
-- fold_org_people three times a call (80 ms at 1M events, 300 events/s); with an array
-- it looks each org up by the primary key (14 ms).
WITH RECURSIVE below(org_id) AS (
    SELECT $1::text
    UNION
    SELECT e.lower FROM fold_org_edges AS e JOIN below AS b ON e.upper = b.org_id
),
carried(org_id) AS (
    SELECT $1::text
    UNION
    SELECT e.lower FROM fold_org_edges AS e JOIN carried AS c ON e.upper = c.org_id WHERE e.merge
),
above(org_id) AS (
    SELECT e.upper FROM fold_org_edges AS e WHERE e.lower = $1
    UNION
    SELECT e.upper FROM fold_org_edges AS e JOIN above AS a ON e.lower = a.org_id
),
people AS (
    SELECT p.person_id,
           bool_or(p.org_id IN (SELECT org_id FROM carried)) AS in_carried,
           bool_or(p.org_id NOT IN (SELECT org_id FROM carried)) AS in_rest
    FROM fold_org_people AS p
    WHERE p.org_id = ANY (ARRAY(SELECT org_id FROM below))
    GROUP BY p.person_id
),
left_above AS (
    SELECT l.person_id FROM fold_org_people AS l
    WHERE l.org_id = ANY (ARRAY(SELECT org_id FROM above)) AND l.leaver
),
left_carried AS (
    SELECT l.person_id FROM fold_org_people AS l
    WHERE l.org_id = ANY (ARRAY(SELECT org_id FROM carried)) AND l.leaver
)
SELECT (SELECT array_agg(org_id) FROM below) AS below,
       people.person_id, people.in_carried, people.in_rest,
       people.person_id IN (SELECT person_id FROM left_above) AS left_above,
       people.person_id IN (SELECT person_id FROM left_carried) AS left_carried,
       people.person_id = ANY($3::text[]) AS unsure,
       EXISTS (SELECT 1 FROM membership_rows AS m
               WHERE m.person_id = people.person_id AND m.org_id = $1 AND upper_inf(m.positions)
                 AND coalesce(m.start_earliest, m.start_latest, '-infinity') <= $2
                 AND (NOT m.ended OR coalesce(m.end_earliest, m.end_latest, '-infinity') > $2)) AS holds
FROM people
-- A walk that found nobody still answers with the orgs below.
RIGHT JOIN (SELECT 1) AS one ON true

-- close_membership_rows --
-- Closing a row sets the upper end of its position range: the row held until then.
UPDATE membership_rows AS t SET positions = int8range(lower(t.positions), c.position)
FROM unnest($1::text[], $2::bytea[], $3::bigint[]) AS c(id, key, position)
WHERE t.person_id = c.id AND t.row_key = c.key AND upper_inf(t.positions)

-- close_move_rows --
UPDATE move_rows AS t SET positions = int8range(lower(t.positions), c.position)
FROM unnest($1::text[], $2::bytea[], $3::bigint[]) AS c(id, key, position)
WHERE t.person_id = c.id AND t.row_key = c.key AND upper_inf(t.positions)

-- close_person_rows --
UPDATE person_rows AS t SET positions = int8range(lower(t.positions), c.position)
FROM unnest($1::text[], $2::bytea[], $3::bigint[]) AS c(id, key, position)
WHERE t.person_id = c.id AND t.row_key = c.key AND upper_inf(t.positions)

-- close_org_rows --
UPDATE org_rows AS t SET positions = int8range(lower(t.positions), c.position)
FROM unnest($1::text[], $2::bytea[], $3::bigint[]) AS c(id, key, position)
WHERE t.org_id = c.id AND t.row_key = c.key AND upper_inf(t.positions)
