-- The projector (service/projector.py): the projection is written behind the log by one
-- elected process, from a checkpoint, instead of inside every append.
--
-- The rows kept so far were written by appends with the old fold; they are dropped and
-- derived again from position 0 by the projector (or at once by `hiring-news rebuild`).
TRUNCATE membership_rows, org_rows, person_rows, move_rows;

-- Sources are JSON text the fold encodes once; `json` keeps it byte for byte (jsonb would
-- reorder its keys), so a roster passes it to its answer exactly as the fold wrote it.
ALTER TABLE membership_rows ALTER COLUMN sources TYPE json USING sources::json;
ALTER TABLE move_rows ALTER COLUMN sources TYPE json USING sources::json;

-- Which stint of the person's a membership row is a segment of: the position of the claim
-- that started it. Two stints may say the same of their org, fact and start.
ALTER TABLE membership_rows ADD COLUMN stint bigint NOT NULL;

-- How far the projection has got: every event up to `position` has taken effect in the
-- tables of this schema, and none after it. Moved in the same transaction as the rows.
CREATE TABLE projection_checkpoint (
    id         boolean     PRIMARY KEY DEFAULT true CHECK (id),
    position   bigint      NOT NULL CHECK (position >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO projection_checkpoint (position) VALUES (0);

-- What re-deriving an id needs, kept by the projector between batches so that no process
-- holds the whole fold (service/fold/state.py): every claim the fold keeps, stored once
-- under each id that holds it (a member claim under its person; a lead-making one also
-- under its org, whose other leads it ends; an org claim under its org), the statuses
-- that changed after their claims were recorded (rule 8), and each id's names.
CREATE TABLE fold_people (
    person_id text   PRIMARY KEY,
    name      text,
    aliases   jsonb  NOT NULL
);
CREATE TABLE fold_orgs (
    org_id    text   PRIMARY KEY,
    name      text,
    merged_in jsonb  NOT NULL
);
CREATE TABLE fold_claims (
    holder   text   NOT NULL CHECK (holder IN ('person', 'org', 'lead')),
    id       text   NOT NULL,
    position bigint NOT NULL,
    claim    bytea  NOT NULL,  -- service.fold.claims.Kept, msgpack
    PRIMARY KEY (holder, id, position)
);
CREATE TABLE fold_statuses (
    position bigint PRIMARY KEY,
    status   text   NOT NULL,
    since    bigint NOT NULL
);

-- The org structure as claimed, whatever the claims' status: `upper` is a parent of, or
-- what `lower` merged into (`merge`). Who an org event reaches is found by walking it.
CREATE TABLE fold_org_edges (
    upper text    NOT NULL,
    lower text    NOT NULL,
    merge boolean NOT NULL,
    PRIMARY KEY (upper, lower, merge)
);
CREATE INDEX fold_org_edges_lower ON fold_org_edges (lower);

-- Who has member claims in an org (any status), and whether one of them has them leave
-- it: the people an org event may reach.
CREATE TABLE fold_org_people (
    org_id    text    NOT NULL,
    person_id text    NOT NULL,
    leaver    boolean NOT NULL,
    PRIMARY KEY (org_id, person_id)
);

GRANT SELECT, INSERT, UPDATE ON projection_checkpoint, fold_people, fold_orgs, fold_claims,
    fold_statuses, fold_org_edges, fold_org_people TO hiring_news_app;
