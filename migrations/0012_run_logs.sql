-- A log tail per run: the last lines a task logged while it ran (absurd/worker/run_log.py keeps them in a
-- bounded buffer), written by the worker while the run logs and once more when it ends. A run that logs
-- nothing has no row and costs no statement. Rows go with their task: cleanup deletes them with its runs.

CREATE TABLE absurd.run_logs (
    run_id      bigint PRIMARY KEY,
    task_id     bigint NOT NULL,
    -- Oldest first: [{"at": ISO-8601 UTC, "level": "info", "text": "..."}].
    lines       jsonb NOT NULL CHECK (jsonb_typeof(lines) = 'array'),
    -- Earlier lines the bound left out.
    dropped     integer NOT NULL DEFAULT 0 CHECK (dropped >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX run_logs_task ON absurd.run_logs (task_id);

-- Store (or replace) a run's tail. Written only while the run's row exists, so a task pruned meanwhile
-- leaves nothing behind; any run may write, also one whose lease was lost, since its lines explain why.
CREATE FUNCTION absurd.save_run_log(p_task_id bigint, p_run_id bigint, p_lines jsonb, p_dropped integer)
RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO absurd.run_logs AS l (run_id, task_id, lines, dropped)
    SELECT r.id, r.task_id, p_lines, p_dropped FROM absurd.runs r WHERE r.task_id = p_task_id AND r.id = p_run_id
    ON CONFLICT (run_id) DO UPDATE SET lines = excluded.lines, dropped = excluded.dropped, updated_at = now()
    RETURNING true
$$;

-- 0001's cleanup, deleting the finished tasks' run logs with their runs.
CREATE OR REPLACE FUNCTION absurd.cleanup(p_older_than interval, p_batch integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    WITH doomed AS (
        SELECT t.id FROM absurd.tasks t
        WHERE t.finished_at < now() - p_older_than AND t.state IN ('completed', 'cancelled', 'failed')
          AND NOT EXISTS (SELECT 1 FROM absurd.dlq d WHERE d.task_id = t.id AND d.resolved_at IS NULL)
          AND (t.workflow_id IS NULL OR NOT EXISTS (
                  SELECT 1 FROM absurd.tasks o
                  WHERE o.workflow_id = t.workflow_id
                    AND (o.state IN ('waiting', 'pending', 'running', 'sleeping')
                         OR EXISTS (SELECT 1 FROM absurd.dlq od
                                    WHERE od.task_id = o.id AND od.resolved_at IS NULL))))
        ORDER BY t.finished_at LIMIT p_batch
        FOR UPDATE OF t SKIP LOCKED
    ), runs_gone AS (
        DELETE FROM absurd.runs r USING doomed WHERE r.task_id = doomed.id
    ), logs_gone AS (
        DELETE FROM absurd.run_logs l USING doomed WHERE l.task_id = doomed.id
    ), checkpoints_gone AS (
        DELETE FROM absurd.checkpoints c USING doomed WHERE c.task_id = doomed.id
    ), deps_gone AS (
        DELETE FROM absurd.task_deps d USING doomed WHERE d.task_id = doomed.id OR d.depends_on = doomed.id
    ), tasks_gone AS (
        DELETE FROM absurd.tasks t USING doomed WHERE t.id = doomed.id RETURNING 1
    )
    SELECT count(*) INTO n FROM tasks_gone;
    DELETE FROM absurd.gate_calls gc USING absurd.gates g
    WHERE gc.key = g.key AND gc.at < now() - make_interval(secs => g.window_s) - interval '1 hour';
    RETURN n;
END
$$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'absurd_worker') THEN
        GRANT SELECT ON absurd.run_logs TO absurd_worker;
        GRANT EXECUTE ON FUNCTION absurd.save_run_log(bigint, bigint, jsonb, integer) TO absurd_worker;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'absurd_scheduler') THEN
        GRANT SELECT ON absurd.run_logs TO absurd_scheduler;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'absurd_readonly') THEN
        GRANT SELECT ON absurd.run_logs TO absurd_readonly;
    END IF;
END
$$;
