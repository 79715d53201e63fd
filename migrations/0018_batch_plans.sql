-- The functions that end or renew a batch of runs read each task by its primary key, whatever the batch's
-- size and whatever the statistics say (issue 14).
--
-- They joined the batch (an unnest of the arrays) to absurd.tasks. Under a custom plan, which PL/pgSQL
-- uses for a statement's first five calls on each connection, the planner knows the batch's size; with
-- statistics taken while few tasks ran (after a large enqueue), it estimated one running task and, once the
-- batch passed a few hundred, chose to scan the table for the running tasks and re-scan the batch for each:
-- completing 500 runs among 30,000 tasks removed 249,500 rows by join filter and took 65 ms instead of 3
-- (`bench.profile --concurrency 512`: 31 ms a call through a whole drain). No setting or rewrite of the
-- join kept every plan right, so there is no join: the batch is sorted by task id, the tasks are read by
-- `id = ANY(ids)`, an index condition on the primary key, and each row finds its own run id and result by
-- width_bucket, a binary search of the sorted ids (of two outcomes for one task, the newer run's sorts
-- last and is the one found). tests/queue/test_completion_plan.py checks every plan, custom and generic.
-- The state test stays `COLLATE "C"` (0001_queue.sql), which keeps tasks_leases out of the choice.

CREATE OR REPLACE FUNCTION absurd.complete_runs(p_task_ids bigint[], p_run_ids bigint[], p_results jsonb[])
RETURNS TABLE (task_id bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_ids bigint[];
    v_runs bigint[];
    v_results jsonb[];
    v_done bigint[];
    v_gates text[];
    v_started timestamptz[];
BEGIN
    SELECT array_agg(u.id ORDER BY u.id, u.run), array_agg(u.run ORDER BY u.id, u.run),
           array_agg(u.result ORDER BY u.id, u.run)
    INTO v_ids, v_runs, v_results
    FROM unnest(p_task_ids, p_run_ids, p_results) AS u(id, run, result);
    WITH done AS (
        -- Completion leaves current_run, worker_id and run_started_at as the run had them.
        UPDATE absurd.tasks t
        SET state = 'completed', result = v_results[width_bucket(t.id, v_ids)], finished_at = now(),
            lease_expires_at = NULL
        WHERE t.id = ANY(v_ids) AND t.current_run = v_runs[width_bucket(t.id, v_ids)]
          AND t.state = 'running' COLLATE "C" AND t.lease_expires_at > now()
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

-- Now PL/pgSQL (was LANGUAGE sql), for the sorted batch in variables.
CREATE OR REPLACE FUNCTION absurd.extend_leases(p_task_ids bigint[], p_run_ids bigint[], p_lease_s double precision)
RETURNS TABLE (task_id bigint, cancel_requested boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_ids bigint[];
    v_runs bigint[];
BEGIN
    SELECT array_agg(u.id ORDER BY u.id, u.run), array_agg(u.run ORDER BY u.id, u.run)
    INTO v_ids, v_runs
    FROM unnest(p_task_ids, p_run_ids) AS u(id, run);
    RETURN QUERY
    WITH free AS (
        SELECT t.id FROM absurd.tasks t
        WHERE t.id = ANY(v_ids) AND t.current_run = v_runs[width_bucket(t.id, v_ids)]
          AND t.state = 'running' COLLATE "C" AND t.lease_expires_at > now()
        FOR UPDATE OF t SKIP LOCKED
    ), renewed AS (
        UPDATE absurd.tasks t SET lease_expires_at = now() + make_interval(secs => p_lease_s)
        FROM free WHERE t.id = free.id
        RETURNING t.id, t.cancel_requested_at IS NOT NULL AS cancel
    ), busy AS (
        SELECT t.id FROM absurd.tasks t
        WHERE t.id = ANY(v_ids) AND t.current_run = v_runs[width_bucket(t.id, v_ids)]
          AND t.state = 'running' COLLATE "C" AND t.lease_expires_at > now()
          AND t.id NOT IN (SELECT free.id FROM free)
    )
    SELECT renewed.id, renewed.cancel FROM renewed
    UNION ALL
    SELECT busy.id, false FROM busy;
END
$$;

CREATE OR REPLACE FUNCTION absurd.release_runs(p_task_ids bigint[], p_run_ids bigint[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_ids bigint[];
    v_runs bigint[];
    n integer;
BEGIN
    SELECT array_agg(u.id ORDER BY u.id, u.run), array_agg(u.run ORDER BY u.id, u.run)
    INTO v_ids, v_runs
    FROM unnest(p_task_ids, p_run_ids) AS u(id, run);
    -- Locked first: the run rows need the worker the update clears.
    WITH held AS (
        SELECT t.* FROM absurd.tasks t
        WHERE t.id = ANY(v_ids) AND t.current_run = v_runs[width_bucket(t.id, v_ids)]
          AND t.state = 'running' COLLATE "C" AND t.lease_expires_at > now()
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
