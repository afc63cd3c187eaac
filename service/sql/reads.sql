-- The read side: rows of the bitemporal cache "on D as of P". Every lookup is a GiST
-- probe on (id, positions, valid); lists of ids go through unnest + LATERAL so that each
-- id is its own probe (GiST cannot search `= ANY(array)` itself).

-- entity_known --
SELECT EXISTS (SELECT 1 FROM entities WHERE kind = $1 AND id = $2 AND first_position <= $3)

-- read_position --
-- One round trip for where a read stands: the position asked (as_of, capped at the
-- head; or the last one recorded by known_at; or the head), and whether the log had
-- mentioned the id asked about by then ($4 NULL: no id to check).
WITH head AS (SELECT coalesce(max(position), 0) AS position FROM events),
asked AS (
    SELECT CASE
        WHEN $2::timestamptz IS NOT NULL
            THEN (SELECT coalesce(max(position), 0) FROM events WHERE recorded_at <= $2::timestamptz)
        ELSE least(coalesce($1::bigint, head.position), head.position)
    END AS position
    FROM head
)
SELECT asked.position,
       $4::text IS NULL OR EXISTS (
           SELECT 1 FROM entities WHERE kind = $3 AND id = $4 AND first_position <= asked.position
       ) AS known
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

-- org_rows_on --
-- Just the org on D as of P: a roster without sub-orgs needs no more than that.
SELECT org_id, name, kind, parent_id, valid_from, valid_until, ended
FROM org_rows WHERE org_id = $1 AND positions @> $2::bigint AND valid @> $3::date

-- org_rows_of --
SELECT org_id, name, kind, parent_id, valid_from, valid_until, ended
FROM org_rows WHERE org_id = $1 AND positions @> $2::bigint

-- all_org_rows --
SELECT org_id, name, kind, parent_id, valid_from, valid_until, ended
FROM org_rows WHERE positions @> $1::bigint

-- roster_rows --
-- With each member's name and aliases as of P, so a roster costs one round trip here.
SELECT m.*, p.name AS person_name, p.aliases::text AS person_aliases FROM unnest($1::text[]) AS o(id)
CROSS JOIN LATERAL (
    SELECT person_id, org_id, role, title, start_value, start_earliest, start_latest, ended,
           end_value, end_earliest, end_latest, seg_from, seg_until, status, fact_key,
           sources::text AS sources
    FROM membership_rows
    WHERE org_id = o.id AND positions @> $2::bigint AND valid @> $3::date
) AS m
LEFT JOIN LATERAL (
    SELECT name, aliases FROM person_rows WHERE person_id = m.person_id AND positions @> $2::bigint
) AS p ON true

-- all_membership_rows_on --
SELECT person_id, org_id, role, title, start_value, start_earliest, start_latest, ended,
       end_value, end_earliest, end_latest, seg_from, seg_until, status, fact_key,
       sources::text AS sources
FROM membership_rows WHERE positions @> $1::bigint AND valid @> $2::date

-- person_membership_rows --
SELECT person_id, org_id, role, title, start_value, start_earliest, start_latest, ended,
       end_value, end_earliest, end_latest, seg_from, seg_until, status, fact_key,
       sources::text AS sources
FROM membership_rows WHERE person_id = $1 AND positions @> $2::bigint

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
