-- Generated from migrations/ by `make schema` (python -m absurd.schema_dump); do not edit.
--
-- PostgreSQL database dump
--

--
-- Name: absurd; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA absurd;

--
-- Name: products; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA products;

--
-- Name: web; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA web;

--
-- Name: await_event(bigint, bigint, text, double precision); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.await_event(p_task_id bigint, p_run_id bigint, p_name text, p_timeout_s double precision) RETURNS TABLE(status text, payload jsonb)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    v_payload jsonb;
    v_deadline timestamptz;
    v_key text := '$await:' || p_name;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('absurd.event:' || p_name, 0));
    SELECT e.payload INTO v_payload FROM absurd.events e WHERE e.name = p_name;
    IF FOUND THEN
        RETURN QUERY SELECT 'received'::text, v_payload;
        RETURN;
    END IF;
    -- The deadline is fixed by the first wait, so re-runs do not push it back.
    SELECT (c.value->>'deadline')::timestamptz INTO v_deadline
    FROM absurd.checkpoints c WHERE c.task_id = p_task_id AND c.name = v_key;
    IF NOT FOUND THEN
        v_deadline := CASE WHEN p_timeout_s IS NULL THEN 'infinity'::timestamptz
                           ELSE now() + make_interval(secs => p_timeout_s) END;
        IF NOT absurd.set_checkpoint(p_task_id, p_run_id, v_key,
                                     jsonb_build_object('deadline', v_deadline)) THEN
            RETURN QUERY SELECT 'lease_lost'::text, NULL::jsonb;
            RETURN;
        END IF;
    END IF;
    IF v_deadline <= now() THEN
        RETURN QUERY SELECT 'timeout'::text, NULL::jsonb;
        RETURN;
    END IF;
    IF NOT absurd.suspend_run(p_task_id, p_run_id, v_deadline, p_name) THEN
        RETURN QUERY SELECT 'lease_lost'::text, NULL::jsonb;
        RETURN;
    END IF;
    RETURN QUERY SELECT 'suspended'::text, NULL::jsonb;
END
$_$;

--
-- Name: cancel_task(bigint); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.cancel_task(p_task_id bigint) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_state text;
BEGIN
    SELECT state INTO v_state FROM absurd.tasks WHERE id = p_task_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF v_state IN ('pending', 'sleeping', 'waiting') THEN
        UPDATE absurd.tasks SET state = 'cancelled', finished_at = now(), cancel_requested_at = now()
        WHERE id = p_task_id;
        RETURN 'cancelled';
    ELSIF v_state = 'running' THEN
        UPDATE absurd.tasks SET cancel_requested_at = coalesce(cancel_requested_at, now())
        WHERE id = p_task_id;
        RETURN 'running';
    END IF;
    RETURN v_state;
END
$$;

--
-- Name: cancel_workflow(bigint); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.cancel_workflow(p_workflow bigint) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    t record;
    n integer := 0;
BEGIN
    UPDATE absurd.workflows SET cancelled_at = coalesce(cancelled_at, now()) WHERE id = p_workflow;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    FOR t IN SELECT id FROM absurd.tasks
             WHERE workflow_id = p_workflow AND state IN ('waiting', 'pending', 'sleeping', 'running')
             ORDER BY id LOOP
        PERFORM absurd.cancel_task(t.id);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

--
-- Name: claim(text, text, integer, double precision); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.claim(p_queue text, p_worker text, p_limit integer, p_lease_s double precision) RETURNS TABLE(task_id bigint, run_id bigint, attempt integer, name text, params jsonb, headers jsonb, timeout_s double precision, failures integer, max_attempts integer)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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
                v_cap := least(v_cap, g.half_open_trials - g.trials_admitted);
            END IF;
            CONTINUE WHEN v_cap <= 0;
            v_candidates := v_candidates || ARRAY(SELECT absurd.ready_gated_tasks(g.key, p_queue, v_cap));
        END LOOP;
    END IF;
    IF cardinality(v_candidates) = 0 THEN
        -- The fast path: ungated candidates only, locked and ordered by the picker.
        RETURN QUERY SELECT * FROM absurd.start_runs(ARRAY(SELECT absurd.ready_tasks(p_queue, p_limit)),
                                                     p_worker, p_lease_s);
        RETURN;
    END IF;
    v_candidates := v_candidates || ARRAY(SELECT absurd.ready_tasks(p_queue, p_limit));
    v_ids := ARRAY(SELECT t.id FROM absurd.tasks t WHERE t.id = ANY(v_candidates)
                   ORDER BY t.priority DESC, t.available_at, t.id LIMIT p_limit);
    IF cardinality(v_ids) > 0 THEN
        RETURN QUERY SELECT * FROM absurd.start_runs(v_ids, p_worker, p_lease_s);
        -- Trials are counted as admitted, not as running: one that sleeps or ends early lets no other in.
        UPDATE absurd.gates ga SET trials_admitted = ga.trials_admitted + s.n
        FROM (SELECT t.gate_key, count(*) AS n FROM absurd.tasks t
              WHERE t.id = ANY(v_ids) AND t.gate_key IS NOT NULL GROUP BY t.gate_key) s
        WHERE ga.key = s.gate_key AND ga.breaker_state = 'half_open';
    END IF;
END
$$;

--
-- Name: cleanup(interval, integer); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.cleanup(p_older_than interval, p_batch integer) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

--
-- Name: complete_runs(bigint[], bigint[], jsonb[]); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.complete_runs(p_task_ids bigint[], p_run_ids bigint[], p_results jsonb[]) RETURNS TABLE(task_id bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

--
-- Name: dlq_requeue(bigint, text, text); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.dlq_requeue(p_dlq_id bigint, p_actor text, p_reason text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    e absurd.dlq;
    v_new bigint;
BEGIN
    SELECT * INTO e FROM absurd.dlq WHERE id = p_dlq_id AND resolved_at IS NULL FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no open DLQ entry with id %', p_dlq_id USING ERRCODE = 'P0002';
    END IF;
    INSERT INTO absurd.tasks (queue, name, params, headers, priority, max_attempts, retry, timeout_s,
                              workflow_id, step_name, gate_key)
    SELECT queue, name, params, headers, priority, max_attempts, retry, timeout_s, workflow_id, step_name,
           gate_key
    FROM absurd.tasks WHERE id = e.task_id
    RETURNING id INTO v_new;
    -- The workflow continues from the new task: dependents now wait on it instead.
    UPDATE absurd.task_deps SET depends_on = v_new WHERE depends_on = e.task_id;
    UPDATE absurd.dlq SET resolved_at = now(), resolution = 'requeued', resolved_by = p_actor,
                          requeued_task_id = v_new
    WHERE id = e.id;
    INSERT INTO absurd.dlq_actions (dlq_id, action, actor, reason, details)
    VALUES (e.id, 'requeue', p_actor, p_reason, jsonb_build_object('new_task_id', v_new));
    PERFORM pg_notify('absurd_wake', e.queue);
    RETURN v_new;
END
$$;

--
-- Name: dlq_retry(bigint, text, text, jsonb); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.dlq_retry(p_dlq_id bigint, p_actor text, p_reason text, p_params jsonb) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    e absurd.dlq;
BEGIN
    SELECT * INTO e FROM absurd.dlq WHERE id = p_dlq_id AND resolved_at IS NULL FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no open DLQ entry with id %', p_dlq_id USING ERRCODE = 'P0002';
    END IF;
    UPDATE absurd.tasks
    SET state = 'pending', failures = 0, lease_expiries = 0, available_at = now(), finished_at = NULL,
        params = coalesce(p_params, params)
    WHERE id = e.task_id AND state = 'failed';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'task % of DLQ entry % is no longer failed', e.task_id, p_dlq_id USING ERRCODE = 'P0002';
    END IF;
    UPDATE absurd.dlq SET resolved_at = now(), resolution = 'retried', resolved_by = p_actor WHERE id = e.id;
    INSERT INTO absurd.dlq_actions (dlq_id, action, actor, reason, details)
    VALUES (e.id, 'retry', p_actor, p_reason, jsonb_build_object('params', p_params));
    PERFORM pg_notify('absurd_wake', e.queue);
    RETURN e.task_id;
END
$$;

--
-- Name: dlq_skip(bigint, text, text); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.dlq_skip(p_dlq_id bigint, p_actor text, p_reason text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    e absurd.dlq;
BEGIN
    SELECT * INTO e FROM absurd.dlq WHERE id = p_dlq_id AND resolved_at IS NULL FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no open DLQ entry with id %', p_dlq_id USING ERRCODE = 'P0002';
    END IF;
    UPDATE absurd.dlq SET resolved_at = now(), resolution = 'skipped', resolved_by = p_actor WHERE id = e.id;
    INSERT INTO absurd.dlq_actions (dlq_id, action, actor, reason) VALUES (e.id, 'skip', p_actor, p_reason);
    PERFORM absurd.settle_dead_parent(e.task_id);
    RETURN e.task_id;
END
$$;

--
-- Name: emit_event(text, jsonb); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.emit_event(p_name text, p_payload jsonb) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    n integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('absurd.event:' || p_name, 0));
    INSERT INTO absurd.events (name, payload) VALUES (p_name, p_payload)
    ON CONFLICT (name) DO UPDATE SET payload = excluded.payload, emitted_at = now();
    UPDATE absurd.tasks SET available_at = now() WHERE state = 'sleeping' AND wait_event = p_name;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM pg_notify('absurd_wake', '');
    END IF;
    RETURN n;
END
$$;

--
-- Name: tasks; Type: TABLE; Schema: absurd; Owner: -
--

CREATE TABLE absurd.tasks (
    id bigint NOT NULL,
    queue text NOT NULL,
    name text NOT NULL,
    params jsonb DEFAULT '{}'::jsonb NOT NULL,
    headers jsonb DEFAULT '{}'::jsonb NOT NULL,
    state text DEFAULT 'pending'::text NOT NULL,
    priority integer DEFAULT 0 NOT NULL,
    available_at timestamp with time zone DEFAULT now() NOT NULL,
    max_attempts integer DEFAULT 3 NOT NULL,
    retry jsonb DEFAULT '{"kind": "exponential", "cap_s": 300, "base_s": 1}'::jsonb NOT NULL,
    timeout_s double precision,
    idempotency_key text,
    attempts integer DEFAULT 0 NOT NULL,
    failures integer DEFAULT 0 NOT NULL,
    current_run bigint,
    worker_id text,
    lease_expires_at timestamp with time zone,
    wait_event text,
    cancel_requested_at timestamp with time zone,
    result jsonb,
    last_error jsonb,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    started_at timestamp with time zone,
    finished_at timestamp with time zone,
    workflow_id bigint,
    step_name text,
    deps_pending integer DEFAULT 0 NOT NULL,
    gate_key text,
    lease_expiries integer DEFAULT 0 NOT NULL,
    max_lease_expiries integer DEFAULT 10 NOT NULL,
    run_started_at timestamp with time zone,
    CONSTRAINT tasks_max_attempts_check CHECK ((max_attempts >= 1)),
    CONSTRAINT tasks_max_lease_expiries_check CHECK ((max_lease_expiries >= 1)),
    CONSTRAINT tasks_state_check CHECK ((state = ANY (ARRAY['waiting'::text, 'pending'::text, 'running'::text, 'sleeping'::text, 'completed'::text, 'failed'::text, 'cancelled'::text]))),
    CONSTRAINT tasks_timeout_s_check CHECK (((timeout_s IS NULL) OR (timeout_s > (0)::double precision)))
)
WITH (fillfactor='80');

--
-- Name: end_failed_run(absurd.tasks, text, jsonb, boolean); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.end_failed_run(t absurd.tasks, p_reason text, p_error jsonb, p_permanent boolean) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

--
-- Name: end_run(absurd.tasks, text, text, jsonb); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.end_run(t absurd.tasks, p_state text, p_reason text, p_error jsonb) RETURNS void
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    INSERT INTO absurd.runs (task_id, attempt, id, worker_id, state, started_at, finished_at, failure_reason, error)
    VALUES (t.id, t.attempts, t.current_run, coalesce(t.worker_id, ''), p_state, coalesce(t.run_started_at, now()),
            now(), p_reason, p_error)
$$;

--
-- Name: ensure_queue(text); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.ensure_queue(p_queue text) RETURNS void
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    INSERT INTO absurd.queues (name) VALUES (p_queue) ON CONFLICT DO NOTHING
$$;

--
-- Name: extend_leases(bigint[], bigint[], double precision); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.extend_leases(p_task_ids bigint[], p_run_ids bigint[], p_lease_s double precision) RETURNS TABLE(task_id bigint, cancel_requested boolean)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

--
-- Name: fail_run(bigint, bigint, text, jsonb, boolean); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.fail_run(p_task_id bigint, p_run_id bigint, p_reason text, p_error jsonb, p_permanent boolean) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    t absurd.tasks;
BEGIN
    SELECT * INTO t FROM absurd.tasks WHERE id = p_task_id FOR UPDATE;
    IF NOT FOUND OR t.current_run IS DISTINCT FROM p_run_id OR t.state <> 'running'
       OR t.lease_expires_at <= now() THEN
        RETURN NULL;
    END IF;
    RETURN absurd.end_failed_run(t, p_reason, p_error, p_permanent);
END
$$;

--
-- Name: finish_cancelled(bigint, bigint); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.finish_cancelled(p_task_id bigint, p_run_id bigint) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

--
-- Name: fire_schedule(text, timestamp with time zone, text, bigint, text, jsonb, jsonb, text); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.fire_schedule(p_schedule text, p_fire_time timestamp with time zone, p_kind text, p_event_id bigint, p_scheduler text, p_params jsonb, p_tasks jsonb, p_error text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_fire bigint;
    v_workflow bigint;
BEGIN
    IF p_event_id IS NULL THEN
        INSERT INTO absurd.schedule_fires (schedule, fire_time, kind, scheduler_id, error)
        VALUES (p_schedule, p_fire_time, p_kind, p_scheduler, p_error)
        ON CONFLICT (schedule, fire_time) WHERE event_id IS NULL DO NOTHING
        RETURNING id INTO v_fire;
    ELSE
        INSERT INTO absurd.schedule_fires (schedule, fire_time, kind, event_id, scheduler_id, error)
        VALUES (p_schedule, p_fire_time, p_kind, p_event_id, p_scheduler, p_error)
        ON CONFLICT (schedule, event_id) WHERE event_id IS NOT NULL DO NOTHING
        RETURNING id INTO v_fire;
    END IF;
    IF v_fire IS NULL THEN
        RETURN NULL;
    END IF;
    IF p_tasks IS NOT NULL THEN
        v_workflow := absurd.submit_workflow(p_schedule, p_params, p_tasks);
        UPDATE absurd.schedule_fires SET workflow_id = v_workflow WHERE id = v_fire;
    END IF;
    UPDATE absurd.schedules SET last_fired_at = greatest(last_fired_at, p_fire_time) WHERE name = p_schedule;
    RETURN v_fire;
END
$$;

--
-- Name: log_event(); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.log_event() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    INSERT INTO absurd.event_log (name, payload) VALUES (NEW.name, NEW.payload);
    RETURN NULL;
END
$$;

--
-- Name: on_task_cancelled(); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.on_task_cancelled() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    PERFORM absurd.settle_dead_parent(NEW.id);
    RETURN NULL;
END
$$;

--
-- Name: ready_gated_tasks(text, text, integer); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.ready_gated_tasks(p_gate text, p_queue text, p_limit integer) RETURNS SETOF bigint
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT t.id FROM absurd.tasks t
    WHERE t.gate_key = p_gate AND t.queue = p_queue AND t.state IN ('pending', 'sleeping')
      AND t.available_at <= now()
    ORDER BY t.priority DESC, t.available_at, t.id
    LIMIT p_limit
    FOR UPDATE SKIP LOCKED
$$;

--
-- Name: ready_tasks(text, integer); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.ready_tasks(p_queue text, p_limit integer) RETURNS SETOF bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    RETURN QUERY
    SELECT t.id FROM absurd.tasks t
    WHERE t.queue = p_queue AND t.state IN ('pending', 'sleeping') AND t.gate_key IS NULL
      AND t.available_at <= now()
    ORDER BY t.priority DESC, t.available_at, t.id
    LIMIT p_limit
    FOR UPDATE SKIP LOCKED;
END
$$;

--
-- Name: reap_expired(integer); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.reap_expired(p_limit integer) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

--
-- Name: record_gate_outcome(text, boolean, timestamp with time zone); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.record_gate_outcome(p_key text, p_ok boolean, p_run_started timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    g absurd.gates;
    v_failures integer;
    v_calls integer;
BEGIN
    -- Locked, so concurrent outcomes move the breaker one at a time.
    SELECT * INTO g FROM absurd.gates WHERE key = p_key FOR UPDATE;
    IF NOT FOUND OR NOT g.breaker_enabled THEN
        RETURN;
    END IF;
    INSERT INTO absurd.gate_calls (key, ok) VALUES (p_key, p_ok);
    -- A run claimed before the breaker half-opened is not one of its trials: its outcome moves nothing.
    IF g.breaker_state = 'half_open' AND p_run_started < g.state_changed_at THEN
        RETURN;
    END IF;
    IF p_ok THEN
        IF g.breaker_state = 'half_open' THEN
            PERFORM absurd.set_breaker_state(p_key, 'closed', 'a trial task succeeded', NULL);
        END IF;
        RETURN;
    END IF;
    IF g.breaker_state = 'half_open' THEN
        PERFORM absurd.set_breaker_state(p_key, 'open', 'a trial task failed',
                                         least(coalesce(g.cooldown_s, g.base_cooldown_s) * 2, g.max_cooldown_s));
    ELSIF g.breaker_state = 'closed' THEN
        SELECT count(*) FILTER (WHERE NOT ok), count(*) INTO v_failures, v_calls
        FROM absurd.gate_calls
        WHERE key = p_key AND at > greatest(now() - make_interval(secs => g.window_s), g.state_changed_at);
        IF v_failures >= g.failure_threshold THEN
            PERFORM absurd.set_breaker_state(p_key, 'open',
                format('%s failures within %s s', v_failures, g.window_s), g.base_cooldown_s);
        ELSIF g.failure_rate IS NOT NULL AND v_calls >= g.min_calls
              AND v_failures::double precision / v_calls >= g.failure_rate THEN
            PERFORM absurd.set_breaker_state(p_key, 'open',
                format('failure rate %s of %s calls', round(v_failures::numeric / v_calls, 2), v_calls),
                g.base_cooldown_s);
        END IF;
    END IF;
END
$$;

--
-- Name: ref_value(bigint, text, text); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.ref_value(p_workflow bigint, p_step text, p_path text) RETURNS jsonb
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT CASE WHEN coalesce(p_path, '') = '' THEN t.result
                ELSE t.result #> string_to_array(substr(p_path, 2), '.') END
    FROM absurd.tasks t
    WHERE t.workflow_id = p_workflow AND t.step_name = p_step AND t.state = 'completed'
    ORDER BY t.id DESC LIMIT 1
$$;

--
-- Name: release_dependents(bigint[], boolean); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.release_dependents(p_parents bigint[], p_only_optional boolean) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
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
$_$;

--
-- Name: release_runs(bigint[], bigint[]); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.release_runs(p_task_ids bigint[], p_run_ids bigint[]) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

--
-- Name: resolve_refs(jsonb, bigint); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.resolve_refs(p_value jsonb, p_workflow bigint) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
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
$_$;

--
-- Name: retire_replaced_daemons(double precision); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.retire_replaced_daemons(p_silent_s double precision) RETURNS TABLE(kind text, id text)
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

--
-- Name: retry_delay(jsonb, integer); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.retry_delay(p_policy jsonb, p_failures integer) RETURNS interval
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT make_interval(secs => CASE p_policy->>'kind'
        WHEN 'fixed' THEN (p_policy->>'base_s')::double precision
        WHEN 'exponential' THEN random() * least(
            (p_policy->>'cap_s')::double precision,
            (p_policy->>'base_s')::double precision * power(2, least(greatest(p_failures - 1, 0), 60)))
        ELSE 0 END)
$$;

--
-- Name: save_run_log(bigint, bigint, jsonb, integer); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.save_run_log(p_task_id bigint, p_run_id bigint, p_lines jsonb, p_dropped integer) RETURNS boolean
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    INSERT INTO absurd.run_logs AS l (run_id, task_id, lines, dropped)
    SELECT p_run_id, p_task_id, p_lines, p_dropped
    WHERE EXISTS (SELECT 1 FROM absurd.tasks t WHERE t.id = p_task_id AND t.current_run = p_run_id)
       OR EXISTS (SELECT 1 FROM absurd.runs r WHERE r.task_id = p_task_id AND r.id = p_run_id)
    ON CONFLICT (run_id) DO UPDATE SET lines = excluded.lines, dropped = excluded.dropped, updated_at = now()
    RETURNING true
$$;

--
-- Name: set_breaker_state(text, text, text, double precision); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.set_breaker_state(p_key text, p_to text, p_reason text, p_cooldown_s double precision) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_from text;
BEGIN
    SELECT breaker_state INTO v_from FROM absurd.gates WHERE key = p_key FOR UPDATE;
    IF NOT FOUND OR v_from = p_to THEN
        RETURN;
    END IF;
    UPDATE absurd.gates
    SET breaker_state = p_to, state_changed_at = now(), cooldown_s = p_cooldown_s, trials_admitted = 0,
        cooldown_until = CASE WHEN p_to = 'open' THEN now() + make_interval(secs => p_cooldown_s) END
    WHERE key = p_key;
    INSERT INTO absurd.gate_transitions (key, from_state, to_state, reason) VALUES (p_key, v_from, p_to, p_reason);
    PERFORM pg_notify('absurd_breaker', json_build_object('key', p_key, 'from', v_from, 'to', p_to)::text);
    IF p_to <> 'open' THEN
        PERFORM pg_notify('absurd_wake', '');
    END IF;
END
$$;

--
-- Name: set_checkpoint(bigint, bigint, text, jsonb); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.set_checkpoint(p_task_id bigint, p_run_id bigint, p_name text, p_value jsonb) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

--
-- Name: settle_dead_parent(bigint); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.settle_dead_parent(p_task_id bigint) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

--
-- Name: spawn_children(bigint, bigint, text, text[], text[], jsonb[], text); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.spawn_children(p_parent bigint, p_run bigint, p_key text, p_names text[], p_steps text[], p_params jsonb[], p_queue text) RETURNS TABLE(task_id bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
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
    -- Spawned before (an earlier run of the parent): return the same children, spawn nothing.
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
$_$;

--
-- Name: spawn_many(text, text[], jsonb[], text[], integer, timestamp with time zone, integer, jsonb, double precision, jsonb, text, integer); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.spawn_many(p_queue text, p_names text[], p_params jsonb[], p_keys text[], p_priority integer, p_available_at timestamp with time zone, p_max_attempts integer, p_retry jsonb, p_timeout_s double precision, p_headers jsonb, p_gate text, p_gate_limit integer) RETURNS TABLE(ord bigint, task_id bigint, created boolean)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_ords bigint[];
    v_ids bigint[];
    v_keys text[];
    v_id bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM absurd.queues q WHERE q.name = p_queue) THEN
        PERFORM absurd.ensure_queue(p_queue);
    END IF;
    -- A gated task is only ever claimed through its gate's row, so the row must exist.
    IF p_gate IS NOT NULL THEN
        INSERT INTO absurd.gates (key, max_running) VALUES (p_gate, p_gate_limit) ON CONFLICT DO NOTHING;
    END IF;
    IF cardinality(p_names) = 1 THEN
        INSERT INTO absurd.tasks (queue, name, params, headers, priority, available_at, max_attempts, retry,
                                  timeout_s, idempotency_key, gate_key)
        VALUES (p_queue, p_names[1], coalesce(p_params[1], '{}'), coalesce(p_headers, '{}'), p_priority,
                coalesce(p_available_at, now()), p_max_attempts, p_retry, p_timeout_s, p_keys[1],
                coalesce(p_gate, (SELECT g.key FROM absurd.gates g WHERE g.key = p_names[1])))
        ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING id INTO v_id;
        PERFORM pg_notify('absurd_wake', p_queue);
        -- A new statement, so a new snapshot: it sees a key committed by a concurrent spawner that won.
        RETURN QUERY
        SELECT 1::bigint, coalesce(v_id, (SELECT t.id FROM absurd.tasks t WHERE t.idempotency_key = p_keys[1])),
               v_id IS NOT NULL;
        RETURN;
    END IF;
    WITH input AS (
        SELECT u.ord, u.name, u.params, u.key, nextval('absurd.tasks_id_seq') AS id
        FROM unnest(p_names, p_params, p_keys) WITH ORDINALITY AS u(name, params, key, ord)
    ), ins AS (
        INSERT INTO absurd.tasks (id, queue, name, params, headers, priority, available_at, max_attempts,
                                  retry, timeout_s, idempotency_key, gate_key)
        SELECT i.id, p_queue, i.name, coalesce(i.params, '{}'), coalesce(p_headers, '{}'), p_priority,
               coalesce(p_available_at, now()), p_max_attempts, p_retry, p_timeout_s, i.key,
               coalesce(p_gate, (SELECT g.key FROM absurd.gates g WHERE g.key = i.name))
        FROM input i ORDER BY i.ord
        ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING id
    )
    SELECT array_agg(i.ord ORDER BY i.ord), array_agg(ins.id ORDER BY i.ord), array_agg(i.key ORDER BY i.ord)
    INTO v_ords, v_ids, v_keys
    FROM input i LEFT JOIN ins ON ins.id = i.id;
    PERFORM pg_notify('absurd_wake', p_queue);
    -- A new statement, so a new snapshot: it sees keys committed by concurrent spawners that won.
    RETURN QUERY
    SELECT u.ord, coalesce(u.id, (SELECT t.id FROM absurd.tasks t WHERE t.idempotency_key = u.key)),
           u.id IS NOT NULL
    FROM unnest(v_ords, v_ids, v_keys) AS u(ord, id, key)
    ORDER BY u.ord;
END
$$;

--
-- Name: start_runs(bigint[], text, double precision); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.start_runs(p_ids bigint[], p_worker text, p_lease_s double precision) RETURNS TABLE(task_id bigint, run_id bigint, attempt integer, name text, params jsonb, headers jsonb, timeout_s double precision, failures integer, max_attempts integer)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

--
-- Name: submit_workflow(text, jsonb, jsonb); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.submit_workflow(p_name text, p_params jsonb, p_tasks jsonb) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_workflow bigint;
BEGIN
    INSERT INTO absurd.workflows (name, params) VALUES (p_name, coalesce(p_params, '{}'))
    RETURNING id INTO v_workflow;
    INSERT INTO absurd.queues (name)
    SELECT DISTINCT coalesce(s->>'queue', 'default') FROM jsonb_array_elements(p_tasks) s
    ON CONFLICT DO NOTHING;
    INSERT INTO absurd.gates (key)
    SELECT DISTINCT s->>'gate' FROM jsonb_array_elements(p_tasks) s WHERE s->>'gate' IS NOT NULL
    ON CONFLICT DO NOTHING;
    WITH spec AS (
        SELECT s, jsonb_array_length(coalesce(s->'depends_on', '[]')) AS n_deps
        FROM jsonb_array_elements(p_tasks) s
    )
    INSERT INTO absurd.tasks (queue, name, params, headers, state, priority, max_attempts, retry, timeout_s,
                              workflow_id, step_name, deps_pending, gate_key)
    SELECT coalesce(s->>'queue', 'default'), s->>'name', coalesce(s->'params', '{}'),
           coalesce(s->'headers', '{}'),
           CASE WHEN n_deps = 0 THEN 'pending' ELSE 'waiting' END,
           coalesce((s->>'priority')::integer, 0), coalesce((s->>'max_attempts')::integer, 3),
           coalesce(s->'retry', '{"kind": "exponential", "base_s": 1, "cap_s": 300}'),
           (s->>'timeout_s')::double precision, v_workflow, s->>'step', n_deps,
           coalesce(s->>'gate', (SELECT g.key FROM absurd.gates g WHERE g.key = s->>'name'))
    FROM spec;
    INSERT INTO absurd.task_deps (task_id, depends_on, optional)
    SELECT child.id, parent.id, coalesce((dep->>'optional')::boolean, false)
    FROM jsonb_array_elements(p_tasks) s
    CROSS JOIN LATERAL jsonb_array_elements(coalesce(s->'depends_on', '[]')) dep
    JOIN absurd.tasks child ON child.workflow_id = v_workflow AND child.step_name = s->>'step'
    JOIN absurd.tasks parent ON parent.workflow_id = v_workflow AND parent.step_name = dep->>'step';
    PERFORM pg_notify('absurd_wake', '');
    RETURN v_workflow;
END
$$;

--
-- Name: suspend_run(bigint, bigint, timestamp with time zone, text); Type: FUNCTION; Schema: absurd; Owner: -
--

CREATE FUNCTION absurd.suspend_run(p_task_id bigint, p_run_id bigint, p_until timestamp with time zone, p_event text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

--
-- Name: notify_change(); Type: FUNCTION; Schema: web; Owner: -
--

CREATE FUNCTION web.notify_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM pg_notify('contimg_web', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);
    RETURN NULL;
END;
$$;

--
-- Name: notify_tasks_changed(); Type: FUNCTION; Schema: web; Owner: -
--

CREATE FUNCTION web.notify_tasks_changed() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: runs; Type: TABLE; Schema: absurd; Owner: -
--

CREATE TABLE absurd.runs (
    task_id bigint NOT NULL,
    attempt integer NOT NULL,
    id bigint NOT NULL,
    worker_id text NOT NULL,
    state text NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    finished_at timestamp with time zone,
    failure_reason text,
    error jsonb,
    CONSTRAINT runs_state_check CHECK ((state = ANY (ARRAY['running'::text, 'completed'::text, 'failed'::text, 'suspended'::text, 'released'::text, 'cancelled'::text])))
)
WITH (fillfactor='90');

--
-- Name: attempts; Type: VIEW; Schema: absurd; Owner: -
--

CREATE VIEW absurd.attempts AS
 SELECT runs.task_id,
    runs.attempt,
    runs.id,
    runs.worker_id,
    runs.state,
    runs.started_at,
    runs.finished_at,
    runs.failure_reason,
    runs.error
   FROM absurd.runs
UNION ALL
 SELECT t.id AS task_id,
    t.attempts AS attempt,
    t.current_run AS id,
    COALESCE(t.worker_id, ''::text) AS worker_id,
    'running'::text AS state,
    COALESCE(t.run_started_at, now()) AS started_at,
    NULL::timestamp with time zone AS finished_at,
    NULL::text AS failure_reason,
    NULL::jsonb AS error
   FROM absurd.tasks t
  WHERE (t.state = 'running'::text);

--
-- Name: checkpoints; Type: TABLE; Schema: absurd; Owner: -
--

CREATE TABLE absurd.checkpoints (
    task_id bigint NOT NULL,
    name text NOT NULL,
    value jsonb,
    run_id bigint NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: dlq; Type: TABLE; Schema: absurd; Owner: -
--

CREATE TABLE absurd.dlq (
    id bigint NOT NULL,
    task_id bigint NOT NULL,
    queue text NOT NULL,
    task_name text NOT NULL,
    reason text NOT NULL,
    error jsonb,
    entered_at timestamp with time zone DEFAULT now() NOT NULL,
    resolved_at timestamp with time zone,
    resolution text,
    resolved_by text,
    requeued_task_id bigint,
    CONSTRAINT dlq_reason_check CHECK ((reason = ANY (ARRAY['exhausted'::text, 'permanent'::text, 'no_retry'::text, 'lease_expired'::text]))),
    CONSTRAINT dlq_resolution_check CHECK ((resolution = ANY (ARRAY['retried'::text, 'skipped'::text, 'requeued'::text])))
);

--
-- Name: dlq_actions; Type: TABLE; Schema: absurd; Owner: -
--

CREATE TABLE absurd.dlq_actions (
    id bigint NOT NULL,
    dlq_id bigint NOT NULL,
    action text NOT NULL,
    actor text NOT NULL,
    reason text,
    details jsonb,
    at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: dlq_actions_id_seq; Type: SEQUENCE; Schema: absurd; Owner: -
--

ALTER TABLE absurd.dlq_actions ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME absurd.dlq_actions_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: dlq_id_seq; Type: SEQUENCE; Schema: absurd; Owner: -
--

ALTER TABLE absurd.dlq ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME absurd.dlq_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: event_log; Type: TABLE; Schema: absurd; Owner: -
--

CREATE TABLE absurd.event_log (
    id bigint NOT NULL,
    name text NOT NULL,
    payload jsonb,
    emitted_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL
);

--
-- Name: event_log_id_seq; Type: SEQUENCE; Schema: absurd; Owner: -
--

ALTER TABLE absurd.event_log ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME absurd.event_log_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: events; Type: TABLE; Schema: absurd; Owner: -
--

CREATE TABLE absurd.events (
    name text NOT NULL,
    payload jsonb,
    emitted_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: gate_calls; Type: TABLE; Schema: absurd; Owner: -
--

CREATE TABLE absurd.gate_calls (
    key text NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL,
    ok boolean NOT NULL
);

--
-- Name: gate_transitions; Type: TABLE; Schema: absurd; Owner: -
--

CREATE TABLE absurd.gate_transitions (
    id bigint NOT NULL,
    key text NOT NULL,
    from_state text NOT NULL,
    to_state text NOT NULL,
    reason text NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: gate_transitions_id_seq; Type: SEQUENCE; Schema: absurd; Owner: -
--

ALTER TABLE absurd.gate_transitions ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME absurd.gate_transitions_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: gates; Type: TABLE; Schema: absurd; Owner: -
--

CREATE TABLE absurd.gates (
    key text NOT NULL,
    max_running integer,
    breaker_enabled boolean DEFAULT false NOT NULL,
    failure_threshold integer DEFAULT 5 NOT NULL,
    window_s double precision DEFAULT 300 NOT NULL,
    failure_rate double precision,
    min_calls integer DEFAULT 10 NOT NULL,
    base_cooldown_s double precision DEFAULT 30 NOT NULL,
    max_cooldown_s double precision DEFAULT 1800 NOT NULL,
    half_open_trials integer DEFAULT 1 NOT NULL,
    breaker_state text DEFAULT 'closed'::text NOT NULL,
    cooldown_s double precision,
    cooldown_until timestamp with time zone,
    state_changed_at timestamp with time zone DEFAULT now() NOT NULL,
    trials_admitted integer DEFAULT 0 NOT NULL,
    CONSTRAINT gates_base_cooldown_s_check CHECK ((base_cooldown_s > (0)::double precision)),
    CONSTRAINT gates_breaker_state_check CHECK ((breaker_state = ANY (ARRAY['closed'::text, 'open'::text, 'half_open'::text]))),
    CONSTRAINT gates_failure_rate_check CHECK (((failure_rate IS NULL) OR ((failure_rate > (0)::double precision) AND (failure_rate <= (1)::double precision)))),
    CONSTRAINT gates_failure_threshold_check CHECK ((failure_threshold > 0)),
    CONSTRAINT gates_half_open_trials_check CHECK ((half_open_trials > 0)),
    CONSTRAINT gates_max_cooldown_s_check CHECK ((max_cooldown_s > (0)::double precision)),
    CONSTRAINT gates_max_running_check CHECK (((max_running IS NULL) OR (max_running > 0))),
    CONSTRAINT gates_min_calls_check CHECK ((min_calls > 0)),
    CONSTRAINT gates_window_s_check CHECK ((window_s > (0)::double precision))
);

--
-- Name: queues; Type: TABLE; Schema: absurd; Owner: -
--

CREATE TABLE absurd.queues (
    name text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    paused boolean DEFAULT false NOT NULL,
    CONSTRAINT queues_name_check CHECK ((name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'::text))
);

--
-- Name: run_ids; Type: SEQUENCE; Schema: absurd; Owner: -
--

CREATE SEQUENCE absurd.run_ids
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: run_logs; Type: TABLE; Schema: absurd; Owner: -
--

CREATE TABLE absurd.run_logs (
    run_id bigint NOT NULL,
    task_id bigint NOT NULL,
    lines jsonb NOT NULL,
    dropped integer DEFAULT 0 NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT run_logs_dropped_check CHECK ((dropped >= 0)),
    CONSTRAINT run_logs_lines_check CHECK ((jsonb_typeof(lines) = 'array'::text))
);

--
-- Name: schedule_fires; Type: TABLE; Schema: absurd; Owner: -
--

CREATE TABLE absurd.schedule_fires (
    id bigint NOT NULL,
    schedule text NOT NULL,
    fire_time timestamp with time zone NOT NULL,
    kind text NOT NULL,
    event_id bigint,
    workflow_id bigint,
    error text,
    scheduler_id text,
    fired_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT schedule_fires_kind_check CHECK ((kind = ANY (ARRAY['scheduled'::text, 'catch_up'::text, 'event'::text, 'manual'::text])))
);

--
-- Name: schedule_fires_id_seq; Type: SEQUENCE; Schema: absurd; Owner: -
--

ALTER TABLE absurd.schedule_fires ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME absurd.schedule_fires_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: schedulers; Type: TABLE; Schema: absurd; Owner: -
--

CREATE TABLE absurd.schedulers (
    id text NOT NULL,
    hostname text NOT NULL,
    pid integer NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    heartbeat_at timestamp with time zone DEFAULT now() NOT NULL,
    stopped_at timestamp with time zone
);

--
-- Name: schedules; Type: TABLE; Schema: absurd; Owner: -
--

CREATE TABLE absurd.schedules (
    name text NOT NULL,
    description text DEFAULT ''::text NOT NULL,
    enabled boolean DEFAULT true NOT NULL,
    trigger_kind text NOT NULL,
    cron text,
    timezone text,
    interval_s double precision,
    event_name text,
    catch_up text DEFAULT 'fire_once'::text NOT NULL,
    catch_up_limit integer DEFAULT 10 NOT NULL,
    template jsonb NOT NULL,
    source_file text,
    source_line integer,
    checksum text NOT NULL,
    event_cursor bigint DEFAULT 0 NOT NULL,
    next_fire_at timestamp with time zone,
    last_fired_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT schedules_catch_up_check CHECK ((catch_up = ANY (ARRAY['skip'::text, 'fire_once'::text, 'fire_all'::text]))),
    CONSTRAINT schedules_catch_up_limit_check CHECK ((catch_up_limit > 0)),
    CONSTRAINT schedules_check CHECK (((trigger_kind = 'cron'::text) = ((cron IS NOT NULL) AND (timezone IS NOT NULL)))),
    CONSTRAINT schedules_check1 CHECK (((trigger_kind = 'interval'::text) = (interval_s IS NOT NULL))),
    CONSTRAINT schedules_check2 CHECK (((trigger_kind = 'event'::text) = (event_name IS NOT NULL))),
    CONSTRAINT schedules_interval_s_check CHECK (((interval_s IS NULL) OR (interval_s > (0)::double precision))),
    CONSTRAINT schedules_name_check CHECK ((name ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$'::text)),
    CONSTRAINT schedules_trigger_kind_check CHECK ((trigger_kind = ANY (ARRAY['cron'::text, 'interval'::text, 'event'::text])))
);

--
-- Name: task_deps; Type: TABLE; Schema: absurd; Owner: -
--

CREATE TABLE absurd.task_deps (
    task_id bigint NOT NULL,
    depends_on bigint NOT NULL,
    optional boolean DEFAULT false NOT NULL
);

--
-- Name: tasks_id_seq; Type: SEQUENCE; Schema: absurd; Owner: -
--

ALTER TABLE absurd.tasks ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (
    SEQUENCE NAME absurd.tasks_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: workers; Type: TABLE; Schema: absurd; Owner: -
--

CREATE TABLE absurd.workers (
    id text NOT NULL,
    hostname text NOT NULL,
    pid integer NOT NULL,
    queues text[] NOT NULL,
    concurrency integer NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    heartbeat_at timestamp with time zone DEFAULT now() NOT NULL,
    stopped_at timestamp with time zone,
    task_names text[] DEFAULT '{}'::text[] NOT NULL
);

--
-- Name: workflow_status; Type: VIEW; Schema: absurd; Owner: -
--

CREATE VIEW absurd.workflow_status AS
SELECT
    NULL::bigint AS id,
    NULL::text AS name,
    NULL::timestamp with time zone AS created_at,
    NULL::timestamp with time zone AS cancelled_at,
    NULL::bigint AS tasks,
    NULL::bigint AS completed,
    NULL::bigint AS active,
    NULL::bigint AS waiting,
    NULL::bigint AS failed,
    NULL::bigint AS cancelled,
    NULL::bigint AS in_dlq,
    NULL::timestamp with time zone AS last_finished_at,
    NULL::text AS state;

--
-- Name: workflows; Type: TABLE; Schema: absurd; Owner: -
--

CREATE TABLE absurd.workflows (
    id bigint NOT NULL,
    name text NOT NULL,
    params jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    cancelled_at timestamp with time zone
);

--
-- Name: workflows_id_seq; Type: SEQUENCE; Schema: absurd; Owner: -
--

ALTER TABLE absurd.workflows ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME absurd.workflows_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: alert_deliveries; Type: TABLE; Schema: products; Owner: -
--

CREATE TABLE products.alert_deliveries (
    alert_id bigint NOT NULL,
    sink text NOT NULL,
    sink_kind text NOT NULL,
    state text DEFAULT 'pending'::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    last_error text,
    detail text,
    delivered_at timestamp with time zone,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT alert_deliveries_attempts_check CHECK ((attempts >= 0)),
    CONSTRAINT alert_deliveries_check CHECK (((state = 'delivered'::text) = (delivered_at IS NOT NULL))),
    CONSTRAINT alert_deliveries_sink_check CHECK ((sink ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'::text)),
    CONSTRAINT alert_deliveries_sink_kind_check CHECK ((sink_kind = ANY (ARRAY['directory'::text, 'webhook'::text, 'broker'::text]))),
    CONSTRAINT alert_deliveries_state_check CHECK ((state = ANY (ARRAY['pending'::text, 'delivered'::text, 'rejected'::text])))
);

--
-- Name: alert_voevents; Type: TABLE; Schema: products; Owner: -
--

CREATE TABLE products.alert_voevents (
    alert_id bigint NOT NULL,
    ivorn text NOT NULL,
    document text NOT NULL,
    built_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT alert_voevents_ivorn_check CHECK ((ivorn ~~ 'ivo://%'::text))
);

--
-- Name: alerts; Type: TABLE; Schema: products; Owner: -
--

CREATE TABLE products.alerts (
    id bigint NOT NULL,
    source_name text,
    kind text NOT NULL,
    metrics jsonb NOT NULL,
    task_id bigint,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    acknowledged boolean DEFAULT false NOT NULL,
    acknowledged_at timestamp with time zone,
    detection_id bigint,
    CONSTRAINT alerts_check CHECK ((acknowledged = (acknowledged_at IS NOT NULL))),
    CONSTRAINT alerts_kind_check CHECK ((kind = ANY (ARRAY['variable'::text, 'transient'::text, 'rapid_rise'::text, 'new_source'::text]))),
    CONSTRAINT alerts_subject_check CHECK (((kind = 'new_source'::text) = ((detection_id IS NOT NULL) AND (source_name IS NULL))))
);

--
-- Name: alerts_id_seq; Type: SEQUENCE; Schema: products; Owner: -
--

ALTER TABLE products.alerts ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME products.alerts_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: calibration_generation; Type: TABLE; Schema: products; Owner: -
--

CREATE TABLE products.calibration_generation (
    only_row boolean DEFAULT true NOT NULL,
    generation bigint NOT NULL,
    CONSTRAINT calibration_generation_only_row_check CHECK (only_row)
);

--
-- Name: caltables; Type: TABLE; Schema: products; Owner: -
--

CREATE TABLE products.caltables (
    id bigint NOT NULL,
    ms_path text NOT NULL,
    mode text NOT NULL,
    calibrator text NOT NULL,
    calibrator_offset_deg double precision NOT NULL,
    calibrator_flux_jy double precision NOT NULL,
    refant text NOT NULL,
    tables jsonb NOT NULL,
    apply_tables text[] NOT NULL,
    mid_mjd double precision NOT NULL,
    valid_start_mjd double precision NOT NULL,
    valid_end_mjd double precision NOT NULL,
    valid_from timestamp with time zone NOT NULL,
    valid_until timestamp with time zone NOT NULL,
    qa_passed boolean NOT NULL,
    qa jsonb NOT NULL,
    plots jsonb DEFAULT '{}'::jsonb NOT NULL,
    task_id bigint,
    recorded_at timestamp with time zone DEFAULT now() NOT NULL,
    pointing_dec_deg double precision,
    CONSTRAINT caltables_apply_tables_check CHECK ((cardinality(apply_tables) > 0)),
    CONSTRAINT caltables_check CHECK (((valid_start_mjd <= mid_mjd) AND (mid_mjd <= valid_end_mjd))),
    CONSTRAINT caltables_mode_check CHECK ((mode = ANY (ARRAY['bandpass'::text, 'full'::text])))
);

--
-- Name: caltables_id_seq; Type: SEQUENCE; Schema: products; Owner: -
--

ALTER TABLE products.caltables ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME products.caltables_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: detections; Type: TABLE; Schema: products; Owner: -
--

CREATE TABLE products.detections (
    id bigint NOT NULL,
    image_path text NOT NULL,
    mjd double precision,
    ra_deg double precision NOT NULL,
    dec_deg double precision NOT NULL,
    pos_err_arcsec double precision,
    peak_jy double precision NOT NULL,
    peak_err_jy double precision,
    flux_jy double precision NOT NULL,
    flux_err_jy double precision,
    major_arcsec double precision NOT NULL,
    minor_arcsec double precision NOT NULL,
    pa_deg double precision NOT NULL,
    local_rms_jy double precision NOT NULL,
    snr double precision NOT NULL,
    match_kind text,
    match_name text,
    separation_arcsec double precision,
    nearest_survey text,
    nearest_name text,
    nearest_separation_arcsec double precision,
    nearest_flux_mjy double precision,
    task_id bigint,
    recorded_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: detections_id_seq; Type: SEQUENCE; Schema: products; Owner: -
--

ALTER TABLE products.detections ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME products.detections_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: images; Type: TABLE; Schema: products; Owner: -
--

CREATE TABLE products.images (
    id bigint NOT NULL,
    path text NOT NULL,
    ms_path text NOT NULL,
    ms_id bigint,
    imager text NOT NULL,
    residual_path text NOT NULL,
    psf_path text NOT NULL,
    pb_path text,
    pbcor_path text,
    preview_path text NOT NULL,
    noise_jy double precision NOT NULL,
    peak_jy double precision NOT NULL,
    bmaj_arcsec double precision NOT NULL,
    bmin_arcsec double precision NOT NULL,
    bpa_deg double precision NOT NULL,
    center_ra_deg double precision NOT NULL,
    center_dec_deg double precision NOT NULL,
    freq_hz double precision NOT NULL,
    mid_mjd double precision NOT NULL,
    mid_time timestamp with time zone NOT NULL,
    params jsonb NOT NULL,
    task_id bigint,
    recorded_at timestamp with time zone DEFAULT now() NOT NULL,
    model_path text,
    CONSTRAINT images_imager_check CHECK ((imager = ANY (ARRAY['wsclean'::text, 'tclean'::text])))
);

--
-- Name: images_id_seq; Type: SEQUENCE; Schema: products; Owner: -
--

ALTER TABLE products.images ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME products.images_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: monitoring_lists; Type: TABLE; Schema: products; Owner: -
--

CREATE TABLE products.monitoring_lists (
    name text NOT NULL,
    path text NOT NULL,
    registered_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT monitoring_lists_name_check CHECK ((name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'::text))
);

--
-- Name: monitoring_members; Type: TABLE; Schema: products; Owner: -
--

CREATE TABLE products.monitoring_members (
    list_name text NOT NULL,
    source_name text NOT NULL,
    priority integer
);

--
-- Name: mosaic_plans; Type: TABLE; Schema: products; Owner: -
--

CREATE TABLE products.mosaic_plans (
    name text NOT NULL,
    start_mjd double precision NOT NULL,
    end_mjd double precision NOT NULL,
    image_ids bigint[] NOT NULL,
    plan jsonb NOT NULL,
    planned_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT mosaic_plans_check CHECK ((start_mjd <= end_mjd))
);

--
-- Name: mosaics; Type: TABLE; Schema: products; Owner: -
--

CREATE TABLE products.mosaics (
    id bigint NOT NULL,
    name text NOT NULL,
    path text NOT NULL,
    noise_path text NOT NULL,
    preview_path text,
    method text NOT NULL,
    image_paths text[] NOT NULL,
    image_ids bigint[] DEFAULT '{}'::bigint[] NOT NULL,
    n_inputs integer NOT NULL,
    width_px integer NOT NULL,
    height_px integer NOT NULL,
    bmaj_arcsec double precision NOT NULL,
    bmin_arcsec double precision NOT NULL,
    bpa_deg double precision NOT NULL,
    mid_mjd double precision,
    min_noise_jy double precision NOT NULL,
    median_noise_jy double precision NOT NULL,
    covered_fraction double precision NOT NULL,
    task_id bigint,
    recorded_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT mosaics_method_check CHECK ((method = ANY (ARRAY['mean'::text, 'weighted'::text, 'pbweighted'::text]))),
    CONSTRAINT mosaics_n_inputs_check CHECK ((n_inputs > 0))
);

--
-- Name: mosaics_id_seq; Type: SEQUENCE; Schema: products; Owner: -
--

ALTER TABLE products.mosaics ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME products.mosaics_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: ms_index; Type: TABLE; Schema: products; Owner: -
--

CREATE TABLE products.ms_index (
    id bigint NOT NULL,
    path text NOT NULL,
    group_id text NOT NULL,
    start_mjd double precision NOT NULL,
    end_mjd double precision NOT NULL,
    mid_mjd double precision NOT NULL,
    mid_time timestamp with time zone NOT NULL,
    ra_deg double precision NOT NULL,
    dec_deg double precision NOT NULL,
    n_antennas integer NOT NULL,
    n_channels integer NOT NULL,
    subbands_missing text[] DEFAULT '{}'::text[] NOT NULL,
    status text NOT NULL,
    calibrated_with bigint,
    calibrated_at timestamp with time zone,
    flagged_fraction_after double precision,
    task_id bigint,
    recorded_at timestamp with time zone DEFAULT now() NOT NULL,
    phasing text,
    pointing_dec_apparent_deg double precision,
    subbands_flagged jsonb DEFAULT '{}'::jsonb NOT NULL,
    flag_summary jsonb,
    version integer DEFAULT 1 NOT NULL,
    superseded_by bigint,
    CONSTRAINT ms_index_check CHECK (((start_mjd <= mid_mjd) AND (mid_mjd <= end_mjd))),
    CONSTRAINT ms_index_phasing_check CHECK ((phasing = ANY (ARRAY['fringestopped'::text, 'unprojected'::text]))),
    CONSTRAINT ms_index_status_check CHECK ((status = ANY (ARRAY['complete'::text, 'partial'::text]))),
    CONSTRAINT ms_index_version_check CHECK ((version >= 1))
);

--
-- Name: ms_index_id_seq; Type: SEQUENCE; Schema: products; Owner: -
--

ALTER TABLE products.ms_index ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME products.ms_index_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: photometry; Type: TABLE; Schema: products; Owner: -
--

CREATE TABLE products.photometry (
    id bigint NOT NULL,
    image_path text NOT NULL,
    image_id bigint,
    mosaic_id bigint,
    source_name text NOT NULL,
    ra_deg double precision NOT NULL,
    dec_deg double precision NOT NULL,
    mjd double precision,
    peak_jy double precision,
    peak_err_jy double precision,
    flux_jy double precision,
    flux_err_jy double precision,
    local_rms_jy double precision,
    snr double precision,
    pb_response double precision,
    flags text[] DEFAULT '{}'::text[] NOT NULL,
    task_id bigint,
    recorded_at timestamp with time zone DEFAULT now() NOT NULL,
    fit_flux_jy double precision,
    fit_flux_err_jy double precision,
    fit_ra_deg double precision,
    fit_dec_deg double precision,
    fit_pos_err_arcsec double precision,
    CONSTRAINT photometry_check CHECK (((image_id IS NULL) OR (mosaic_id IS NULL)))
);

--
-- Name: photometry_id_seq; Type: SEQUENCE; Schema: products; Owner: -
--

ALTER TABLE products.photometry ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME products.photometry_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: reprocess_steps; Type: TABLE; Schema: products; Owner: -
--

CREATE TABLE products.reprocess_steps (
    unit text NOT NULL,
    version integer NOT NULL,
    step text NOT NULL,
    run_id bigint NOT NULL,
    workflow_id bigint NOT NULL,
    submitted_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: reprocess_units; Type: TABLE; Schema: products; Owner: -
--

CREATE TABLE products.reprocess_units (
    run_id bigint NOT NULL,
    unit text NOT NULL,
    kind text NOT NULL,
    night date NOT NULL,
    version integer NOT NULL,
    CONSTRAINT reprocess_units_kind_check CHECK ((kind = ANY (ARRAY['observation'::text, 'mosaic'::text]))),
    CONSTRAINT reprocess_units_version_check CHECK ((version >= 1))
);

--
-- Name: reprocess_progress; Type: VIEW; Schema: products; Owner: -
--

CREATE VIEW products.reprocess_progress AS
 SELECT u.run_id,
    u.unit,
    u.kind,
    u.night,
    u.version,
    count(s.step) AS steps,
    count(s.step) FILTER (WHERE (COALESCE(t.state, 'completed'::text) = 'completed'::text)) AS completed,
    count(s.step) FILTER (WHERE (t.state = ANY (ARRAY['failed'::text, 'cancelled'::text]))) AS failed,
        CASE
            WHEN (count(s.step) = 0) THEN 'unsubmitted'::text
            WHEN (count(s.step) FILTER (WHERE (t.state = ANY (ARRAY['failed'::text, 'cancelled'::text]))) > 0) THEN 'failed'::text
            WHEN (count(s.step) FILTER (WHERE (COALESCE(t.state, 'completed'::text) = 'completed'::text)) = count(s.step)) THEN 'done'::text
            ELSE 'in_flight'::text
        END AS state,
    max(t.finished_at) AS finished_at
   FROM ((products.reprocess_units u
     LEFT JOIN products.reprocess_steps s ON (((s.unit = u.unit) AND (s.version = u.version))))
     LEFT JOIN LATERAL ( SELECT x.state,
            x.finished_at
           FROM absurd.tasks x
          WHERE ((x.workflow_id = s.workflow_id) AND (x.step_name = s.step))
          ORDER BY x.id DESC
         LIMIT 1) t ON (true))
  GROUP BY u.run_id, u.unit, u.kind, u.night, u.version;

--
-- Name: reprocess_runs; Type: TABLE; Schema: products; Owner: -
--

CREATE TABLE products.reprocess_runs (
    id bigint NOT NULL,
    request_key text,
    input_dir text NOT NULL,
    output_dir text NOT NULL,
    start_time timestamp with time zone NOT NULL,
    end_time timestamp with time zone NOT NULL,
    steps text[] NOT NULL,
    priority integer NOT NULL,
    force boolean NOT NULL,
    settings jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    submitted_at timestamp with time zone,
    cancelled_at timestamp with time zone,
    CONSTRAINT reprocess_runs_check CHECK ((end_time >= start_time)),
    CONSTRAINT reprocess_runs_check1 CHECK ((force = (request_key IS NULL)))
);

--
-- Name: reprocess_runs_id_seq; Type: SEQUENCE; Schema: products; Owner: -
--

ALTER TABLE products.reprocess_runs ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME products.reprocess_runs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: sources; Type: TABLE; Schema: products; Owner: -
--

CREATE TABLE products.sources (
    name text NOT NULL,
    ra_deg double precision NOT NULL,
    dec_deg double precision NOT NULL,
    priority integer,
    reference boolean DEFAULT false NOT NULL,
    flux_mjy double precision,
    catalogue_path text NOT NULL,
    first_seen_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT sources_dec_deg_check CHECK (((dec_deg >= ('-90'::integer)::double precision) AND (dec_deg <= (90)::double precision))),
    CONSTRAINT sources_ra_deg_check CHECK (((ra_deg >= (0)::double precision) AND (ra_deg < (360)::double precision)))
);

--
-- Name: storage_guard; Type: TABLE; Schema: products; Owner: -
--

CREATE TABLE products.storage_guard (
    path text NOT NULL,
    level text NOT NULL,
    free_bytes bigint NOT NULL,
    total_bytes bigint NOT NULL,
    held_keys text[] DEFAULT '{}'::text[] NOT NULL,
    checked_at timestamp with time zone DEFAULT now() NOT NULL,
    changed_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT storage_guard_free_bytes_check CHECK ((free_bytes >= 0)),
    CONSTRAINT storage_guard_level_check CHECK ((level = ANY (ARRAY['ok'::text, 'warning'::text, 'critical'::text]))),
    CONSTRAINT storage_guard_total_bytes_check CHECK ((total_bytes >= 0))
);

--
-- Name: storage_removals; Type: TABLE; Schema: products; Owner: -
--

CREATE TABLE products.storage_removals (
    id bigint NOT NULL,
    kind text NOT NULL,
    product text NOT NULL,
    paths text[] NOT NULL,
    bytes bigint NOT NULL,
    night date,
    reason text NOT NULL,
    task_id bigint,
    removed_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT storage_removals_bytes_check CHECK ((bytes >= 0)),
    CONSTRAINT storage_removals_kind_check CHECK ((kind = ANY (ARRAY['raw'::text, 'ms'::text, 'caltables'::text, 'images'::text, 'image_aux'::text, 'mosaics'::text, 'previews'::text])))
);

--
-- Name: storage_removals_id_seq; Type: SEQUENCE; Schema: products; Owner: -
--

ALTER TABLE products.storage_removals ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME products.storage_removals_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: stream_files; Type: TABLE; Schema: products; Owner: -
--

CREATE TABLE products.stream_files (
    id bigint NOT NULL,
    path text NOT NULL,
    subband integer NOT NULL,
    file_time timestamp with time zone NOT NULL,
    size_bytes bigint NOT NULL,
    arrived_at timestamp with time zone NOT NULL,
    first_seen_at timestamp with time zone NOT NULL,
    registered_at timestamp with time zone DEFAULT now() NOT NULL,
    group_id text,
    late boolean DEFAULT false NOT NULL,
    status text DEFAULT 'new'::text NOT NULL,
    reconverted_in integer,
    CONSTRAINT stream_files_check CHECK (((status = 'new'::text) = (group_id IS NULL))),
    CONSTRAINT stream_files_check1 CHECK ((late = (status = ANY (ARRAY['late'::text, 'duplicate'::text])))),
    CONSTRAINT stream_files_size_bytes_check CHECK ((size_bytes >= 0)),
    CONSTRAINT stream_files_status_check CHECK ((status = ANY (ARRAY['new'::text, 'grouped'::text, 'late'::text, 'duplicate'::text]))),
    CONSTRAINT stream_files_subband_check CHECK (((subband >= 0) AND (subband <= 15)))
);

--
-- Name: stream_files_id_seq; Type: SEQUENCE; Schema: products; Owner: -
--

ALTER TABLE products.stream_files ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME products.stream_files_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: stream_groups; Type: TABLE; Schema: products; Owner: -
--

CREATE TABLE products.stream_groups (
    id bigint NOT NULL,
    group_id text NOT NULL,
    group_time timestamp with time zone NOT NULL,
    min_file_time timestamp with time zone NOT NULL,
    max_file_time timestamp with time zone NOT NULL,
    incoming_dir text NOT NULL,
    n_files integer NOT NULL,
    subbands_missing text[] DEFAULT '{}'::text[] NOT NULL,
    first_arrival_at timestamp with time zone NOT NULL,
    last_arrival_at timestamp with time zone NOT NULL,
    sealed_at timestamp with time zone DEFAULT now() NOT NULL,
    status text NOT NULL,
    convert_task_id bigint,
    spawned_at timestamp with time zone,
    ms_path text,
    mid_mjd double precision,
    converted_at timestamp with time zone,
    new_ms_emitted_at timestamp with time zone,
    latency_s double precision,
    error text,
    version integer DEFAULT 1 NOT NULL,
    CONSTRAINT stream_groups_check CHECK ((min_file_time <= max_file_time)),
    CONSTRAINT stream_groups_check1 CHECK (((status = 'skipped'::text) = (convert_task_id IS NULL))),
    CONSTRAINT stream_groups_check2 CHECK (((status = 'converted'::text) = (new_ms_emitted_at IS NOT NULL))),
    CONSTRAINT stream_groups_n_files_check CHECK (((n_files >= 1) AND (n_files <= 16))),
    CONSTRAINT stream_groups_status_check CHECK ((status = ANY (ARRAY['spawned'::text, 'converted'::text, 'failed'::text, 'skipped'::text]))),
    CONSTRAINT stream_groups_version_check CHECK ((version >= 1))
);

--
-- Name: stream_groups_id_seq; Type: SEQUENCE; Schema: products; Owner: -
--

ALTER TABLE products.stream_groups ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME products.stream_groups_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: variability; Type: TABLE; Schema: products; Owner: -
--

CREATE TABLE products.variability (
    source_name text NOT NULL,
    n_epochs integer NOT NULL,
    first_mjd double precision,
    last_mjd double precision,
    mean_flux_jy double precision,
    weighted_mean_flux_jy double precision,
    eta double precision,
    v double precision,
    chi2_nu double precision,
    vs double precision,
    m double precision,
    vs_mjd_a double precision,
    vs_mjd_b double precision,
    is_variable boolean NOT NULL,
    consistent_with_constant boolean,
    transient_candidate boolean DEFAULT false NOT NULL,
    latest_snr double precision,
    exceeded text[] DEFAULT '{}'::text[] NOT NULL,
    thresholds jsonb NOT NULL,
    n_references integer DEFAULT 0 NOT NULL,
    task_id bigint,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    rise_sigma double precision,
    rapid_rise boolean DEFAULT false NOT NULL,
    CONSTRAINT variability_check CHECK (((vs_mjd_a IS NULL) = (vs_mjd_b IS NULL))),
    CONSTRAINT variability_n_epochs_check CHECK ((n_epochs >= 0))
);

--
-- Name: absurd_migrations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.absurd_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: alert_triage; Type: TABLE; Schema: web; Owner: -
--

CREATE TABLE web.alert_triage (
    alert_id bigint NOT NULL,
    state text NOT NULL,
    classification text,
    notes text DEFAULT ''::text NOT NULL,
    updated_by text NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT alert_triage_check CHECK (((state = 'classified'::text) = (classification IS NOT NULL))),
    CONSTRAINT alert_triage_state_check CHECK ((state = ANY (ARRAY['new'::text, 'acknowledged'::text, 'classified'::text])))
);

--
-- Name: audit_log; Type: TABLE; Schema: web; Owner: -
--

CREATE TABLE web.audit_log (
    id bigint NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL,
    actor text NOT NULL,
    role text NOT NULL,
    action text NOT NULL,
    target text NOT NULL,
    allowed boolean NOT NULL,
    details jsonb DEFAULT '{}'::jsonb NOT NULL,
    CONSTRAINT audit_log_role_check CHECK ((role = ANY (ARRAY['viewer'::text, 'operator'::text])))
);

--
-- Name: audit_log_id_seq; Type: SEQUENCE; Schema: web; Owner: -
--

ALTER TABLE web.audit_log ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME web.audit_log_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: measurements; Type: TABLE; Schema: web; Owner: -
--

CREATE TABLE web.measurements (
    id bigint NOT NULL,
    image_id bigint NOT NULL,
    ra_deg double precision NOT NULL,
    dec_deg double precision NOT NULL,
    peak_jy double precision,
    peak_err_jy double precision,
    flux_jy double precision,
    flux_err_jy double precision,
    local_rms_jy double precision,
    snr double precision,
    label text DEFAULT ''::text NOT NULL,
    measured_by text NOT NULL,
    measured_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: measurements_id_seq; Type: SEQUENCE; Schema: web; Owner: -
--

ALTER TABLE web.measurements ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME web.measurements_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: checkpoints checkpoints_pkey; Type: CONSTRAINT; Schema: absurd; Owner: -
--

ALTER TABLE ONLY absurd.checkpoints
    ADD CONSTRAINT checkpoints_pkey PRIMARY KEY (task_id, name);

--
-- Name: dlq_actions dlq_actions_pkey; Type: CONSTRAINT; Schema: absurd; Owner: -
--

ALTER TABLE ONLY absurd.dlq_actions
    ADD CONSTRAINT dlq_actions_pkey PRIMARY KEY (id);

--
-- Name: dlq dlq_pkey; Type: CONSTRAINT; Schema: absurd; Owner: -
--

ALTER TABLE ONLY absurd.dlq
    ADD CONSTRAINT dlq_pkey PRIMARY KEY (id);

--
-- Name: event_log event_log_pkey; Type: CONSTRAINT; Schema: absurd; Owner: -
--

ALTER TABLE ONLY absurd.event_log
    ADD CONSTRAINT event_log_pkey PRIMARY KEY (id);

--
-- Name: events events_pkey; Type: CONSTRAINT; Schema: absurd; Owner: -
--

ALTER TABLE ONLY absurd.events
    ADD CONSTRAINT events_pkey PRIMARY KEY (name);

--
-- Name: gate_transitions gate_transitions_pkey; Type: CONSTRAINT; Schema: absurd; Owner: -
--

ALTER TABLE ONLY absurd.gate_transitions
    ADD CONSTRAINT gate_transitions_pkey PRIMARY KEY (id);

--
-- Name: gates gates_pkey; Type: CONSTRAINT; Schema: absurd; Owner: -
--

ALTER TABLE ONLY absurd.gates
    ADD CONSTRAINT gates_pkey PRIMARY KEY (key);

--
-- Name: queues queues_pkey; Type: CONSTRAINT; Schema: absurd; Owner: -
--

ALTER TABLE ONLY absurd.queues
    ADD CONSTRAINT queues_pkey PRIMARY KEY (name);

--
-- Name: run_logs run_logs_pkey; Type: CONSTRAINT; Schema: absurd; Owner: -
--

ALTER TABLE ONLY absurd.run_logs
    ADD CONSTRAINT run_logs_pkey PRIMARY KEY (run_id);

--
-- Name: runs runs_pkey; Type: CONSTRAINT; Schema: absurd; Owner: -
--

ALTER TABLE ONLY absurd.runs
    ADD CONSTRAINT runs_pkey PRIMARY KEY (task_id, attempt);

--
-- Name: schedule_fires schedule_fires_pkey; Type: CONSTRAINT; Schema: absurd; Owner: -
--

ALTER TABLE ONLY absurd.schedule_fires
    ADD CONSTRAINT schedule_fires_pkey PRIMARY KEY (id);

--
-- Name: schedulers schedulers_pkey; Type: CONSTRAINT; Schema: absurd; Owner: -
--

ALTER TABLE ONLY absurd.schedulers
    ADD CONSTRAINT schedulers_pkey PRIMARY KEY (id);

--
-- Name: schedules schedules_pkey; Type: CONSTRAINT; Schema: absurd; Owner: -
--

ALTER TABLE ONLY absurd.schedules
    ADD CONSTRAINT schedules_pkey PRIMARY KEY (name);

--
-- Name: task_deps task_deps_pkey; Type: CONSTRAINT; Schema: absurd; Owner: -
--

ALTER TABLE ONLY absurd.task_deps
    ADD CONSTRAINT task_deps_pkey PRIMARY KEY (task_id, depends_on);

--
-- Name: tasks tasks_pkey; Type: CONSTRAINT; Schema: absurd; Owner: -
--

ALTER TABLE ONLY absurd.tasks
    ADD CONSTRAINT tasks_pkey PRIMARY KEY (id);

--
-- Name: workers workers_pkey; Type: CONSTRAINT; Schema: absurd; Owner: -
--

ALTER TABLE ONLY absurd.workers
    ADD CONSTRAINT workers_pkey PRIMARY KEY (id);

--
-- Name: workflows workflows_pkey; Type: CONSTRAINT; Schema: absurd; Owner: -
--

ALTER TABLE ONLY absurd.workflows
    ADD CONSTRAINT workflows_pkey PRIMARY KEY (id);

--
-- Name: alert_deliveries alert_deliveries_pkey; Type: CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.alert_deliveries
    ADD CONSTRAINT alert_deliveries_pkey PRIMARY KEY (alert_id, sink);

--
-- Name: alert_voevents alert_voevents_ivorn_key; Type: CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.alert_voevents
    ADD CONSTRAINT alert_voevents_ivorn_key UNIQUE (ivorn);

--
-- Name: alert_voevents alert_voevents_pkey; Type: CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.alert_voevents
    ADD CONSTRAINT alert_voevents_pkey PRIMARY KEY (alert_id);

--
-- Name: alerts alerts_pkey; Type: CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.alerts
    ADD CONSTRAINT alerts_pkey PRIMARY KEY (id);

--
-- Name: calibration_generation calibration_generation_pkey; Type: CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.calibration_generation
    ADD CONSTRAINT calibration_generation_pkey PRIMARY KEY (only_row);

--
-- Name: caltables caltables_ms_path_mode_key; Type: CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.caltables
    ADD CONSTRAINT caltables_ms_path_mode_key UNIQUE (ms_path, mode);

--
-- Name: caltables caltables_pkey; Type: CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.caltables
    ADD CONSTRAINT caltables_pkey PRIMARY KEY (id);

--
-- Name: detections detections_pkey; Type: CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.detections
    ADD CONSTRAINT detections_pkey PRIMARY KEY (id);

--
-- Name: images images_path_key; Type: CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.images
    ADD CONSTRAINT images_path_key UNIQUE (path);

--
-- Name: images images_pkey; Type: CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.images
    ADD CONSTRAINT images_pkey PRIMARY KEY (id);

--
-- Name: monitoring_lists monitoring_lists_pkey; Type: CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.monitoring_lists
    ADD CONSTRAINT monitoring_lists_pkey PRIMARY KEY (name);

--
-- Name: monitoring_members monitoring_members_pkey; Type: CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.monitoring_members
    ADD CONSTRAINT monitoring_members_pkey PRIMARY KEY (list_name, source_name);

--
-- Name: mosaic_plans mosaic_plans_pkey; Type: CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.mosaic_plans
    ADD CONSTRAINT mosaic_plans_pkey PRIMARY KEY (name);

--
-- Name: mosaics mosaics_name_key; Type: CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.mosaics
    ADD CONSTRAINT mosaics_name_key UNIQUE (name);

--
-- Name: mosaics mosaics_path_key; Type: CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.mosaics
    ADD CONSTRAINT mosaics_path_key UNIQUE (path);

--
-- Name: mosaics mosaics_pkey; Type: CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.mosaics
    ADD CONSTRAINT mosaics_pkey PRIMARY KEY (id);

--
-- Name: ms_index ms_index_path_key; Type: CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.ms_index
    ADD CONSTRAINT ms_index_path_key UNIQUE (path);

--
-- Name: ms_index ms_index_pkey; Type: CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.ms_index
    ADD CONSTRAINT ms_index_pkey PRIMARY KEY (id);

--
-- Name: photometry photometry_image_path_source_name_key; Type: CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.photometry
    ADD CONSTRAINT photometry_image_path_source_name_key UNIQUE (image_path, source_name);

--
-- Name: photometry photometry_pkey; Type: CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.photometry
    ADD CONSTRAINT photometry_pkey PRIMARY KEY (id);

--
-- Name: reprocess_runs reprocess_runs_pkey; Type: CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.reprocess_runs
    ADD CONSTRAINT reprocess_runs_pkey PRIMARY KEY (id);

--
-- Name: reprocess_steps reprocess_steps_pkey; Type: CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.reprocess_steps
    ADD CONSTRAINT reprocess_steps_pkey PRIMARY KEY (unit, version, step);

--
-- Name: reprocess_units reprocess_units_pkey; Type: CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.reprocess_units
    ADD CONSTRAINT reprocess_units_pkey PRIMARY KEY (run_id, unit);

--
-- Name: sources sources_pkey; Type: CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.sources
    ADD CONSTRAINT sources_pkey PRIMARY KEY (name);

--
-- Name: storage_guard storage_guard_pkey; Type: CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.storage_guard
    ADD CONSTRAINT storage_guard_pkey PRIMARY KEY (path);

--
-- Name: storage_removals storage_removals_pkey; Type: CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.storage_removals
    ADD CONSTRAINT storage_removals_pkey PRIMARY KEY (id);

--
-- Name: stream_files stream_files_path_key; Type: CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.stream_files
    ADD CONSTRAINT stream_files_path_key UNIQUE (path);

--
-- Name: stream_files stream_files_pkey; Type: CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.stream_files
    ADD CONSTRAINT stream_files_pkey PRIMARY KEY (id);

--
-- Name: stream_groups stream_groups_group_id_key; Type: CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.stream_groups
    ADD CONSTRAINT stream_groups_group_id_key UNIQUE (group_id);

--
-- Name: stream_groups stream_groups_pkey; Type: CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.stream_groups
    ADD CONSTRAINT stream_groups_pkey PRIMARY KEY (id);

--
-- Name: variability variability_pkey; Type: CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.variability
    ADD CONSTRAINT variability_pkey PRIMARY KEY (source_name);

--
-- Name: absurd_migrations absurd_migrations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.absurd_migrations
    ADD CONSTRAINT absurd_migrations_pkey PRIMARY KEY (version);

--
-- Name: alert_triage alert_triage_pkey; Type: CONSTRAINT; Schema: web; Owner: -
--

ALTER TABLE ONLY web.alert_triage
    ADD CONSTRAINT alert_triage_pkey PRIMARY KEY (alert_id);

--
-- Name: audit_log audit_log_pkey; Type: CONSTRAINT; Schema: web; Owner: -
--

ALTER TABLE ONLY web.audit_log
    ADD CONSTRAINT audit_log_pkey PRIMARY KEY (id);

--
-- Name: measurements measurements_pkey; Type: CONSTRAINT; Schema: web; Owner: -
--

ALTER TABLE ONLY web.measurements
    ADD CONSTRAINT measurements_pkey PRIMARY KEY (id);

--
-- Name: dlq_open; Type: INDEX; Schema: absurd; Owner: -
--

CREATE INDEX dlq_open ON absurd.dlq USING btree (entered_at) WHERE (resolved_at IS NULL);

--
-- Name: dlq_open_per_task; Type: INDEX; Schema: absurd; Owner: -
--

CREATE UNIQUE INDEX dlq_open_per_task ON absurd.dlq USING btree (task_id) WHERE (resolved_at IS NULL);

--
-- Name: event_log_emitted; Type: INDEX; Schema: absurd; Owner: -
--

CREATE INDEX event_log_emitted ON absurd.event_log USING btree (emitted_at);

--
-- Name: event_log_name; Type: INDEX; Schema: absurd; Owner: -
--

CREATE INDEX event_log_name ON absurd.event_log USING btree (name, id);

--
-- Name: gate_calls_key_at; Type: INDEX; Schema: absurd; Owner: -
--

CREATE INDEX gate_calls_key_at ON absurd.gate_calls USING btree (key, at);

--
-- Name: run_logs_task; Type: INDEX; Schema: absurd; Owner: -
--

CREATE INDEX run_logs_task ON absurd.run_logs USING btree (task_id);

--
-- Name: schedule_fires_event_once; Type: INDEX; Schema: absurd; Owner: -
--

CREATE UNIQUE INDEX schedule_fires_event_once ON absurd.schedule_fires USING btree (schedule, event_id) WHERE (event_id IS NOT NULL);

--
-- Name: schedule_fires_once; Type: INDEX; Schema: absurd; Owner: -
--

CREATE UNIQUE INDEX schedule_fires_once ON absurd.schedule_fires USING btree (schedule, fire_time) WHERE (event_id IS NULL);

--
-- Name: schedule_fires_recent; Type: INDEX; Schema: absurd; Owner: -
--

CREATE INDEX schedule_fires_recent ON absurd.schedule_fires USING btree (schedule, fired_at DESC);

--
-- Name: schedules_due; Type: INDEX; Schema: absurd; Owner: -
--

CREATE INDEX schedules_due ON absurd.schedules USING btree (next_fire_at) WHERE (enabled AND (trigger_kind <> 'event'::text));

--
-- Name: schedules_event; Type: INDEX; Schema: absurd; Owner: -
--

CREATE INDEX schedules_event ON absurd.schedules USING btree (event_name) WHERE (enabled AND (trigger_kind = 'event'::text));

--
-- Name: task_deps_parent; Type: INDEX; Schema: absurd; Owner: -
--

CREATE INDEX task_deps_parent ON absurd.task_deps USING btree (depends_on);

--
-- Name: tasks_claim; Type: INDEX; Schema: absurd; Owner: -
--

CREATE INDEX tasks_claim ON absurd.tasks USING btree (queue, priority DESC, available_at, id) WHERE ((state = ANY (ARRAY['pending'::text, 'sleeping'::text])) AND (gate_key IS NULL));

--
-- Name: tasks_claim_gated; Type: INDEX; Schema: absurd; Owner: -
--

CREATE INDEX tasks_claim_gated ON absurd.tasks USING btree (gate_key, queue, priority DESC, available_at, id) WHERE ((state = ANY (ARRAY['pending'::text, 'sleeping'::text])) AND (gate_key IS NOT NULL));

--
-- Name: tasks_finished; Type: INDEX; Schema: absurd; Owner: -
--

CREATE INDEX tasks_finished ON absurd.tasks USING btree (finished_at) WHERE (finished_at IS NOT NULL);

--
-- Name: tasks_gate_running; Type: INDEX; Schema: absurd; Owner: -
--

CREATE INDEX tasks_gate_running ON absurd.tasks USING btree (gate_key) WHERE ((state = 'running'::text) AND (gate_key IS NOT NULL));

--
-- Name: tasks_idempotency; Type: INDEX; Schema: absurd; Owner: -
--

CREATE UNIQUE INDEX tasks_idempotency ON absurd.tasks USING btree (idempotency_key) WHERE (idempotency_key IS NOT NULL);

--
-- Name: tasks_leases; Type: INDEX; Schema: absurd; Owner: -
--

CREATE INDEX tasks_leases ON absurd.tasks USING btree (lease_expires_at) WHERE (state = 'running'::text);

--
-- Name: tasks_waiting; Type: INDEX; Schema: absurd; Owner: -
--

CREATE INDEX tasks_waiting ON absurd.tasks USING btree (wait_event) WHERE ((state = 'sleeping'::text) AND (wait_event IS NOT NULL));

--
-- Name: tasks_workflow; Type: INDEX; Schema: absurd; Owner: -
--

CREATE INDEX tasks_workflow ON absurd.tasks USING btree (workflow_id, step_name) WHERE (workflow_id IS NOT NULL);

--
-- Name: alert_deliveries_pending; Type: INDEX; Schema: products; Owner: -
--

CREATE INDEX alert_deliveries_pending ON products.alert_deliveries USING btree (alert_id) WHERE (state = 'pending'::text);

--
-- Name: alerts_by_time; Type: INDEX; Schema: products; Owner: -
--

CREATE INDEX alerts_by_time ON products.alerts USING btree (created_at DESC);

--
-- Name: alerts_one_open; Type: INDEX; Schema: products; Owner: -
--

CREATE UNIQUE INDEX alerts_one_open ON products.alerts USING btree (source_name, kind) WHERE (NOT acknowledged);

--
-- Name: caltables_usable_by_time; Type: INDEX; Schema: products; Owner: -
--

CREATE INDEX caltables_usable_by_time ON products.caltables USING btree (mid_mjd) WHERE qa_passed;

--
-- Name: detections_by_dec; Type: INDEX; Schema: products; Owner: -
--

CREATE INDEX detections_by_dec ON products.detections USING btree (dec_deg);

--
-- Name: detections_by_image; Type: INDEX; Schema: products; Owner: -
--

CREATE INDEX detections_by_image ON products.detections USING btree (image_path);

--
-- Name: images_mid; Type: INDEX; Schema: products; Owner: -
--

CREATE INDEX images_mid ON products.images USING btree (mid_mjd);

--
-- Name: ms_index_group_version; Type: INDEX; Schema: products; Owner: -
--

CREATE UNIQUE INDEX ms_index_group_version ON products.ms_index USING btree (group_id, version);

--
-- Name: ms_index_mid; Type: INDEX; Schema: products; Owner: -
--

CREATE INDEX ms_index_mid ON products.ms_index USING btree (mid_mjd);

--
-- Name: photometry_by_source; Type: INDEX; Schema: products; Owner: -
--

CREATE INDEX photometry_by_source ON products.photometry USING btree (source_name, mjd);

--
-- Name: reprocess_runs_request; Type: INDEX; Schema: products; Owner: -
--

CREATE UNIQUE INDEX reprocess_runs_request ON products.reprocess_runs USING btree (request_key) WHERE (request_key IS NOT NULL);

--
-- Name: reprocess_steps_workflow; Type: INDEX; Schema: products; Owner: -
--

CREATE INDEX reprocess_steps_workflow ON products.reprocess_steps USING btree (workflow_id);

--
-- Name: reprocess_units_night; Type: INDEX; Schema: products; Owner: -
--

CREATE INDEX reprocess_units_night ON products.reprocess_units USING btree (run_id, night);

--
-- Name: storage_removals_by_time; Type: INDEX; Schema: products; Owner: -
--

CREATE INDEX storage_removals_by_time ON products.storage_removals USING btree (removed_at DESC);

--
-- Name: storage_removals_product; Type: INDEX; Schema: products; Owner: -
--

CREATE INDEX storage_removals_product ON products.storage_removals USING btree (product);

--
-- Name: stream_files_group; Type: INDEX; Schema: products; Owner: -
--

CREATE INDEX stream_files_group ON products.stream_files USING btree (group_id);

--
-- Name: stream_files_new; Type: INDEX; Schema: products; Owner: -
--

CREATE INDEX stream_files_new ON products.stream_files USING btree (file_time) WHERE (status = 'new'::text);

--
-- Name: stream_groups_converted; Type: INDEX; Schema: products; Owner: -
--

CREATE INDEX stream_groups_converted ON products.stream_groups USING btree (converted_at) WHERE (status = 'converted'::text);

--
-- Name: stream_groups_open; Type: INDEX; Schema: products; Owner: -
--

CREATE INDEX stream_groups_open ON products.stream_groups USING btree (id) WHERE (status = 'spawned'::text);

--
-- Name: stream_groups_window; Type: INDEX; Schema: products; Owner: -
--

CREATE INDEX stream_groups_window ON products.stream_groups USING btree (min_file_time, max_file_time);

--
-- Name: variability_flagged_by_eta; Type: INDEX; Schema: products; Owner: -
--

CREATE INDEX variability_flagged_by_eta ON products.variability USING btree (eta DESC) WHERE is_variable;

--
-- Name: audit_log_at; Type: INDEX; Schema: web; Owner: -
--

CREATE INDEX audit_log_at ON web.audit_log USING btree (at DESC);

--
-- Name: measurements_image; Type: INDEX; Schema: web; Owner: -
--

CREATE INDEX measurements_image ON web.measurements USING btree (image_id);

--
-- Name: workflow_status _RETURN; Type: RULE; Schema: absurd; Owner: -
--

CREATE OR REPLACE VIEW absurd.workflow_status AS
 SELECT w.id,
    w.name,
    w.created_at,
    w.cancelled_at,
    count(t.id) AS tasks,
    count(t.id) FILTER (WHERE (t.state = 'completed'::text)) AS completed,
    count(t.id) FILTER (WHERE (t.state = ANY (ARRAY['pending'::text, 'running'::text, 'sleeping'::text]))) AS active,
    count(t.id) FILTER (WHERE (t.state = 'waiting'::text)) AS waiting,
    count(t.id) FILTER (WHERE (t.state = 'failed'::text)) AS failed,
    count(t.id) FILTER (WHERE (t.state = 'cancelled'::text)) AS cancelled,
    count(dq.id) AS in_dlq,
    max(t.finished_at) AS last_finished_at,
        CASE
            WHEN (w.cancelled_at IS NOT NULL) THEN 'cancelled'::text
            WHEN (count(t.id) = count(t.id) FILTER (WHERE (t.state = 'completed'::text))) THEN 'completed'::text
            WHEN (count(dq.id) > 0) THEN 'blocked'::text
            WHEN (count(t.id) FILTER (WHERE (t.state = ANY (ARRAY['pending'::text, 'running'::text, 'sleeping'::text, 'waiting'::text]))) > 0) THEN 'running'::text
            ELSE 'finished_with_skips'::text
        END AS state
   FROM ((absurd.workflows w
     LEFT JOIN absurd.tasks t ON (((t.workflow_id = w.id) AND (NOT (EXISTS ( SELECT 1
           FROM absurd.dlq rq
          WHERE ((rq.task_id = t.id) AND (rq.resolution = 'requeued'::text))))))))
     LEFT JOIN absurd.dlq dq ON (((dq.task_id = t.id) AND (dq.resolved_at IS NULL))))
  GROUP BY w.id;

--
-- Name: events events_logged; Type: TRIGGER; Schema: absurd; Owner: -
--

CREATE TRIGGER events_logged AFTER INSERT OR UPDATE ON absurd.events FOR EACH ROW EXECUTE FUNCTION absurd.log_event();

--
-- Name: tasks task_cancelled; Type: TRIGGER; Schema: absurd; Owner: -
--

CREATE TRIGGER task_cancelled AFTER UPDATE OF state ON absurd.tasks FOR EACH ROW WHEN (((new.state = 'cancelled'::text) AND (old.state <> 'cancelled'::text) AND (new.workflow_id IS NOT NULL))) EXECUTE FUNCTION absurd.on_task_cancelled();

--
-- Name: tasks tasks_notify_web; Type: TRIGGER; Schema: absurd; Owner: -
--

CREATE TRIGGER tasks_notify_web AFTER UPDATE OF state ON absurd.tasks FOR EACH STATEMENT EXECUTE FUNCTION web.notify_tasks_changed();

--
-- Name: images images_notify_web; Type: TRIGGER; Schema: products; Owner: -
--

CREATE TRIGGER images_notify_web AFTER INSERT ON products.images FOR EACH STATEMENT EXECUTE FUNCTION web.notify_change();

--
-- Name: variability variability_notify_web; Type: TRIGGER; Schema: products; Owner: -
--

CREATE TRIGGER variability_notify_web AFTER INSERT OR UPDATE ON products.variability FOR EACH STATEMENT EXECUTE FUNCTION web.notify_change();

--
-- Name: dlq_actions dlq_actions_dlq_id_fkey; Type: FK CONSTRAINT; Schema: absurd; Owner: -
--

ALTER TABLE ONLY absurd.dlq_actions
    ADD CONSTRAINT dlq_actions_dlq_id_fkey FOREIGN KEY (dlq_id) REFERENCES absurd.dlq(id);

--
-- Name: alert_deliveries alert_deliveries_alert_id_fkey; Type: FK CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.alert_deliveries
    ADD CONSTRAINT alert_deliveries_alert_id_fkey FOREIGN KEY (alert_id) REFERENCES products.alerts(id) ON DELETE CASCADE;

--
-- Name: alert_voevents alert_voevents_alert_id_fkey; Type: FK CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.alert_voevents
    ADD CONSTRAINT alert_voevents_alert_id_fkey FOREIGN KEY (alert_id) REFERENCES products.alerts(id) ON DELETE CASCADE;

--
-- Name: alerts alerts_detection_id_fkey; Type: FK CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.alerts
    ADD CONSTRAINT alerts_detection_id_fkey FOREIGN KEY (detection_id) REFERENCES products.detections(id) ON DELETE CASCADE;

--
-- Name: alerts alerts_source_name_fkey; Type: FK CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.alerts
    ADD CONSTRAINT alerts_source_name_fkey FOREIGN KEY (source_name) REFERENCES products.sources(name) ON DELETE CASCADE;

--
-- Name: images images_ms_id_fkey; Type: FK CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.images
    ADD CONSTRAINT images_ms_id_fkey FOREIGN KEY (ms_id) REFERENCES products.ms_index(id) ON DELETE SET NULL;

--
-- Name: monitoring_members monitoring_members_list_name_fkey; Type: FK CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.monitoring_members
    ADD CONSTRAINT monitoring_members_list_name_fkey FOREIGN KEY (list_name) REFERENCES products.monitoring_lists(name) ON DELETE CASCADE;

--
-- Name: monitoring_members monitoring_members_source_name_fkey; Type: FK CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.monitoring_members
    ADD CONSTRAINT monitoring_members_source_name_fkey FOREIGN KEY (source_name) REFERENCES products.sources(name) ON DELETE CASCADE;

--
-- Name: ms_index ms_index_calibrated_with; Type: FK CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.ms_index
    ADD CONSTRAINT ms_index_calibrated_with FOREIGN KEY (calibrated_with) REFERENCES products.caltables(id);

--
-- Name: ms_index ms_index_superseded_by_fkey; Type: FK CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.ms_index
    ADD CONSTRAINT ms_index_superseded_by_fkey FOREIGN KEY (superseded_by) REFERENCES products.ms_index(id) ON DELETE SET NULL;

--
-- Name: photometry photometry_image_id_fkey; Type: FK CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.photometry
    ADD CONSTRAINT photometry_image_id_fkey FOREIGN KEY (image_id) REFERENCES products.images(id) ON DELETE CASCADE;

--
-- Name: photometry photometry_mosaic_id_fkey; Type: FK CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.photometry
    ADD CONSTRAINT photometry_mosaic_id_fkey FOREIGN KEY (mosaic_id) REFERENCES products.mosaics(id) ON DELETE CASCADE;

--
-- Name: photometry photometry_source_name_fkey; Type: FK CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.photometry
    ADD CONSTRAINT photometry_source_name_fkey FOREIGN KEY (source_name) REFERENCES products.sources(name);

--
-- Name: reprocess_steps reprocess_steps_run_id_fkey; Type: FK CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.reprocess_steps
    ADD CONSTRAINT reprocess_steps_run_id_fkey FOREIGN KEY (run_id) REFERENCES products.reprocess_runs(id) ON DELETE CASCADE;

--
-- Name: reprocess_units reprocess_units_run_id_fkey; Type: FK CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.reprocess_units
    ADD CONSTRAINT reprocess_units_run_id_fkey FOREIGN KEY (run_id) REFERENCES products.reprocess_runs(id) ON DELETE CASCADE;

--
-- Name: stream_files stream_files_group_id_fkey; Type: FK CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.stream_files
    ADD CONSTRAINT stream_files_group_id_fkey FOREIGN KEY (group_id) REFERENCES products.stream_groups(group_id);

--
-- Name: variability variability_source_name_fkey; Type: FK CONSTRAINT; Schema: products; Owner: -
--

ALTER TABLE ONLY products.variability
    ADD CONSTRAINT variability_source_name_fkey FOREIGN KEY (source_name) REFERENCES products.sources(name) ON DELETE CASCADE;

--
-- Name: alert_triage alert_triage_alert_id_fkey; Type: FK CONSTRAINT; Schema: web; Owner: -
--

ALTER TABLE ONLY web.alert_triage
    ADD CONSTRAINT alert_triage_alert_id_fkey FOREIGN KEY (alert_id) REFERENCES products.alerts(id) ON DELETE CASCADE;

--
-- Name: measurements measurements_image_id_fkey; Type: FK CONSTRAINT; Schema: web; Owner: -
--

ALTER TABLE ONLY web.measurements
    ADD CONSTRAINT measurements_image_id_fkey FOREIGN KEY (image_id) REFERENCES products.images(id) ON DELETE CASCADE;

--
-- Name: SCHEMA absurd; Type: ACL; Schema: -; Owner: -
--

GRANT USAGE ON SCHEMA absurd TO absurd_worker;
GRANT USAGE ON SCHEMA absurd TO absurd_scheduler;
GRANT USAGE ON SCHEMA absurd TO absurd_readonly;

--
-- Name: FUNCTION await_event(p_task_id bigint, p_run_id bigint, p_name text, p_timeout_s double precision); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.await_event(p_task_id bigint, p_run_id bigint, p_name text, p_timeout_s double precision) FROM PUBLIC;
GRANT ALL ON FUNCTION absurd.await_event(p_task_id bigint, p_run_id bigint, p_name text, p_timeout_s double precision) TO absurd_worker;

--
-- Name: FUNCTION cancel_task(p_task_id bigint); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.cancel_task(p_task_id bigint) FROM PUBLIC;

--
-- Name: FUNCTION cancel_workflow(p_workflow bigint); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.cancel_workflow(p_workflow bigint) FROM PUBLIC;

--
-- Name: FUNCTION claim(p_queue text, p_worker text, p_limit integer, p_lease_s double precision); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.claim(p_queue text, p_worker text, p_limit integer, p_lease_s double precision) FROM PUBLIC;
GRANT ALL ON FUNCTION absurd.claim(p_queue text, p_worker text, p_limit integer, p_lease_s double precision) TO absurd_worker;

--
-- Name: FUNCTION cleanup(p_older_than interval, p_batch integer); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.cleanup(p_older_than interval, p_batch integer) FROM PUBLIC;
GRANT ALL ON FUNCTION absurd.cleanup(p_older_than interval, p_batch integer) TO absurd_worker;

--
-- Name: FUNCTION complete_runs(p_task_ids bigint[], p_run_ids bigint[], p_results jsonb[]); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.complete_runs(p_task_ids bigint[], p_run_ids bigint[], p_results jsonb[]) FROM PUBLIC;
GRANT ALL ON FUNCTION absurd.complete_runs(p_task_ids bigint[], p_run_ids bigint[], p_results jsonb[]) TO absurd_worker;

--
-- Name: FUNCTION dlq_requeue(p_dlq_id bigint, p_actor text, p_reason text); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.dlq_requeue(p_dlq_id bigint, p_actor text, p_reason text) FROM PUBLIC;

--
-- Name: FUNCTION dlq_retry(p_dlq_id bigint, p_actor text, p_reason text, p_params jsonb); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.dlq_retry(p_dlq_id bigint, p_actor text, p_reason text, p_params jsonb) FROM PUBLIC;

--
-- Name: FUNCTION dlq_skip(p_dlq_id bigint, p_actor text, p_reason text); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.dlq_skip(p_dlq_id bigint, p_actor text, p_reason text) FROM PUBLIC;

--
-- Name: FUNCTION emit_event(p_name text, p_payload jsonb); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.emit_event(p_name text, p_payload jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION absurd.emit_event(p_name text, p_payload jsonb) TO absurd_worker;

--
-- Name: TABLE tasks; Type: ACL; Schema: absurd; Owner: -
--

GRANT SELECT ON TABLE absurd.tasks TO absurd_worker;
GRANT SELECT ON TABLE absurd.tasks TO absurd_scheduler;
GRANT SELECT ON TABLE absurd.tasks TO absurd_readonly;

--
-- Name: FUNCTION end_failed_run(t absurd.tasks, p_reason text, p_error jsonb, p_permanent boolean); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.end_failed_run(t absurd.tasks, p_reason text, p_error jsonb, p_permanent boolean) FROM PUBLIC;

--
-- Name: FUNCTION end_run(t absurd.tasks, p_state text, p_reason text, p_error jsonb); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.end_run(t absurd.tasks, p_state text, p_reason text, p_error jsonb) FROM PUBLIC;

--
-- Name: FUNCTION ensure_queue(p_queue text); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.ensure_queue(p_queue text) FROM PUBLIC;
GRANT ALL ON FUNCTION absurd.ensure_queue(p_queue text) TO absurd_worker;

--
-- Name: FUNCTION extend_leases(p_task_ids bigint[], p_run_ids bigint[], p_lease_s double precision); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.extend_leases(p_task_ids bigint[], p_run_ids bigint[], p_lease_s double precision) FROM PUBLIC;
GRANT ALL ON FUNCTION absurd.extend_leases(p_task_ids bigint[], p_run_ids bigint[], p_lease_s double precision) TO absurd_worker;

--
-- Name: FUNCTION fail_run(p_task_id bigint, p_run_id bigint, p_reason text, p_error jsonb, p_permanent boolean); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.fail_run(p_task_id bigint, p_run_id bigint, p_reason text, p_error jsonb, p_permanent boolean) FROM PUBLIC;
GRANT ALL ON FUNCTION absurd.fail_run(p_task_id bigint, p_run_id bigint, p_reason text, p_error jsonb, p_permanent boolean) TO absurd_worker;

--
-- Name: FUNCTION finish_cancelled(p_task_id bigint, p_run_id bigint); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.finish_cancelled(p_task_id bigint, p_run_id bigint) FROM PUBLIC;
GRANT ALL ON FUNCTION absurd.finish_cancelled(p_task_id bigint, p_run_id bigint) TO absurd_worker;

--
-- Name: FUNCTION fire_schedule(p_schedule text, p_fire_time timestamp with time zone, p_kind text, p_event_id bigint, p_scheduler text, p_params jsonb, p_tasks jsonb, p_error text); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.fire_schedule(p_schedule text, p_fire_time timestamp with time zone, p_kind text, p_event_id bigint, p_scheduler text, p_params jsonb, p_tasks jsonb, p_error text) FROM PUBLIC;
GRANT ALL ON FUNCTION absurd.fire_schedule(p_schedule text, p_fire_time timestamp with time zone, p_kind text, p_event_id bigint, p_scheduler text, p_params jsonb, p_tasks jsonb, p_error text) TO absurd_scheduler;

--
-- Name: FUNCTION log_event(); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.log_event() FROM PUBLIC;

--
-- Name: FUNCTION on_task_cancelled(); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.on_task_cancelled() FROM PUBLIC;

--
-- Name: FUNCTION ready_gated_tasks(p_gate text, p_queue text, p_limit integer); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.ready_gated_tasks(p_gate text, p_queue text, p_limit integer) FROM PUBLIC;

--
-- Name: FUNCTION ready_tasks(p_queue text, p_limit integer); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.ready_tasks(p_queue text, p_limit integer) FROM PUBLIC;

--
-- Name: FUNCTION reap_expired(p_limit integer); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.reap_expired(p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION absurd.reap_expired(p_limit integer) TO absurd_worker;

--
-- Name: FUNCTION record_gate_outcome(p_key text, p_ok boolean, p_run_started timestamp with time zone); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.record_gate_outcome(p_key text, p_ok boolean, p_run_started timestamp with time zone) FROM PUBLIC;

--
-- Name: FUNCTION ref_value(p_workflow bigint, p_step text, p_path text); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.ref_value(p_workflow bigint, p_step text, p_path text) FROM PUBLIC;

--
-- Name: FUNCTION release_dependents(p_parents bigint[], p_only_optional boolean); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.release_dependents(p_parents bigint[], p_only_optional boolean) FROM PUBLIC;

--
-- Name: FUNCTION release_runs(p_task_ids bigint[], p_run_ids bigint[]); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.release_runs(p_task_ids bigint[], p_run_ids bigint[]) FROM PUBLIC;
GRANT ALL ON FUNCTION absurd.release_runs(p_task_ids bigint[], p_run_ids bigint[]) TO absurd_worker;

--
-- Name: FUNCTION resolve_refs(p_value jsonb, p_workflow bigint); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.resolve_refs(p_value jsonb, p_workflow bigint) FROM PUBLIC;

--
-- Name: FUNCTION retire_replaced_daemons(p_silent_s double precision); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.retire_replaced_daemons(p_silent_s double precision) FROM PUBLIC;
GRANT ALL ON FUNCTION absurd.retire_replaced_daemons(p_silent_s double precision) TO absurd_worker;

--
-- Name: FUNCTION retry_delay(p_policy jsonb, p_failures integer); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.retry_delay(p_policy jsonb, p_failures integer) FROM PUBLIC;

--
-- Name: FUNCTION save_run_log(p_task_id bigint, p_run_id bigint, p_lines jsonb, p_dropped integer); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.save_run_log(p_task_id bigint, p_run_id bigint, p_lines jsonb, p_dropped integer) FROM PUBLIC;
GRANT ALL ON FUNCTION absurd.save_run_log(p_task_id bigint, p_run_id bigint, p_lines jsonb, p_dropped integer) TO absurd_worker;

--
-- Name: FUNCTION set_breaker_state(p_key text, p_to text, p_reason text, p_cooldown_s double precision); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.set_breaker_state(p_key text, p_to text, p_reason text, p_cooldown_s double precision) FROM PUBLIC;

--
-- Name: FUNCTION set_checkpoint(p_task_id bigint, p_run_id bigint, p_name text, p_value jsonb); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.set_checkpoint(p_task_id bigint, p_run_id bigint, p_name text, p_value jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION absurd.set_checkpoint(p_task_id bigint, p_run_id bigint, p_name text, p_value jsonb) TO absurd_worker;

--
-- Name: FUNCTION settle_dead_parent(p_task_id bigint); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.settle_dead_parent(p_task_id bigint) FROM PUBLIC;

--
-- Name: FUNCTION spawn_children(p_parent bigint, p_run bigint, p_key text, p_names text[], p_steps text[], p_params jsonb[], p_queue text); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.spawn_children(p_parent bigint, p_run bigint, p_key text, p_names text[], p_steps text[], p_params jsonb[], p_queue text) FROM PUBLIC;
GRANT ALL ON FUNCTION absurd.spawn_children(p_parent bigint, p_run bigint, p_key text, p_names text[], p_steps text[], p_params jsonb[], p_queue text) TO absurd_worker;

--
-- Name: FUNCTION spawn_many(p_queue text, p_names text[], p_params jsonb[], p_keys text[], p_priority integer, p_available_at timestamp with time zone, p_max_attempts integer, p_retry jsonb, p_timeout_s double precision, p_headers jsonb, p_gate text, p_gate_limit integer); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.spawn_many(p_queue text, p_names text[], p_params jsonb[], p_keys text[], p_priority integer, p_available_at timestamp with time zone, p_max_attempts integer, p_retry jsonb, p_timeout_s double precision, p_headers jsonb, p_gate text, p_gate_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION absurd.spawn_many(p_queue text, p_names text[], p_params jsonb[], p_keys text[], p_priority integer, p_available_at timestamp with time zone, p_max_attempts integer, p_retry jsonb, p_timeout_s double precision, p_headers jsonb, p_gate text, p_gate_limit integer) TO absurd_worker;

--
-- Name: FUNCTION start_runs(p_ids bigint[], p_worker text, p_lease_s double precision); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.start_runs(p_ids bigint[], p_worker text, p_lease_s double precision) FROM PUBLIC;

--
-- Name: FUNCTION submit_workflow(p_name text, p_params jsonb, p_tasks jsonb); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.submit_workflow(p_name text, p_params jsonb, p_tasks jsonb) FROM PUBLIC;

--
-- Name: FUNCTION suspend_run(p_task_id bigint, p_run_id bigint, p_until timestamp with time zone, p_event text); Type: ACL; Schema: absurd; Owner: -
--

REVOKE ALL ON FUNCTION absurd.suspend_run(p_task_id bigint, p_run_id bigint, p_until timestamp with time zone, p_event text) FROM PUBLIC;
GRANT ALL ON FUNCTION absurd.suspend_run(p_task_id bigint, p_run_id bigint, p_until timestamp with time zone, p_event text) TO absurd_worker;

--
-- Name: FUNCTION notify_change(); Type: ACL; Schema: web; Owner: -
--

REVOKE ALL ON FUNCTION web.notify_change() FROM PUBLIC;

--
-- Name: FUNCTION notify_tasks_changed(); Type: ACL; Schema: web; Owner: -
--

REVOKE ALL ON FUNCTION web.notify_tasks_changed() FROM PUBLIC;

--
-- Name: TABLE runs; Type: ACL; Schema: absurd; Owner: -
--

GRANT SELECT ON TABLE absurd.runs TO absurd_worker;
GRANT SELECT ON TABLE absurd.runs TO absurd_scheduler;
GRANT SELECT ON TABLE absurd.runs TO absurd_readonly;

--
-- Name: TABLE attempts; Type: ACL; Schema: absurd; Owner: -
--

GRANT SELECT ON TABLE absurd.attempts TO absurd_readonly;
GRANT SELECT ON TABLE absurd.attempts TO absurd_worker;
GRANT SELECT ON TABLE absurd.attempts TO absurd_scheduler;

--
-- Name: TABLE checkpoints; Type: ACL; Schema: absurd; Owner: -
--

GRANT SELECT ON TABLE absurd.checkpoints TO absurd_worker;
GRANT SELECT ON TABLE absurd.checkpoints TO absurd_readonly;

--
-- Name: TABLE dlq; Type: ACL; Schema: absurd; Owner: -
--

GRANT SELECT ON TABLE absurd.dlq TO absurd_worker;
GRANT SELECT ON TABLE absurd.dlq TO absurd_scheduler;
GRANT SELECT ON TABLE absurd.dlq TO absurd_readonly;

--
-- Name: TABLE dlq_actions; Type: ACL; Schema: absurd; Owner: -
--

GRANT SELECT ON TABLE absurd.dlq_actions TO absurd_worker;
GRANT SELECT ON TABLE absurd.dlq_actions TO absurd_readonly;

--
-- Name: TABLE event_log; Type: ACL; Schema: absurd; Owner: -
--

GRANT SELECT,DELETE ON TABLE absurd.event_log TO absurd_scheduler;
GRANT SELECT ON TABLE absurd.event_log TO absurd_readonly;

--
-- Name: TABLE events; Type: ACL; Schema: absurd; Owner: -
--

GRANT SELECT ON TABLE absurd.events TO absurd_worker;
GRANT SELECT ON TABLE absurd.events TO absurd_scheduler;
GRANT SELECT ON TABLE absurd.events TO absurd_readonly;

--
-- Name: TABLE gate_calls; Type: ACL; Schema: absurd; Owner: -
--

GRANT SELECT ON TABLE absurd.gate_calls TO absurd_worker;
GRANT SELECT ON TABLE absurd.gate_calls TO absurd_readonly;

--
-- Name: TABLE gate_transitions; Type: ACL; Schema: absurd; Owner: -
--

GRANT SELECT ON TABLE absurd.gate_transitions TO absurd_worker;
GRANT SELECT ON TABLE absurd.gate_transitions TO absurd_readonly;

--
-- Name: TABLE gates; Type: ACL; Schema: absurd; Owner: -
--

GRANT SELECT ON TABLE absurd.gates TO absurd_worker;
GRANT SELECT ON TABLE absurd.gates TO absurd_scheduler;
GRANT SELECT ON TABLE absurd.gates TO absurd_readonly;

--
-- Name: TABLE queues; Type: ACL; Schema: absurd; Owner: -
--

GRANT SELECT ON TABLE absurd.queues TO absurd_worker;
GRANT SELECT ON TABLE absurd.queues TO absurd_scheduler;
GRANT SELECT ON TABLE absurd.queues TO absurd_readonly;

--
-- Name: TABLE run_logs; Type: ACL; Schema: absurd; Owner: -
--

GRANT SELECT ON TABLE absurd.run_logs TO absurd_readonly;
GRANT SELECT ON TABLE absurd.run_logs TO absurd_worker;
GRANT SELECT ON TABLE absurd.run_logs TO absurd_scheduler;

--
-- Name: TABLE schedule_fires; Type: ACL; Schema: absurd; Owner: -
--

GRANT SELECT ON TABLE absurd.schedule_fires TO absurd_scheduler;
GRANT SELECT ON TABLE absurd.schedule_fires TO absurd_readonly;

--
-- Name: TABLE schedulers; Type: ACL; Schema: absurd; Owner: -
--

GRANT SELECT,INSERT,UPDATE ON TABLE absurd.schedulers TO absurd_scheduler;
GRANT SELECT ON TABLE absurd.schedulers TO absurd_readonly;

--
-- Name: TABLE schedules; Type: ACL; Schema: absurd; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE absurd.schedules TO absurd_scheduler;
GRANT SELECT ON TABLE absurd.schedules TO absurd_readonly;

--
-- Name: TABLE task_deps; Type: ACL; Schema: absurd; Owner: -
--

GRANT SELECT ON TABLE absurd.task_deps TO absurd_worker;
GRANT SELECT ON TABLE absurd.task_deps TO absurd_scheduler;
GRANT SELECT ON TABLE absurd.task_deps TO absurd_readonly;

--
-- Name: TABLE workers; Type: ACL; Schema: absurd; Owner: -
--

GRANT SELECT,INSERT,UPDATE ON TABLE absurd.workers TO absurd_worker;
GRANT SELECT ON TABLE absurd.workers TO absurd_scheduler;
GRANT SELECT ON TABLE absurd.workers TO absurd_readonly;

--
-- Name: TABLE workflow_status; Type: ACL; Schema: absurd; Owner: -
--

GRANT SELECT ON TABLE absurd.workflow_status TO absurd_worker;
GRANT SELECT ON TABLE absurd.workflow_status TO absurd_scheduler;
GRANT SELECT ON TABLE absurd.workflow_status TO absurd_readonly;

--
-- Name: TABLE workflows; Type: ACL; Schema: absurd; Owner: -
--

GRANT SELECT ON TABLE absurd.workflows TO absurd_worker;
GRANT SELECT ON TABLE absurd.workflows TO absurd_scheduler;
GRANT SELECT ON TABLE absurd.workflows TO absurd_readonly;

--
-- Name: TABLE absurd_migrations; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT ON TABLE public.absurd_migrations TO absurd_readonly;

--
-- Name: DEFAULT PRIVILEGES FOR TABLES; Type: DEFAULT ACL; Schema: absurd; Owner: -
--

ALTER DEFAULT PRIVILEGES FOR ROLE CURRENT_USER IN SCHEMA absurd GRANT SELECT ON TABLES TO absurd_readonly;

--
-- Name: DEFAULT PRIVILEGES FOR FUNCTIONS; Type: DEFAULT ACL; Schema: -; Owner: -
--

ALTER DEFAULT PRIVILEGES FOR ROLE CURRENT_USER REVOKE ALL ON FUNCTIONS FROM PUBLIC;

--
-- PostgreSQL database dump complete
--
