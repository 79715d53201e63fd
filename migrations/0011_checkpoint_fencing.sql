-- set_checkpoint fences under the task's row lock, like every other write on a run (review #17). Its
-- snapshot read let a statement of an old run that had waited on the checkpoint row of the new run (which
-- reclaimed the task meanwhile) overwrite the new run's checkpoint through ON CONFLICT DO UPDATE.
CREATE OR REPLACE FUNCTION absurd.set_checkpoint(p_task_id bigint, p_run_id bigint, p_name text, p_value jsonb)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM 1 FROM absurd.tasks
    WHERE id = p_task_id AND current_run = p_run_id AND state = 'running' AND lease_expires_at > now()
    FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO absurd.checkpoints (task_id, name, value, run_id)
    VALUES (p_task_id, p_name, p_value, p_run_id)
    ON CONFLICT (task_id, name) DO UPDATE SET value = excluded.value, run_id = excluded.run_id, created_at = now();
    RETURN true;
END
$$;
