-- Fixes from the queue review (issue 10): reference resolution, lease renewal without lock waits, claim
-- fairness between gated and ungated work, a reaper that one bad run cannot block, iterative cancel cascades,
-- cleanup that keeps unfinished workflows whole, no fan-out after a cancel, and gate locks in key order.

-- Failures past ~1025 overflowed power(2, n) before the cap applied: cap the exponent, not the product.
CREATE OR REPLACE FUNCTION absurd.retry_delay(p_policy jsonb, p_failures integer) RETURNS interval
LANGUAGE sql VOLATILE AS $$
    SELECT make_interval(secs => CASE p_policy->>'kind'
        WHEN 'fixed' THEN (p_policy->>'base_s')::double precision
        WHEN 'exponential' THEN random() * least(
            (p_policy->>'cap_s')::double precision,
            (p_policy->>'base_s')::double precision * power(2, least(greatest(p_failures - 1, 0), 60)))
        ELSE 0 END)
$$;

-- References are substituted left to right in one pass over the original text, so a parent's result that
-- itself contains "${...}" is inserted as it is and never expanded again (it looped forever before).
CREATE OR REPLACE FUNCTION absurd.resolve_refs(p_value jsonb, p_workflow bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_pattern constant text := '\$\{([A-Za-z0-9_.:-]+?)\.result((\.[A-Za-z0-9_-]+)*)\}';
    v_text text;
    v_match text[];
    v_parts text[];
    v_built text;
    v_i integer := 1;
    v_out jsonb;
BEGIN
    CASE jsonb_typeof(p_value)
    WHEN 'object' THEN
        SELECT coalesce(jsonb_object_agg(e.key, absurd.resolve_refs(e.value, p_workflow)), '{}'::jsonb)
        INTO v_out FROM jsonb_each(p_value) AS e;
        RETURN v_out;
    WHEN 'array' THEN
        SELECT coalesce(jsonb_agg(absurd.resolve_refs(e.value, p_workflow) ORDER BY e.ord), '[]'::jsonb)
        INTO v_out FROM jsonb_array_elements(p_value) WITH ORDINALITY AS e(value, ord);
        RETURN v_out;
    WHEN 'string' THEN
        v_text := p_value #>> '{}';
        IF strpos(v_text, '${') = 0 THEN
            RETURN p_value;
        END IF;
        v_match := regexp_match(v_text, '^' || v_pattern || '$');
        IF v_match IS NOT NULL THEN
            RETURN coalesce(absurd.ref_value(p_workflow, v_match[1], v_match[2]), 'null'::jsonb);
        END IF;
        v_parts := regexp_split_to_array(v_text, v_pattern);
        v_built := v_parts[1];
        FOR v_match IN SELECT m FROM regexp_matches(v_text, v_pattern, 'g') AS m LOOP
            v_i := v_i + 1;
            v_built := v_built || coalesce(absurd.ref_value(p_workflow, v_match[1], v_match[2]) #>> '{}', '')
                       || coalesce(v_parts[v_i], '');
        END LOOP;
        RETURN to_jsonb(v_built);
    ELSE
        RETURN p_value;
    END CASE;
END
$$;

-- The dependents are locked first, in id order; the update is a new statement, so its snapshot holds every
-- parent that committed before those locks were granted. Two parents completing at once in two transactions
-- therefore both appear in the join's resolved references (the update alone re-read the row after waiting for
-- it but kept its old snapshot, and resolved the other parent to null).
CREATE OR REPLACE FUNCTION absurd.release_dependents(p_parents bigint[], p_only_optional boolean) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    PERFORM 1 FROM absurd.tasks c
    WHERE c.id IN (SELECT d.task_id FROM absurd.task_deps d
                   WHERE d.depends_on = ANY(p_parents) AND (d.optional OR NOT p_only_optional))
      AND c.state = 'waiting'
    ORDER BY c.id
    FOR UPDATE;
    WITH met AS (
        SELECT d.task_id, count(*) AS n FROM absurd.task_deps d
        WHERE d.depends_on = ANY(p_parents) AND (d.optional OR NOT p_only_optional)
        GROUP BY d.task_id
    ), released AS (
        UPDATE absurd.tasks c
        SET deps_pending = c.deps_pending - met.n,
            state = CASE WHEN c.deps_pending - met.n = 0 THEN 'pending' ELSE c.state END,
            available_at = CASE WHEN c.deps_pending - met.n = 0 THEN greatest(c.available_at, now())
                                ELSE c.available_at END,
            -- Most params hold no reference; the text test spares them a PL/pgSQL call.
            params = CASE WHEN c.deps_pending - met.n = 0 AND strpos(c.params::text, '${') > 0
                          THEN absurd.resolve_refs(c.params, c.workflow_id) ELSE c.params END
        FROM met WHERE c.id = met.task_id AND c.state = 'waiting'
        RETURNING c.queue, c.deps_pending
    )
    SELECT count(*) FILTER (WHERE deps_pending = 0) INTO n FROM released;
    IF n > 0 THEN
        PERFORM pg_notify('absurd_wake', '');
    END IF;
    RETURN n;
END
$$;

-- As 0003, but gates are locked in key order (concurrent completers deadlocked on pairs in opposite orders).
CREATE OR REPLACE FUNCTION absurd.complete_runs(p_task_ids bigint[], p_run_ids bigint[], p_results jsonb[])
RETURNS TABLE (task_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_done bigint[];
    v_gates text[];
    v_key text;
BEGIN
    WITH input AS (
        SELECT * FROM unnest(p_task_ids, p_run_ids, p_results) AS u(task_id, run_id, result)
    ), done AS (
        UPDATE absurd.tasks t
        SET state = 'completed', result = i.result, finished_at = now(), lease_expires_at = NULL
        FROM input i
        WHERE t.id = i.task_id AND t.current_run = i.run_id AND t.state = 'running'
          AND t.lease_expires_at > now()
        RETURNING t.id, t.attempts, t.workflow_id, t.gate_key
    ), ended AS (
        UPDATE absurd.runs r SET state = 'completed', finished_at = now()
        FROM done WHERE r.task_id = done.id AND r.attempt = done.attempts
    )
    SELECT array_agg(done.id) FILTER (WHERE done.workflow_id IS NOT NULL),
           array_agg(done.gate_key ORDER BY done.gate_key) FILTER (WHERE done.gate_key IS NOT NULL),
           array_agg(done.id)
    INTO v_done, v_gates, p_task_ids
    FROM done;
    IF v_done IS NOT NULL THEN
        PERFORM absurd.release_dependents(v_done, false);
    END IF;
    IF v_gates IS NOT NULL THEN
        FOREACH v_key IN ARRAY v_gates LOOP
            PERFORM absurd.record_gate_outcome(v_key, true);
        END LOOP;
        PERFORM pg_notify('absurd_wake', '');
    END IF;
    RETURN QUERY SELECT unnest(coalesce(p_task_ids, '{}'::bigint[]));
END
$$;

-- Rows another transaction holds (an outcome being written with its hook, a cancel) are skipped, not waited
-- for, and reported as still held: a slow hook must not stall the renewal of the worker's other leases.
-- A held row is renewed at a later beat; a row whose lease has lapsed or whose run changed is reported lost.
CREATE OR REPLACE FUNCTION absurd.extend_leases(p_task_ids bigint[], p_run_ids bigint[], p_lease_s double precision)
RETURNS TABLE (task_id bigint, cancel_requested boolean)
LANGUAGE sql AS $$
    WITH input AS (
        SELECT * FROM unnest(p_task_ids, p_run_ids) AS u(task_id, run_id)
    ), free AS (
        SELECT t.id FROM absurd.tasks t JOIN input i ON t.id = i.task_id AND t.current_run = i.run_id
        WHERE t.state = 'running' AND t.lease_expires_at > now()
        FOR UPDATE OF t SKIP LOCKED
    ), renewed AS (
        UPDATE absurd.tasks t SET lease_expires_at = now() + make_interval(secs => p_lease_s)
        FROM free WHERE t.id = free.id
        RETURNING t.id, t.cancel_requested_at IS NOT NULL AS cancel
    ), busy AS (
        SELECT t.id FROM absurd.tasks t JOIN input i ON t.id = i.task_id AND t.current_run = i.run_id
        WHERE t.state = 'running' AND t.lease_expires_at > now()
          AND NOT EXISTS (SELECT 1 FROM free WHERE free.id = t.id)
    )
    SELECT id, cancel FROM renewed
    UNION ALL
    SELECT id, false FROM busy
$$;

-- One subtransaction per run: a run whose failure cannot be recorded is reported and left for the next
-- pass, and every other expired run is still reaped. Gates are locked in key order, as by complete_runs.
CREATE OR REPLACE FUNCTION absurd.reap_expired(p_limit integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    t absurd.tasks;
    n integer := 0;
BEGIN
    FOR t IN
        SELECT * FROM (
            SELECT * FROM absurd.tasks
            WHERE state = 'running' AND lease_expires_at < now()
            ORDER BY lease_expires_at LIMIT p_limit
            FOR UPDATE SKIP LOCKED
        ) expired
        ORDER BY expired.gate_key NULLS FIRST, expired.id
    LOOP
        BEGIN
            PERFORM absurd.end_failed_run(t, 'lease_expired',
                jsonb_build_object('type', 'LeaseExpired',
                                   'message', format('lease of run %s held by worker %s expired at %s',
                                                     t.current_run, t.worker_id, t.lease_expires_at)),
                false);
            n := n + 1;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'cannot reap run % of task %: % (%); other runs are reaped, this one is retried',
                t.current_run, t.id, SQLERRM, SQLSTATE;
        END;
    END LOOP;
    IF n > 0 THEN
        PERFORM pg_notify('absurd_wake', '');
    END IF;
    RETURN n;
END
$$;

-- A dead parent: every waiting task that needs it, directly or through other such tasks, is cancelled in one
-- statement, so the cascade no longer nests one trigger call per DAG level (a chain of 1000 overflowed the
-- stack). The trigger still fires for each of those, finds nothing left to cancel, and releases their
-- optional edges.
CREATE OR REPLACE FUNCTION absurd.settle_dead_parent(p_task_id bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    WITH RECURSIVE doomed(id) AS (
        SELECT d.task_id FROM absurd.task_deps d JOIN absurd.tasks c ON c.id = d.task_id
        WHERE d.depends_on = p_task_id AND NOT d.optional AND c.state = 'waiting'
        UNION
        SELECT d.task_id FROM doomed JOIN absurd.task_deps d ON d.depends_on = doomed.id
        JOIN absurd.tasks c ON c.id = d.task_id
        WHERE NOT d.optional AND c.state = 'waiting'
    )
    UPDATE absurd.tasks c SET state = 'cancelled', finished_at = now()
    FROM doomed WHERE c.id = doomed.id AND c.state = 'waiting';
    PERFORM absurd.release_dependents(ARRAY[p_task_id], true);
END
$$;

-- Fan-out after a cancel: a parent asked to cancel, or in a cancelled workflow, adds its children already
-- cancelled, so nothing spawned after cancel_workflow runs.
CREATE OR REPLACE FUNCTION absurd.spawn_children(p_parent bigint, p_run bigint, p_key text, p_names text[],
                                                 p_steps text[], p_params jsonb[], p_queue text)
RETURNS TABLE (task_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_workflow bigint;
    v_cancelled boolean;
    v_ids bigint[];
    v_done jsonb;
BEGIN
    SELECT t.workflow_id, t.cancel_requested_at IS NOT NULL INTO v_workflow, v_cancelled FROM absurd.tasks t
    WHERE t.id = p_parent AND t.current_run = p_run AND t.state = 'running' AND t.lease_expires_at > now()
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lease lost: run % of task % cannot spawn children', p_run, p_parent
            USING ERRCODE = 'P0002';
    END IF;
    SELECT c.value INTO v_done FROM absurd.checkpoints c
    WHERE c.task_id = p_parent AND c.name = '$children:' || p_key;
    IF FOUND THEN
        RETURN QUERY SELECT (jsonb_array_elements_text(v_done))::bigint;
        RETURN;
    END IF;
    IF v_workflow IS NULL THEN
        INSERT INTO absurd.workflows (name) VALUES ('adhoc:' || p_parent) RETURNING id INTO v_workflow;
        UPDATE absurd.tasks SET workflow_id = v_workflow, step_name = coalesce(step_name, name)
        WHERE id = p_parent;
    END IF;
    v_cancelled := v_cancelled
        OR EXISTS (SELECT 1 FROM absurd.workflows w WHERE w.id = v_workflow AND w.cancelled_at IS NOT NULL);
    PERFORM absurd.ensure_queue(p_queue);
    WITH ins AS (
        INSERT INTO absurd.tasks (queue, name, params, workflow_id, step_name, gate_key, state, finished_at,
                                  cancel_requested_at)
        SELECT p_queue, u.name, coalesce(u.params, '{}'), v_workflow, u.step,
               (SELECT g.key FROM absurd.gates g WHERE g.key = u.name),
               CASE WHEN v_cancelled THEN 'cancelled' ELSE 'pending' END,
               CASE WHEN v_cancelled THEN now() END, CASE WHEN v_cancelled THEN now() END
        FROM unnest(p_names, p_steps, p_params) AS u(name, step, params)
        RETURNING id
    )
    SELECT array_agg(id) INTO v_ids FROM ins;
    WITH edges AS (
        INSERT INTO absurd.task_deps (task_id, depends_on, optional)
        SELECT d.task_id, child, d.optional
        FROM absurd.task_deps d CROSS JOIN unnest(v_ids) AS child
        WHERE d.depends_on = p_parent
        RETURNING task_deps.task_id AS waiter
    ), counted AS (
        SELECT e.waiter, count(*) AS n FROM edges e GROUP BY e.waiter
    )
    UPDATE absurd.tasks t SET deps_pending = t.deps_pending + counted.n
    FROM counted WHERE t.id = counted.waiter;
    INSERT INTO absurd.checkpoints (task_id, name, value, run_id)
    VALUES (p_parent, '$children:' || p_key, to_jsonb(coalesce(v_ids, '{}'::bigint[])), p_run);
    PERFORM pg_notify('absurd_wake', p_queue);
    RETURN QUERY SELECT unnest(v_ids);
END
$$;

-- Cleanup keeps every task of a workflow that still has unfinished tasks: a blocked join resolves its
-- references against its parents when it is released, however long after retention that is.
CREATE OR REPLACE FUNCTION absurd.cleanup(p_older_than interval, p_batch integer) RETURNS integer
LANGUAGE plpgsql AS $$
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

-- Claim: gated and ungated candidates compete in one order (priority, then age), so gated work is not starved
-- while ungated work fills every claim; and breakers whose cooldown has passed turn half-open on every claim,
-- not only when ungated work left room. Gate rows are locked (SKIP LOCKED, key order) while their tasks are
-- picked, so concurrent claimers never exceed a limit.
CREATE OR REPLACE FUNCTION absurd.claim(p_queue text, p_worker text, p_limit integer, p_lease_s double precision)
RETURNS TABLE (task_id bigint, run_id bigint, attempt integer, name text, params jsonb, headers jsonb,
               timeout_s double precision, failures integer, max_attempts integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_ids bigint[];
    v_candidates bigint[] := '{}';
    v_cap integer;
    v_running integer;
    g absurd.gates;
BEGIN
    IF EXISTS (SELECT 1 FROM absurd.queues q WHERE q.name = p_queue AND q.paused) THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM absurd.gates) THEN
        FOR g IN SELECT * FROM absurd.gates
                 WHERE breaker_state = 'open' AND cooldown_until <= now()
                 ORDER BY key FOR UPDATE SKIP LOCKED LOOP
            PERFORM absurd.set_breaker_state(g.key, 'half_open', 'cooldown over', g.cooldown_s);
        END LOOP;
        FOR g IN
            SELECT gt.* FROM absurd.gates gt
            WHERE gt.breaker_state <> 'open'
              AND EXISTS (SELECT 1 FROM absurd.tasks t
                          WHERE t.gate_key = gt.key AND t.queue = p_queue
                            AND t.state IN ('pending', 'sleeping') AND t.available_at <= now())
            ORDER BY gt.key
            FOR UPDATE SKIP LOCKED
        LOOP
            v_running := (SELECT count(*) FROM absurd.tasks t WHERE t.gate_key = g.key AND t.state = 'running');
            v_cap := p_limit;
            IF g.max_running IS NOT NULL THEN
                v_cap := least(v_cap, g.max_running - v_running);
            END IF;
            IF g.breaker_state = 'half_open' THEN
                v_cap := least(v_cap, g.half_open_trials - v_running);
            END IF;
            CONTINUE WHEN v_cap <= 0;
            v_candidates := v_candidates || ARRAY(SELECT absurd.ready_gated_tasks(g.key, p_queue, v_cap));
        END LOOP;
    END IF;
    v_candidates := v_candidates || ARRAY(SELECT absurd.ready_tasks(p_queue, p_limit));
    v_ids := ARRAY(SELECT t.id FROM absurd.tasks t WHERE t.id = ANY(v_candidates)
                   ORDER BY t.priority DESC, t.available_at, t.id LIMIT p_limit);
    IF cardinality(v_ids) > 0 THEN
        RETURN QUERY SELECT * FROM absurd.start_runs(v_ids, p_worker, p_lease_s);
    END IF;
END
$$;
