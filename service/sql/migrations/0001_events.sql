-- The log. One row per accepted claim, never updated, never deleted.
CREATE TABLE events (
    position        bigint      PRIMARY KEY,
    event_id        uuid        NOT NULL UNIQUE,
    type            text        NOT NULL,
    schema_version  integer     NOT NULL,
    data            jsonb       NOT NULL,
    status          text        NOT NULL,
    source          jsonb,
    idempotency_key text        UNIQUE,
    content_hash    bytea       NOT NULL,
    fact_key        text        NOT NULL,
    recorded_at     timestamptz NOT NULL,
    api_key_name    text,
    CONSTRAINT position_positive CHECK (position > 0)
);

-- "As known at K" turns a timestamp into the last position recorded by then.
CREATE INDEX events_recorded_at ON events (recorded_at, position);
CREATE INDEX events_type_position ON events (type, position);
CREATE INDEX events_fact_key ON events (fact_key);

-- Append-only by the database's own rules: even a direct SQL session (a superuser
-- included, short of dropping the trigger) cannot rewrite history.
CREATE FUNCTION events_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the events log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER events_no_update_delete
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_immutable();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_immutable();

-- API keys, stored as SHA-256 digests of the key (the keys are 256 random bits, so a
-- slow password hash would buy nothing and cost every request).
CREATE TABLE api_keys (
    name        text        PRIMARY KEY,
    key_hash    bytea       NOT NULL UNIQUE,
    scope       text        NOT NULL CHECK (scope IN ('write', 'admin')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- The role an application deployment should connect as: it may read and append to the
-- log but has no UPDATE, DELETE or TRUNCATE on it, so a leaked app credential cannot
-- rewrite history either. Roles are cluster-wide, hence the guard.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'hiring_news_app') THEN
        CREATE ROLE hiring_news_app NOLOGIN;
    END IF;
END;
$$;
GRANT SELECT, INSERT ON events TO hiring_news_app;
GRANT SELECT, INSERT, UPDATE ON api_keys TO hiring_news_app;

-- Every person and org id the log has mentioned, with the position that first did.
-- Appends check references against it ("an unknown id without a name is refused"),
-- and reads answer 404 for an id not mentioned as of the position asked.
CREATE TABLE entities (
    kind           text   NOT NULL CHECK (kind IN ('person', 'org')),
    id             text   NOT NULL,
    first_position bigint NOT NULL,
    PRIMARY KEY (kind, id)
);
GRANT SELECT, INSERT ON entities TO hiring_news_app;
