-- A worker or scheduler that dies without saying so (SIGKILL, the OOM killer, a host reset) leaves its row
-- registered, so its heartbeat age (absurd_heartbeat_age_seconds) grew for ever and the page for it could
-- not end, even once systemd had restarted it under a new id. Such a daemon is now marked stopped once a
-- daemon of the same kind has started on its host after its last heartbeat: its replacement. Its stopped_at
-- is that last heartbeat, which tells it from a daemon that stopped itself (stopped_at later than its last
-- beat); should it beat again after all (it was stalled, not dead), its heartbeat makes it live again.
-- One whose host never comes back is left registered, and paged for, until someone deals with the host.
-- Every worker's reaper calls this after reclaiming expired runs (absurd/maintenance/reaper.py).
CREATE FUNCTION absurd.retire_replaced_daemons(p_silent_s double precision) RETURNS TABLE (kind text, id text)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH workers AS (
        UPDATE absurd.workers d SET stopped_at = d.heartbeat_at
        WHERE d.stopped_at IS NULL AND d.heartbeat_at < now() - make_interval(secs => p_silent_s)
          AND EXISTS (SELECT 1 FROM absurd.workers n
                      WHERE n.hostname = d.hostname AND n.started_at > d.heartbeat_at AND n.stopped_at IS NULL)
        RETURNING d.id
    ), schedulers AS (
        UPDATE absurd.schedulers d SET stopped_at = d.heartbeat_at
        WHERE d.stopped_at IS NULL AND d.heartbeat_at < now() - make_interval(secs => p_silent_s)
          AND EXISTS (SELECT 1 FROM absurd.schedulers n
                      WHERE n.hostname = d.hostname AND n.started_at > d.heartbeat_at AND n.stopped_at IS NULL)
        RETURNING d.id
    )
    SELECT 'worker', w.id FROM workers w
    UNION ALL
    SELECT 'scheduler', s.id FROM schedulers s
$$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'absurd_worker') THEN
        GRANT EXECUTE ON FUNCTION absurd.retire_replaced_daemons(double precision) TO absurd_worker;
    END IF;
END
$$;
