-- The bitemporal cache of the fold's output (service/fold.py).
--
-- Each row is one row the fold outputs, with the valid-time range it speaks of
-- (`valid`, days) and the range of log positions during which the fold said so
-- (`positions`, [from_position, to_position), open while it still holds). "On D as of
-- P" is then `valid @> D AND positions @> P` on a GiST index: one index probe, however
-- long the history. These tables hold output, not rules: the rules live in the fold.
--
-- btree_gist lets the equality on org_id / person_id share one GiST index with the
-- ranges. It lives in `public` so that every schema of the database shares one copy.
CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA public;

CREATE TABLE membership_rows (
    row_key        bytea     NOT NULL,
    person_id      text      NOT NULL,
    org_id         text      NOT NULL,
    role           text      NOT NULL,
    title          text,
    start_value    text,
    start_earliest date,
    start_latest   date,
    ended          boolean   NOT NULL,
    end_value      text,
    end_earliest   date,
    end_latest     date,
    seg_from       date,
    seg_until      date,
    status         text      NOT NULL,
    fact_key       text      NOT NULL,
    sources        jsonb     NOT NULL,
    valid          daterange NOT NULL,
    positions      int8range NOT NULL
);
CREATE INDEX membership_rows_roster ON membership_rows USING gist (org_id, positions, valid);
CREATE INDEX membership_rows_person ON membership_rows USING gist (person_id, positions);
CREATE INDEX membership_rows_open ON membership_rows (person_id, row_key) WHERE upper_inf(positions);

CREATE TABLE org_rows (
    row_key     bytea     NOT NULL,
    org_id      text      NOT NULL,
    name        text,
    kind        text,
    parent_id   text,
    valid_from  date,
    valid_until date,
    ended       boolean   NOT NULL,
    valid       daterange NOT NULL,
    positions   int8range NOT NULL
);
CREATE INDEX org_rows_org ON org_rows USING gist (org_id, positions, valid);
CREATE INDEX org_rows_parent ON org_rows USING gist (parent_id, positions, valid);
CREATE INDEX org_rows_open ON org_rows (org_id, row_key) WHERE upper_inf(positions);

CREATE TABLE person_rows (
    row_key   bytea     NOT NULL,
    person_id text      NOT NULL,
    name      text,
    aliases   jsonb     NOT NULL,
    positions int8range NOT NULL
);
CREATE INDEX person_rows_person ON person_rows USING gist (person_id, positions);
CREATE INDEX person_rows_open ON person_rows (person_id, row_key) WHERE upper_inf(positions);

CREATE TABLE move_rows (
    row_key     bytea     NOT NULL,
    person_id   text      NOT NULL,
    from_org_id text      NOT NULL,
    to_org_id   text      NOT NULL,
    on_value    text,
    on_earliest date,
    on_latest   date,
    sources     jsonb     NOT NULL,
    positions   int8range NOT NULL
);
CREATE INDEX move_rows_positions ON move_rows USING gist (positions);
CREATE INDEX move_rows_open ON move_rows (person_id, row_key) WHERE upper_inf(positions);

GRANT SELECT, INSERT, UPDATE ON membership_rows, org_rows, person_rows, move_rows
    TO hiring_news_app;
