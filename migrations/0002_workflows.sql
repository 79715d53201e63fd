-- Workflows: DAGs of tasks whose order the database enforces. A task with unmet dependencies is 'waiting'
-- (tasks.deps_pending counts them); a completed parent releases its dependents, a dead one (cancelled, or
-- skipped from the DLQ) cancels those that need it. The states and transitions are in docs/state-machine.md.

CREATE TABLE absurd.workflows (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL,
    params        jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    cancelled_at  timestamptz
);

CREATE TABLE absurd.task_deps (
    task_id     bigint NOT NULL,
    depends_on  bigint NOT NULL,
    optional    boolean NOT NULL DEFAULT false,
    PRIMARY KEY (task_id, depends_on)
);
CREATE INDEX task_deps_parent ON absurd.task_deps (depends_on);

-- The value a reference such as ${calibrate.result.caltable} points at, in the task's workflow.
CREATE FUNCTION absurd.ref_value(p_workflow bigint, p_step text, p_path text) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN coalesce(p_path, '') = '' THEN t.result
                ELSE t.result #> string_to_array(substr(p_path, 2), '.') END
    FROM absurd.tasks t
    WHERE t.workflow_id = p_workflow AND t.step_name = p_step AND t.state = 'completed'
    ORDER BY t.id DESC LIMIT 1
$$;

-- Replace references to parents' results in a task's params. A string that is one reference takes the
-- referenced JSON value; references inside longer strings are interpolated as text. They are substituted
-- left to right in one pass over the original text, so a parent's result that itself contains "${...}" is
-- inserted as it is and never expanded again.
CREATE FUNCTION absurd.resolve_refs(p_value jsonb, p_workflow bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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

-- A parent finished: completed (or dead with its edge optional) releases its dependents; a dependent
-- whose last dependency is met becomes pending with its references resolved.
-- The dependents are locked first, in id order; the update is a new statement, so its snapshot holds every
-- parent that committed before those locks were granted. Two parents completing at once in two transactions
-- therefore both appear in the resolved references.
CREATE FUNCTION absurd.release_dependents(p_parents bigint[], p_only_optional boolean) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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

-- A dead parent (cancelled, or skipped from the DLQ): every waiting task that needs it, directly or through
-- other such tasks, is cancelled in one statement (one trigger call per DAG level would overflow the stack on
-- a long chain), and dependents on optional edges are released. The trigger below still fires for each task
-- cancelled here, finds nothing left to cancel, and releases their optional edges.
CREATE FUNCTION absurd.settle_dead_parent(p_task_id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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

CREATE FUNCTION absurd.on_task_cancelled() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM absurd.settle_dead_parent(NEW.id);
    RETURN NULL;
END
$$;

CREATE TRIGGER task_cancelled AFTER UPDATE OF state ON absurd.tasks
    FOR EACH ROW WHEN (NEW.state = 'cancelled' AND OLD.state <> 'cancelled' AND NEW.workflow_id IS NOT NULL)
    EXECUTE FUNCTION absurd.on_task_cancelled();

-- Submit a workflow atomically. p_tasks is a JSON array of
-- {step, name, params, depends_on: [{step, optional}], queue, priority, max_attempts, retry, timeout_s, gate}.
-- The caller has validated names, dependencies and cycles; the database enforces the order.
CREATE FUNCTION absurd.submit_workflow(p_name text, p_params jsonb, p_tasks jsonb) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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

-- Fan-out: a running workflow task adds children to its workflow. Every task that waits on the parent
-- also waits on each child, so fan-in needs nothing more. A parent asked to cancel, or in a cancelled
-- workflow, adds its children already cancelled, so nothing spawned after cancel_workflow runs.
CREATE FUNCTION absurd.spawn_children(p_parent bigint, p_run bigint, p_key text, p_names text[],
                                      p_steps text[], p_params jsonb[], p_queue text)
RETURNS TABLE (task_id bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
$$;

-- Cancel every unfinished task of a workflow. Returns how many were cancelled or asked to cancel, or NULL
-- for an unknown workflow.
CREATE FUNCTION absurd.cancel_workflow(p_workflow bigint) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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

-- A workflow's state is derived from its tasks, never stored.
CREATE VIEW absurd.workflow_status AS
SELECT w.id, w.name, w.created_at, w.cancelled_at,
       count(t.id) AS tasks,
       count(t.id) FILTER (WHERE t.state = 'completed') AS completed,
       count(t.id) FILTER (WHERE t.state IN ('pending', 'running', 'sleeping')) AS active,
       count(t.id) FILTER (WHERE t.state = 'waiting') AS waiting,
       count(t.id) FILTER (WHERE t.state = 'failed') AS failed,
       count(t.id) FILTER (WHERE t.state = 'cancelled') AS cancelled,
       count(dq.id) AS in_dlq,
       max(t.finished_at) AS last_finished_at,
       CASE
           WHEN w.cancelled_at IS NOT NULL THEN 'cancelled'
           WHEN count(t.id) = count(t.id) FILTER (WHERE t.state = 'completed') THEN 'completed'
           WHEN count(dq.id) > 0 THEN 'blocked'
           WHEN count(t.id) FILTER (WHERE t.state IN ('pending', 'running', 'sleeping', 'waiting')) > 0
               THEN 'running'
           ELSE 'finished_with_skips'
       END AS state
FROM absurd.workflows w
-- A task requeued from the DLQ is replaced by its copy; the original no longer counts.
LEFT JOIN absurd.tasks t ON t.workflow_id = w.id
    AND NOT EXISTS (SELECT 1 FROM absurd.dlq rq WHERE rq.task_id = t.id AND rq.resolution = 'requeued')
LEFT JOIN absurd.dlq dq ON dq.task_id = t.id AND dq.resolved_at IS NULL
GROUP BY w.id;
