-- What every read statement shares (service/sql/reads.sql), as functions: each statement
-- stays SQL that runs as written in psql.

-- Where a read stands: the position asked ($1 as_of capped at the head, or the last
-- position recorded by $2 known_at, or the head; with `exact`, $1 as it is, which the
-- caller resolved on the primary and a replica may not have reached), the position it
-- can be answered at (the asked one, or the projection's checkpoint while the projector,
-- or the replica, is behind it), and the head. A read answered below what it asked waits
-- (service.api.reads).
CREATE FUNCTION read_stand(as_of bigint, known_at timestamptz, exact boolean)
RETURNS TABLE (asked bigint, answered bigint, head bigint)
LANGUAGE sql STABLE AS $$
    WITH head AS (SELECT coalesce(max(e.position), 0) AS position FROM events AS e),
    wanted AS (
        SELECT CASE
            WHEN exact THEN as_of
            WHEN known_at IS NOT NULL
                THEN (SELECT coalesce(max(e.position), 0) FROM events AS e WHERE e.recorded_at <= known_at)
            ELSE least(coalesce(as_of, head.position), head.position)
        END AS position, head.position AS head
        FROM head
    )
    SELECT wanted.position, least(wanted.position, c.position), wanted.head
    FROM wanted, projection_checkpoint AS c
$$;

-- The orgs a roster covers on a day as of a position: the org's own version, or with
-- `suborgs` the org and everything below it (each org's children by parent_id; UNION,
-- not ALL, stops on a cycle). PL/pgSQL keeps one plan per branch: a recursive query gated
-- by a parameter would be planned anew at every call. An org has few versions: OFFSET 0
-- keeps the range conditions out of the index scan on org_id (or parent_id), since a
-- generic plan, not knowing the position, might as well scan every org of the day.
CREATE FUNCTION roster_orgs(org text, day date, as_of bigint, suborgs boolean)
RETURNS TABLE (org_id text, name text, kind text, parent_id text, valid_from date,
               valid_until date, ended boolean)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
    IF NOT suborgs THEN
        RETURN QUERY
            SELECT o.org_id, o.name, o.kind, o.parent_id, o.valid_from, o.valid_until, o.ended
            FROM (SELECT * FROM org_rows AS r WHERE r.org_id = org OFFSET 0) AS o
            WHERE o.positions @> as_of AND o.valid @> day;
        RETURN;
    END IF;
    RETURN QUERY
        WITH RECURSIVE tree AS (
            SELECT o.org_id, o.name, o.kind, o.parent_id, o.valid_from, o.valid_until, o.ended
            FROM (SELECT * FROM org_rows AS r WHERE r.org_id = org OFFSET 0) AS o
            WHERE o.positions @> as_of AND o.valid @> day
            UNION
            SELECT o.org_id, o.name, o.kind, o.parent_id, o.valid_from, o.valid_until, o.ended
            FROM tree
            CROSS JOIN LATERAL (SELECT * FROM org_rows AS r WHERE r.parent_id = tree.org_id OFFSET 0) AS o
            WHERE o.positions @> as_of AND o.valid @> day
        )
        SELECT * FROM tree;
END;
$$;
