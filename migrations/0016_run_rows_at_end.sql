-- A run's row in absurd.runs is written once, when the run ends (issue 14).
--
-- Until now a claim inserted a 'running' row per run and every ending updated it: per task completed, one
-- more heap row and index entry at the claim and one more row version at the completion. The run in
-- progress is already described by its task (current_run, worker_id, attempts, the lease); its start time
-- joins them in tasks.run_started_at. absurd.runs now holds ended runs only, inserted by the function that
-- ends the run (complete_runs, end_failed_run, finish_cancelled, suspend_run, release_runs) in the same
-- statement or transaction as the task's own change, and view absurd.attempts shows the whole history:
-- the ended runs and the one in progress.

ALTER TABLE absurd.tasks ADD COLUMN run_started_at timestamptz;

-- Runs in progress move onto their tasks.
UPDATE absurd.tasks t SET run_started_at = r.started_at
FROM absurd.runs r
WHERE r.task_id = t.id AND r.attempt = t.attempts AND t.state = 'running';
DELETE FROM absurd.runs WHERE state = 'running';

CREATE VIEW absurd.attempts AS
SELECT task_id, attempt, id, worker_id, state, started_at, finished_at, failure_reason, error
FROM absurd.runs
UNION ALL
SELECT t.id, t.attempts, t.current_run, coalesce(t.worker_id, ''), 'running', coalesce(t.run_started_at, now()),
       NULL::timestamptz, NULL::text, NULL::jsonb
FROM absurd.tasks t WHERE t.state = 'running';
GRANT SELECT ON absurd.attempts TO absurd_worker, absurd_scheduler, absurd_readonly;

-- The run of task row t (as it was while running) ends in p_state.
CREATE FUNCTION absurd.end_run(t absurd.tasks, p_state text, p_reason text, p_error jsonb) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO absurd.runs (task_id, attempt, id, worker_id, state, started_at, finished_at, failure_reason, error)
    VALUES (t.id, t.attempts, t.current_run, coalesce(t.worker_id, ''), p_state, coalesce(t.run_started_at, now()),
            now(), p_reason, p_error)
$$;
REVOKE ALL ON FUNCTION absurd.end_run(absurd.tasks, text, text, jsonb) FROM PUBLIC;

CREATE OR REPLACE FUNCTION absurd.start_runs(p_ids bigint[], p_worker text, p_lease_s double precision)
RETURNS TABLE (task_id bigint, run_id bigint, attempt integer, name text, params jsonb, headers jsonb,
               timeout_s double precision, failures integer, max_attempts integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY
    WITH claimed AS (
        UPDATE absurd.tasks t
        SET state = 'running', attempts = t.attempts + 1, current_run = nextval('absurd.run_ids'),
            worker_id = p_worker, lease_expires_at = now() + make_interval(secs => p_lease_s),
            started_at = coalesce(t.started_at, now()), run_started_at = now(), wait_event = NULL
        WHERE t.id = ANY(p_ids)
        RETURNING t.id, t.current_run, t.attempts, t.name, t.params, t.headers, t.timeout_s, t.failures,
                  t.max_attempts
    )
    SELECT * FROM claimed;
END
$$;

CREATE OR REPLACE FUNCTION absurd.complete_runs(p_task_ids bigint[], p_run_ids bigint[], p_results jsonb[])
RETURNS TABLE (task_id bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_done bigint[];
    v_gates text[];
    v_started timestamptz[];
BEGIN
    WITH input AS (
        SELECT * FROM unnest(p_task_ids, p_run_ids, p_results) AS u(task_id, run_id, result)
    ), done AS (
        -- Completion leaves current_run, worker_id and run_started_at as the run had them.
        UPDATE absurd.tasks t
        SET state = 'completed', result = i.result, finished_at = now(), lease_expires_at = NULL
        FROM input i
        WHERE t.id = i.task_id AND t.current_run = i.run_id AND t.state = 'running' COLLATE "C"
          AND t.lease_expires_at > now()
        RETURNING t.id, t.attempts, t.current_run, t.worker_id, t.run_started_at, t.workflow_id, t.gate_key
    ), ended AS (
        INSERT INTO absurd.runs (task_id, attempt, id, worker_id, state, started_at, finished_at)
        SELECT done.id, done.attempts, done.current_run, coalesce(done.worker_id, ''), 'completed',
               coalesce(done.run_started_at, now()), now()
        FROM done
    )
    SELECT array_agg(done.id) FILTER (WHERE done.workflow_id IS NOT NULL),
           array_agg(done.gate_key ORDER BY done.gate_key, done.id) FILTER (WHERE done.gate_key IS NOT NULL),
           array_agg(done.run_started_at ORDER BY done.gate_key, done.id) FILTER (WHERE done.gate_key IS NOT NULL),
           array_agg(done.id)
    INTO v_done, v_gates, v_started, p_task_ids
    FROM done;
    IF v_done IS NOT NULL THEN
        PERFORM absurd.release_dependents(v_done, false);
    END IF;
    IF v_gates IS NOT NULL THEN
        FOR i IN 1 .. cardinality(v_gates) LOOP
            PERFORM absurd.record_gate_outcome(v_gates[i], true, v_started[i]);
        END LOOP;
        PERFORM pg_notify('absurd_wake', '');
    END IF;
    RETURN QUERY SELECT unnest(coalesce(p_task_ids, '{}'::bigint[]));
END
$$;

CREATE OR REPLACE FUNCTION absurd.end_failed_run(t absurd.tasks, p_reason text, p_error jsonb, p_permanent boolean)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_crash boolean := p_reason = 'lease_expired';
    v_failures integer := t.failures + CASE WHEN v_crash THEN 0 ELSE 1 END;
    v_expiries integer := t.lease_expiries + CASE WHEN v_crash THEN 1 ELSE 0 END;
    v_state text;
BEGIN
    PERFORM absurd.end_run(t, 'failed', p_reason, p_error);
    IF t.cancel_requested_at IS NOT NULL THEN
        v_state := 'cancelled';
    ELSIF p_permanent OR t.retry->>'kind' = 'none'
          OR (NOT v_crash AND v_failures >= t.max_attempts)
          OR (v_crash AND v_expiries >= t.max_lease_expiries) THEN
        v_state := 'failed';
    ELSE
        v_state := 'pending';
    END IF;
    UPDATE absurd.tasks
    SET state = v_state, failures = v_failures, lease_expiries = v_expiries, last_error = p_error,
        lease_expires_at = NULL,
        available_at = CASE WHEN v_state = 'pending'
                            THEN now() + absurd.retry_delay(t.retry, CASE WHEN v_crash THEN v_expiries
                                                                          ELSE v_failures END)
                            ELSE available_at END,
        finished_at = CASE WHEN v_state = 'pending' THEN NULL ELSE now() END
    WHERE id = t.id;
    IF v_state = 'failed' THEN
        INSERT INTO absurd.dlq (task_id, queue, task_name, reason, error)
        VALUES (t.id, t.queue, t.name,
                CASE WHEN p_permanent THEN 'permanent'
                     WHEN t.retry->>'kind' = 'none' THEN 'no_retry'
                     WHEN v_crash THEN 'lease_expired' ELSE 'exhausted' END,
                p_error);
    END IF;
    -- Invalid input, cancellations and dead workers say nothing about the health of what the breaker guards.
    IF t.gate_key IS NOT NULL AND NOT p_permanent AND NOT v_crash AND v_state <> 'cancelled' THEN
        PERFORM absurd.record_gate_outcome(t.gate_key, false, t.run_started_at);
    END IF;
    IF t.gate_key IS NOT NULL THEN
        PERFORM pg_notify('absurd_wake', '');
    END IF;
    RETURN v_state;
END
$$;

CREATE OR REPLACE FUNCTION absurd.finish_cancelled(p_task_id bigint, p_run_id bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t absurd.tasks;
BEGIN
    UPDATE absurd.tasks
    SET state = 'cancelled', finished_at = now(), lease_expires_at = NULL
    WHERE id = p_task_id AND current_run = p_run_id AND state = 'running' AND lease_expires_at > now()
      AND cancel_requested_at IS NOT NULL
    RETURNING * INTO t;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM absurd.end_run(t, 'cancelled', 'cancelled', NULL);
    RETURN true;
END
$$;

CREATE OR REPLACE FUNCTION absurd.suspend_run(p_task_id bigint, p_run_id bigint, p_until timestamptz, p_event text)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t absurd.tasks;
BEGIN
    SELECT * INTO t FROM absurd.tasks
    WHERE id = p_task_id AND current_run = p_run_id AND state = 'running' AND lease_expires_at > now()
    FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE absurd.tasks
    SET state = 'sleeping', available_at = p_until, wait_event = p_event, lease_expires_at = NULL,
        worker_id = NULL
    WHERE id = p_task_id;
    PERFORM absurd.end_run(t, 'suspended', NULL, NULL);
    RETURN true;
END
$$;

CREATE OR REPLACE FUNCTION absurd.release_runs(p_task_ids bigint[], p_run_ids bigint[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    -- Locked first: the run rows need the worker the update clears.
    WITH held AS (
        SELECT t.* FROM absurd.tasks t
        JOIN unnest(p_task_ids, p_run_ids) AS u(task_id, run_id) ON t.id = u.task_id AND t.current_run = u.run_id
        WHERE t.state = 'running' AND t.lease_expires_at > now()
        ORDER BY t.id
        FOR UPDATE OF t
    ), released AS (
        UPDATE absurd.tasks t
        SET state = 'pending', available_at = now(), lease_expires_at = NULL, worker_id = NULL
        FROM held WHERE t.id = held.id
        RETURNING held.id, held.attempts, held.current_run, held.worker_id, held.run_started_at
    ), ended AS (
        INSERT INTO absurd.runs (task_id, attempt, id, worker_id, state, started_at, finished_at)
        SELECT r.id, r.attempts, r.current_run, coalesce(r.worker_id, ''), 'released',
               coalesce(r.run_started_at, now()), now()
        FROM released r
    )
    SELECT count(*) INTO n FROM released;
    PERFORM pg_notify('absurd_wake', '');
    RETURN n;
END
$$;

-- Log tails are kept for the run in progress (the task's current run) and for ended runs.
CREATE OR REPLACE FUNCTION absurd.save_run_log(p_task_id bigint, p_run_id bigint, p_lines jsonb, p_dropped integer)
RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO absurd.run_logs AS l (run_id, task_id, lines, dropped)
    SELECT p_run_id, p_task_id, p_lines, p_dropped
    WHERE EXISTS (SELECT 1 FROM absurd.tasks t WHERE t.id = p_task_id AND t.current_run = p_run_id)
       OR EXISTS (SELECT 1 FROM absurd.runs r WHERE r.task_id = p_task_id AND r.id = p_run_id)
    ON CONFLICT (run_id) DO UPDATE SET lines = excluded.lines, dropped = excluded.dropped, updated_at = now()
    RETURNING true
$$;
