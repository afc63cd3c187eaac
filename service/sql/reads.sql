-- The read side: rows of the bitemporal cache "on D as of P". Every lookup is a GiST
-- probe on (id, positions, valid); lists of ids go through unnest + LATERAL so that each
-- id is its own probe (GiST cannot search `= ANY(array)` itself). Where a read stands
-- (the position asked, the one it can be answered at, the head) is read_stand(), and a
-- roster's orgs roster_orgs() (migrations/0006_read_functions.sql).

-- asked --
-- The position a read asks for, as the primary has it (`read_stand`'s first column): what
-- a read through a replica then waits for the replica to reach.
SELECT asked FROM read_stand($1, $2, false)

-- stand --
-- Where a read stands, and whether the log had mentioned the id $1 of kind $4 by the
-- position it is answered at ($1 NULL: no id to check). $2 as_of, $3 known_at, $5 exact.
SELECT s.asked, s.answered AS position, s.head,
       $1::text IS NULL OR EXISTS (
           SELECT 1 FROM entities WHERE kind = $4 AND id = $1 AND first_position <= s.answered
       ) AS known
FROM read_stand($2, $3, $5) AS s

-- entities_known --
-- Which of the ids $2 the log had mentioned by position $3: a primary-key probe each
-- (OFFSET 0: see `members` in roster).
SELECT coalesce(array_agg(e.id), '{}')
FROM unnest($2::text[]) AS i(id)
CROSS JOIN LATERAL (
    SELECT id FROM entities WHERE kind = $1 AND id = i.id AND first_position <= $3 OFFSET 0
) AS e

-- roster --
-- A whole roster in one round trip: where the read stands, whether the log had
-- mentioned the org by then (for the 404), the orgs it covers on D (the org, or its
-- subtree with $5), their membership rows on D as of P and each member's name as of P,
-- as JSON for one decode each. $1 org, $2 as_of, $3 known_at, $4 the day, $5 suborgs,
-- $6 exact.
WITH stand AS (SELECT * FROM read_stand($2, $3, $6)),
orgs AS (SELECT o.* FROM stand, roster_orgs($1, $4, stand.answered, $5) AS o),
members AS (
    -- One GiST probe per org. OFFSET 0 keeps the subquery apart, so that the org is a
    -- parameter of the probe rather than a join the planner may turn inside out.
    SELECT m.*
    FROM stand, (SELECT DISTINCT org_id FROM orgs) AS o
    CROSS JOIN LATERAL (
        SELECT person_id, org_id, role, title, start_value, start_earliest, start_latest, ended,
               end_value, end_earliest, end_latest, seg_from, seg_until, status, fact_key, stint, sources
        FROM membership_rows
        WHERE org_id = o.org_id AND positions @> stand.answered AND valid @> $4::date
        OFFSET 0
    ) AS m
)
SELECT stand.asked, stand.answered AS position, stand.head,
       EXISTS (
           SELECT 1 FROM entities WHERE kind = 'org' AND id = $1 AND first_position <= stand.answered
       ) AS known,
       (SELECT coalesce(json_agg(orgs), '[]') FROM orgs) AS orgs,
       (SELECT coalesce(json_agg(members), '[]') FROM members) AS members,
       -- Each member's name as of P by a B-tree probe per person.
       (SELECT coalesce(json_object_agg(n.person_id, n.name), '{}')
        FROM (SELECT DISTINCT person_id FROM members) AS i
        CROSS JOIN LATERAL (
            SELECT person_id, name FROM person_rows AS p
            WHERE p.person_id = i.person_id AND p.positions @> stand.answered OFFSET 0
        ) AS n) AS names
FROM stand

-- timeline --
-- A career in one round trip: where the read stands, whether the log had mentioned the
-- person by then (for the 404), their name and every membership row of theirs as of P,
-- as JSON for one decode. $1 person, $2 as_of, $3 known_at, $4 exact. A career has few
-- rows: OFFSET 0 keeps the range condition out of the person_id B-tree scan, which the
-- planner, not knowing P, might leave for the GiST index on positions.
WITH stand AS (SELECT * FROM read_stand($2, $3, $4))
SELECT stand.asked, stand.answered AS position, stand.head,
       EXISTS (
           SELECT 1 FROM entities WHERE kind = 'person' AND id = $1 AND first_position <= stand.answered
       ) AS known,
       (SELECT name FROM person_rows WHERE person_id = $1 AND positions @> stand.answered) AS name,
       (SELECT coalesce(json_agg(m), '[]')
        FROM (
            SELECT person_id, org_id, role, title, start_value, start_earliest, start_latest, ended,
                   end_value, end_earliest, end_latest, seg_from, seg_until, status, fact_key, stint, sources
            FROM (SELECT * FROM membership_rows WHERE person_id = $1 OFFSET 0) AS r
            WHERE r.positions @> stand.answered
        ) AS m) AS rows
FROM stand

-- org_subtree_rows --
-- The org and everything below it on D as of P; UNION (not ALL) stops on a cycle.
WITH RECURSIVE tree AS (
    SELECT org_id, name, kind, parent_id, valid_from, valid_until, ended
    FROM org_rows WHERE org_id = $1 AND positions @> $2::bigint AND valid @> $3::date
    UNION
    SELECT o.org_id, o.name, o.kind, o.parent_id, o.valid_from, o.valid_until, o.ended
    FROM tree JOIN org_rows AS o ON o.parent_id = tree.org_id
    WHERE o.positions @> $2::bigint AND o.valid @> $3::date
)
SELECT * FROM tree

-- org_rows_of --
SELECT org_id, name, kind, parent_id, valid_from, valid_until, ended
FROM org_rows WHERE org_id = $1 AND positions @> $2::bigint

-- all_org_rows --
SELECT org_id, name, kind, parent_id, valid_from, valid_until, ended
FROM org_rows WHERE positions @> $1::bigint

-- all_membership_rows_on --
SELECT person_id, org_id, role, title, start_value, start_earliest, start_latest, ended,
       end_value, end_earliest, end_latest, seg_from, seg_until, status, fact_key, stint,
       sources::text AS sources
FROM membership_rows WHERE positions @> $1::bigint AND valid @> $2::date

-- person_rows_of --
SELECT p.* FROM unnest($1::text[]) AS i(id)
CROSS JOIN LATERAL (
    SELECT person_id, name, aliases::text AS aliases
    FROM person_rows WHERE person_id = i.id AND positions @> $2::bigint
) AS p

-- entity_page --
-- A page of the ids of kind $1 the log had mentioned by position $2, after $3 in id
-- order, $4 at most: one range scan of the registry's primary key (kind, id).
SELECT id FROM entities
WHERE kind = $1 AND id > $3 AND first_position <= $2
ORDER BY id
LIMIT $4

-- entity_count --
-- How many ids of kind $1 the log had mentioned by position $2.
SELECT count(*) FROM entities WHERE kind = $1 AND first_position <= $2

-- people_matching --
-- The people whose id, name (as of P, $2) or an alias holds the pattern $1 (an ILIKE
-- pattern, its own % and _ escaped), in id order, $3 at most: a scan of the names
-- holding at P, as a search box needs.
SELECT person_id, name, aliases::text AS aliases
FROM person_rows
WHERE positions @> $2::bigint AND (person_id ILIKE $1 OR name ILIKE $1 OR aliases::text ILIKE $1)
ORDER BY person_id
LIMIT $3

-- orgs_matching --
-- The orgs whose id or name (any version, as of P, $2) holds the pattern $1, in id
-- order, $3 at most.
SELECT DISTINCT org_id
FROM org_rows
WHERE positions @> $2::bigint AND (org_id ILIKE $1 OR name ILIKE $1)
ORDER BY org_id
LIMIT $3

-- org_rows_of_ids --
-- Every version of the orgs $1 as of P ($2): a GiST probe per org.
SELECT o.* FROM unnest($1::text[]) AS i(id)
CROSS JOIN LATERAL (
    SELECT org_id, name, kind, parent_id, valid_from, valid_until, ended
    FROM org_rows WHERE org_id = i.id AND positions @> $2::bigint OFFSET 0
) AS o

-- membership_rows_of_orgs_on --
-- The membership rows of the orgs $1 on D ($3) as of P ($2): a GiST probe per org.
SELECT m.* FROM unnest($1::text[]) AS i(id)
CROSS JOIN LATERAL (
    SELECT person_id, org_id, role, title, start_value, start_earliest, start_latest, ended,
           end_value, end_earliest, end_latest, seg_from, seg_until, status, fact_key, stint,
           sources::text AS sources
    FROM membership_rows WHERE org_id = i.id AND positions @> $2::bigint AND valid @> $3::date OFFSET 0
) AS m

-- all_move_rows --
SELECT person_id, from_org_id, to_org_id, on_value, on_earliest, on_latest, sources::text AS sources
FROM move_rows WHERE positions @> $1::bigint

-- org_history --
-- Everything an org's history needs, as of P (a position the projection has reached):
-- the org's versions over all valid time, every membership row over all valid time of
-- the org (with $4, also of the orgs under it on day $3, as a roster counts them), and
-- each person's name. The picture shows no sources, so the rows leave them out (an
-- empty list) rather than carry every quote the org ever had. $1 org, $2 P, $3 day,
-- $4 suborgs.
WITH orgs AS (
    SELECT $1::text AS org_id
    UNION
    -- Gated, so the function is not even called without suborgs (a one-time filter).
    SELECT o.org_id FROM roster_orgs($1, $3, $2, $4) AS o WHERE $4::boolean
),
rows AS (
    SELECT m.*
    FROM orgs
    CROSS JOIN LATERAL (
        SELECT person_id, org_id, role, title, start_value, start_earliest, start_latest, ended,
               end_value, end_earliest, end_latest, seg_from, seg_until, status, fact_key, stint,
               '[]'::json AS sources
        FROM membership_rows
        WHERE org_id = orgs.org_id AND positions @> $2::bigint
        OFFSET 0
    ) AS m
)
SELECT (SELECT coalesce(json_agg(v), '[]')
        FROM (
            -- asyncpg writes the fold's date.min and date.max as -infinity and infinity,
            -- which JSON would carry as words: an open bound is NULL in a row (the same
            -- meaning), so that is what they become here.
            SELECT org_id, name, kind, parent_id,
                   CASE WHEN isfinite(valid_from) THEN valid_from END AS valid_from,
                   CASE WHEN isfinite(valid_until) THEN valid_until END AS valid_until, ended
            FROM (SELECT * FROM org_rows WHERE org_id = $1 OFFSET 0) AS r
            WHERE r.positions @> $2::bigint
        ) AS v) AS versions,
       (SELECT coalesce(json_agg(rows), '[]') FROM rows) AS rows,
       (SELECT coalesce(json_object_agg(n.person_id, n.name), '{}')
        FROM (SELECT DISTINCT person_id FROM rows) AS i
        CROSS JOIN LATERAL (
            SELECT person_id, name FROM person_rows AS p
            WHERE p.person_id = i.person_id AND p.positions @> $2::bigint OFFSET 0
        ) AS n) AS names

-- replay_marks --
-- The labels of a replay over the log's positions: the first position at which the log
-- mentions the id $2 of kind $1 (1 if never), then when the log recorded the events at
-- $5 + 1 positions evenly spaced from there to the head $3, and at the position shown,
-- $4: primary-key probes.
WITH span AS (
    SELECT coalesce((SELECT first_position FROM entities WHERE kind = $1 AND id = $2), 1) AS first
),
wanted AS (
    SELECT span.first + (greatest($3::bigint - span.first, 0) * i) / $5::int AS position
    FROM span, generate_series(0, $5::int) AS i
    UNION
    SELECT $4::bigint
)
SELECT span.first, e.position, e.recorded_at
FROM span
LEFT JOIN events AS e ON e.position IN (SELECT position FROM wanted)
ORDER BY e.position
