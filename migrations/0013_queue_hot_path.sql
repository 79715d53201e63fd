-- The queue's hot path (issue 14): claiming, and the dashboard's notification of finished tasks.
--
-- 1. When no gated task is among the candidates (no gate exists, or none of their tasks is ready), the
--    ungated picker's rows are already locked and in claim order: they are started as they are, without
--    reading every row again to re-sort them and without the half-open trial count, which only gated tasks
--    feed. With gated candidates the claim is unchanged (0001_queue.sql).
-- 2. The picker (ready_tasks) and start_runs become PL/pgSQL with the same statements: a LANGUAGE sql
--    function that is not inlined (these are SECURITY DEFINER) plans its statement at every call, while
--    PL/pgSQL keeps the plan for the session. A worker claims many times a second.
-- 3. The dashboard's notification (0010_web.sql) is sent once per statement that changes task states, not
--    once per row: completing a batch of 500 called web.notify_change 500 times, although Postgres folds
--    the notifications of a transaction into one. It now also comes when tasks start, which the overview's
--    running counts show; lease renewals, which do not change a state, still send nothing.

CREATE OR REPLACE FUNCTION absurd.ready_tasks(p_queue text, p_limit integer) RETURNS SETOF bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
            started_at = coalesce(t.started_at, now()), wait_event = NULL
        WHERE t.id = ANY(p_ids)
        RETURNING t.id, t.current_run, t.attempts, t.name, t.params, t.headers, t.timeout_s, t.failures,
                  t.max_attempts
    ), started AS (
        INSERT INTO absurd.runs (task_id, attempt, id, worker_id, state)
        SELECT c.id, c.attempts, c.current_run, p_worker, 'running' FROM claimed c
    )
    SELECT * FROM claimed;
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

DROP TRIGGER tasks_notify_web ON absurd.tasks;
CREATE TRIGGER tasks_notify_web AFTER UPDATE OF state ON absurd.tasks
    FOR EACH STATEMENT EXECUTE FUNCTION web.notify_change();
