-- One task spawned alone takes a statement of its own (issue 14).
--
-- spawn_many's insert is a statement of common table expressions over the arrays, which PL/pgSQL plans
-- afresh at every call (its parameters are arrays whose sizes the plan depends on): about 0.25 ms of the
-- 0.4 ms a single spawn spent in the server, and all of it between the task's created_at and its commit,
-- so it was part of every spawn-to-start latency. A batch of one now inserts its row with a plain INSERT,
-- whose plan the session keeps; the queue's row is only written when it is missing. Batches are unchanged.

CREATE OR REPLACE FUNCTION absurd.spawn_many(
    p_queue text, p_names text[], p_params jsonb[], p_keys text[], p_priority integer,
    p_available_at timestamptz, p_max_attempts integer, p_retry jsonb, p_timeout_s double precision,
    p_headers jsonb, p_gate text, p_gate_limit integer)
RETURNS TABLE (ord bigint, task_id bigint, created boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
