-- A lease that expires because the worker died (SIGKILL, OOM, reboot) is not the task's failure: it is
-- counted in lease_expiries, compared with max_lease_expiries, and does not use up max_attempts. A task that
-- keeps killing its worker still ends in the DLQ, with reason lease_expired.

ALTER TABLE absurd.tasks
    ADD COLUMN lease_expiries integer NOT NULL DEFAULT 0,
    ADD COLUMN max_lease_expiries integer NOT NULL DEFAULT 10 CHECK (max_lease_expiries >= 1);

ALTER TABLE absurd.dlq DROP CONSTRAINT dlq_reason_check;
ALTER TABLE absurd.dlq ADD CONSTRAINT dlq_reason_check
    CHECK (reason IN ('exhausted', 'permanent', 'no_retry', 'lease_expired'));

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
        PERFORM absurd.record_gate_outcome(t.gate_key, false);
    END IF;
    IF t.gate_key IS NOT NULL THEN
        PERFORM pg_notify('absurd_wake', '');
    END IF;
    RETURN v_state;
END
$$;

-- A retried DLQ task starts both counts over.
CREATE OR REPLACE FUNCTION absurd.dlq_retry(p_dlq_id bigint, p_actor text, p_reason text, p_params jsonb)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
