-- The read side: rows of the bitemporal cache "on D as of P". Every lookup is a GiST
-- probe on (id, positions, valid); lists of ids go through unnest + LATERAL so that each
-- id is its own probe (GiST cannot search `= ANY(array)` itself).

-- entities_known --
-- Which of the ids $2 the log had mentioned by position $3: a primary-key probe each
-- (OFFSET 0: see `members` in roster).
SELECT coalesce(array_agg(e.id), '{}')
FROM unnest($2::text[]) AS i(id)
CROSS JOIN LATERAL (
    SELECT id FROM entities WHERE kind = $1 AND id = i.id AND first_position <= $3 OFFSET 0
) AS e

-- asked --
-- Where a read stands, as the CTEs `head` and `asked` that the statements below begin
-- with (service/reads.py puts it in for `:asked`): the position asked, $2 as_of capped
-- at the head, or the last one recorded by $3 known_at, or the head.
head AS (SELECT coalesce(max(position), 0) AS position FROM events),
asked AS (
    SELECT CASE
        WHEN $3::timestamptz IS NOT NULL
            THEN (SELECT coalesce(max(position), 0) FROM events WHERE recorded_at <= $3::timestamptz)
        ELSE least(coalesce($2::bigint, head.position), head.position)
    END AS position
    FROM head
)

-- read_position --
-- One round trip for where a read stands: the position asked, and whether the log had
-- mentioned the id $1 of kind $4 by then ($1 NULL: no id to check).
WITH :asked
SELECT asked.position,
       $1::text IS NULL OR EXISTS (
           SELECT 1 FROM entities WHERE kind = $4 AND id = $1 AND first_position <= asked.position
       ) AS known
FROM asked

-- roster --
-- A whole roster in one round trip: the position (as in read_position), whether the log
-- had mentioned the org by then (for the 404), the org's rows on D as of P, and its
-- membership rows with each person's name as of P, as JSON for one decode each.
-- $1 org, $2 as_of, $3 known_at, $4 the day. `:orgs` is the block roster_org or
-- roster_subtree, put in by service/reads.py: two statements, so that each keeps one
-- generic plan (a recursive CTE gated by a parameter has PostgreSQL plan every call anew,
-- which costs more than running it).
WITH :asked,
orgs AS (:orgs),
members AS (
    -- One GiST probe per org. OFFSET 0 keeps the subquery apart, so that the org is a
    -- parameter of the probe rather than a join the planner may turn inside out.
    SELECT m.*
    FROM asked, (SELECT DISTINCT org_id FROM orgs) AS o
    CROSS JOIN LATERAL (
        SELECT person_id, org_id, role, title, start_value, start_earliest, start_latest, ended,
               end_earliest, end_latest, seg_from, seg_until, status, sources
        FROM membership_rows
        WHERE org_id = o.org_id AND positions @> asked.position AND valid @> $4::date
        OFFSET 0
    ) AS m
)
SELECT asked.position,
       EXISTS (
           SELECT 1 FROM entities WHERE kind = 'org' AND id = $1 AND first_position <= asked.position
       ) AS known,
       (SELECT coalesce(json_agg(orgs), '[]') FROM orgs) AS orgs,
       rows.members, rows.sources
FROM asked, LATERAL (
    -- Arrays in the field order of service.reads.Member, each person's name as of P by a
    -- B-tree probe per row (a subquery per row leaves the planner no join to get wrong, as
    -- it may for two CTEs it cannot size). The sources go out as stored, in an array of
    -- their own, in the same order (one aggregation): decoding the rows never scans them.
    SELECT coalesce(json_agg(json_build_array(
               person_id, org_id, role, title, start_value, start_earliest, start_latest, ended,
               end_earliest, end_latest, seg_from, seg_until, status,
               (SELECT name FROM person_rows AS p
                WHERE p.person_id = members.person_id AND p.positions @> asked.position)
           )), '[]') AS members,
           coalesce(array_agg(sources::text), '{}') AS sources
    FROM members
) AS rows

-- roster_org --
-- The org's own rows on D as of P. An org has few versions: OFFSET 0 keeps the range
-- conditions out of its index scan, since the planner, not knowing P, might as well scan
-- every org of the day through org_rows_parent.
SELECT o.org_id, o.name, o.kind, o.parent_id, o.valid_from, o.valid_until, o.ended
FROM asked, (SELECT * FROM org_rows WHERE org_id = $1 OFFSET 0) AS o
WHERE o.positions @> asked.position AND o.valid @> $4::date

-- roster_subtree --
-- The org and everything below it on D as of P, each org's children by parent_id alone
-- (OFFSET 0, as above); UNION (not ALL) stops on a cycle.
WITH RECURSIVE tree AS (
    SELECT o.org_id, o.name, o.kind, o.parent_id, o.valid_from, o.valid_until, o.ended
    FROM asked, (SELECT * FROM org_rows WHERE org_id = $1 OFFSET 0) AS o
    WHERE o.positions @> asked.position AND o.valid @> $4::date
    UNION
    SELECT o.org_id, o.name, o.kind, o.parent_id, o.valid_from, o.valid_until, o.ended
    FROM asked, tree
    CROSS JOIN LATERAL (SELECT * FROM org_rows WHERE parent_id = tree.org_id OFFSET 0) AS o
    WHERE o.positions @> asked.position AND o.valid @> $4::date
)
SELECT * FROM tree

-- timeline --
-- A career in one round trip: the position (as in read_position), whether the log had
-- mentioned the person by then (for the 404), their name and every membership row of
-- theirs as of P, as JSON for one decode. $1 person, $2 as_of, $3 known_at. A career has
-- few rows: OFFSET 0 keeps the range condition out of the person_id B-tree scan, which
-- the planner, not knowing P, might leave for the GiST index on positions.
WITH :asked
SELECT asked.position,
       EXISTS (
           SELECT 1 FROM entities WHERE kind = 'person' AND id = $1 AND first_position <= asked.position
       ) AS known,
       (SELECT name FROM person_rows WHERE person_id = $1 AND positions @> asked.position) AS name,
       -- Arrays in the field order of service.reads.Stint; the sources go out as stored.
       (SELECT coalesce(json_agg(json_build_array(
                   person_id, org_id, role, title, start_value, start_earliest, start_latest, ended,
                   end_value, end_earliest, end_latest, seg_from, seg_until, status, fact_key, sources
               )), '[]')
        FROM (SELECT * FROM membership_rows WHERE person_id = $1 OFFSET 0) AS m
        WHERE m.positions @> asked.position) AS rows
FROM asked

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
       end_value, end_earliest, end_latest, seg_from, seg_until, status, fact_key,
       sources::text AS sources
FROM membership_rows WHERE positions @> $1::bigint AND valid @> $2::date

-- person_rows_of --
SELECT p.* FROM unnest($1::text[]) AS i(id)
CROSS JOIN LATERAL (
    SELECT person_id, name, aliases::text AS aliases
    FROM person_rows WHERE person_id = i.id AND positions @> $2::bigint
) AS p

-- all_person_rows --
SELECT person_id, name, aliases::text AS aliases
FROM person_rows WHERE positions @> $1::bigint ORDER BY person_id

-- all_move_rows --
SELECT person_id, from_org_id, to_org_id, on_value, on_earliest, on_latest, sources::text AS sources
FROM move_rows WHERE positions @> $1::bigint
