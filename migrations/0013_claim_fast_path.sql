-- The claim's fast path (issue 14). When no gated task is among the candidates (no gate exists, or none
-- of their tasks is ready), the ungated picker's rows are already locked and in claim order: they are
-- started as they are, without reading every row again to re-sort them and without the half-open trial
-- count, which only gated tasks feed. With gated candidates the claim is unchanged (0001_queue.sql).

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
