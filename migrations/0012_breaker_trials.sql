-- Half-open breakers (review #17): at most half_open_trials tasks are admitted as trials per half-open
-- period (counted when claimed, not while running, so a trial that sleeps, is cancelled or fails permanently
-- lets no other in), and only a run claimed after the breaker half-opened is a trial: the outcome of one
-- claimed before it opened moves nothing.

ALTER TABLE absurd.gates ADD COLUMN trials_admitted integer NOT NULL DEFAULT 0;

CREATE OR REPLACE FUNCTION absurd.set_breaker_state(p_key text, p_to text, p_reason text, p_cooldown_s double precision)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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

DROP FUNCTION absurd.record_gate_outcome(text, boolean);
CREATE FUNCTION absurd.record_gate_outcome(p_key text, p_ok boolean, p_run_started timestamptz DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
        UPDATE absurd.tasks t
        SET state = 'completed', result = i.result, finished_at = now(), lease_expires_at = NULL
        FROM input i
        WHERE t.id = i.task_id AND t.current_run = i.run_id AND t.state = 'running'
          AND t.lease_expires_at > now()
        RETURNING t.id, t.attempts, t.workflow_id, t.gate_key
    ), ended AS (
        UPDATE absurd.runs r SET state = 'completed', finished_at = now()
        FROM done WHERE r.task_id = done.id AND r.attempt = done.attempts
        RETURNING r.task_id, r.started_at
    )
    SELECT array_agg(done.id) FILTER (WHERE done.workflow_id IS NOT NULL),
           array_agg(done.gate_key ORDER BY done.gate_key, done.id) FILTER (WHERE done.gate_key IS NOT NULL),
           array_agg(ended.started_at ORDER BY done.gate_key, done.id) FILTER (WHERE done.gate_key IS NOT NULL),
           array_agg(done.id)
    INTO v_done, v_gates, v_started, p_task_ids
    FROM done LEFT JOIN ended ON ended.task_id = done.id;
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
    UPDATE absurd.runs SET state = 'failed', finished_at = now(), failure_reason = p_reason, error = p_error
    WHERE task_id = t.id AND attempt = t.attempts;
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
        PERFORM absurd.record_gate_outcome(t.gate_key, false,
            (SELECT r.started_at FROM absurd.runs r WHERE r.task_id = t.id AND r.attempt = t.attempts));
    END IF;
    IF t.gate_key IS NOT NULL THEN
        PERFORM pg_notify('absurd_wake', '');
    END IF;
    RETURN v_state;
END
$$;

CREATE OR REPLACE FUNCTION absurd.claim(p_queue text, p_worker text, p_limit integer, p_lease_s double precision)
RETURNS TABLE (task_id bigint, run_id bigint, attempt integer, name text, params jsonb, headers jsonb,
               timeout_s double precision, failures integer, max_attempts integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
