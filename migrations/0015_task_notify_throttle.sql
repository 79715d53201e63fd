-- The dashboard's notification of task changes (0010_web.sql, once per statement since 0013) is sent at most
-- once per 100 ms by each database session (issue 14).
--
-- A transaction that has sent a NOTIFY takes a lock shared by the whole cluster at commit and keeps it until
-- its commit record is flushed, so transactions that notify commit one at a time. Every claim and every
-- completion batch changed task states, so every worker's hot-path commits queued behind each other's WAL
-- flush (lock waits on "object" in pg_stat_activity), and more worker processes drained more slowly.
--
-- Nothing the pages show is lost: a page re-renders 200 ms after the notification that woke it
-- (contimg/web/live.py, SETTLE_S), so it also shows every change its session made within the next 100 ms,
-- and it re-renders every poll_s regardless. The session remembers its last notification in a custom
-- setting, so the throttle writes nothing.

CREATE FUNCTION web.notify_tasks_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_last text := current_setting('web.tasks_notified_at', true);
BEGIN
    IF v_last IS NULL OR v_last = '' OR clock_timestamp() - v_last::timestamptz >= interval '100 milliseconds' THEN
        PERFORM pg_notify('contimg_web', 'absurd.tasks');
        PERFORM set_config('web.tasks_notified_at', clock_timestamp()::text, false);
    END IF;
    RETURN NULL;
END;
$$;
REVOKE ALL ON FUNCTION web.notify_tasks_changed() FROM PUBLIC;

DROP TRIGGER tasks_notify_web ON absurd.tasks;
CREATE TRIGGER tasks_notify_web AFTER UPDATE OF state ON absurd.tasks
    FOR EACH STATEMENT EXECUTE FUNCTION web.notify_tasks_changed();
