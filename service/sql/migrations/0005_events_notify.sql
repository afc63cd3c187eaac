-- Every append wakes the projector (and the live feeds) at commit, whoever appends: the
-- payload is the last position the statement inserted. One trigger per statement, so a
-- group of a thousand events sends one notification.
CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('hiring_news_log', (SELECT max(position) FROM new_events)::text);
    RETURN NULL;
END;
$$;
CREATE TRIGGER events_notify
    AFTER INSERT ON events REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION events_notify();
