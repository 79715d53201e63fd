-- Workflows (DAGs enforced by the database), the dead-letter queue, and gates: per-key
-- concurrency limits and circuit breakers. The states and transitions are in docs/state-machine.md.

-- Tasks: a new state 'waiting' (dependencies not yet completed) and the workflow and gate columns.
ALTER TABLE absurd.tasks DROP CONSTRAINT tasks_state_check;
ALTER TABLE absurd.tasks ADD CONSTRAINT tasks_state_check
    CHECK (state IN ('waiting', 'pending', 'running', 'sleeping', 'completed', 'failed', 'cancelled'));
ALTER TABLE absurd.tasks
    ADD COLUMN workflow_id bigint,
    ADD COLUMN step_name text,
    ADD COLUMN deps_pending integer NOT NULL DEFAULT 0,
    ADD COLUMN gate_key text;

-- The fast claim path reads only ungated tasks; gated ones have an index per gate key.
DROP INDEX absurd.tasks_claim;
CREATE INDEX tasks_claim ON absurd.tasks (queue, priority DESC, available_at, id)
    WHERE state IN ('pending', 'sleeping') AND gate_key IS NULL;
CREATE INDEX tasks_claim_gated ON absurd.tasks (gate_key, queue, priority DESC, available_at, id)
    WHERE state IN ('pending', 'sleeping') AND gate_key IS NOT NULL;
CREATE INDEX tasks_gate_running ON absurd.tasks (gate_key) WHERE state = 'running' AND gate_key IS NOT NULL;
CREATE INDEX tasks_workflow ON absurd.tasks (workflow_id, step_name) WHERE workflow_id IS NOT NULL;

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

CREATE TABLE absurd.dlq (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id           bigint NOT NULL,
    queue             text NOT NULL,
    task_name         text NOT NULL,
    reason            text NOT NULL CHECK (reason IN ('exhausted', 'permanent', 'no_retry')),
    error             jsonb,
    entered_at        timestamptz NOT NULL DEFAULT now(),
    resolved_at       timestamptz,
    resolution        text CHECK (resolution IN ('retried', 'skipped', 'requeued')),
    resolved_by       text,
    requeued_task_id  bigint
);
CREATE UNIQUE INDEX dlq_open_per_task ON absurd.dlq (task_id) WHERE resolved_at IS NULL;
CREATE INDEX dlq_open ON absurd.dlq (entered_at) WHERE resolved_at IS NULL;

-- Every DLQ action: who, when, why, and what changed.
CREATE TABLE absurd.dlq_actions (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dlq_id   bigint NOT NULL REFERENCES absurd.dlq (id),
    action   text NOT NULL,
    actor    text NOT NULL,
    reason   text,
    details  jsonb,
    at       timestamptz NOT NULL DEFAULT now()
);

-- A gate guards one key (a task name, or a declared resource such as 'casa' or 'calibration:2026-11-22'):
-- at most max_running of its tasks at once, and/or a circuit breaker.
CREATE TABLE absurd.gates (
    key                text PRIMARY KEY,
    max_running        integer CHECK (max_running IS NULL OR max_running > 0),
    breaker_enabled    boolean NOT NULL DEFAULT false,
    failure_threshold  integer NOT NULL DEFAULT 5 CHECK (failure_threshold > 0),
    window_s           double precision NOT NULL DEFAULT 300 CHECK (window_s > 0),
    failure_rate       double precision CHECK (failure_rate IS NULL OR (failure_rate > 0 AND failure_rate <= 1)),
    min_calls          integer NOT NULL DEFAULT 10 CHECK (min_calls > 0),
    base_cooldown_s    double precision NOT NULL DEFAULT 30 CHECK (base_cooldown_s > 0),
    max_cooldown_s     double precision NOT NULL DEFAULT 1800 CHECK (max_cooldown_s > 0),
    half_open_trials   integer NOT NULL DEFAULT 1 CHECK (half_open_trials > 0),
    breaker_state      text NOT NULL DEFAULT 'closed' CHECK (breaker_state IN ('closed', 'open', 'half_open')),
    cooldown_s         double precision,
    cooldown_until     timestamptz,
    state_changed_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE absurd.gate_calls (
    key  text NOT NULL,
    at   timestamptz NOT NULL DEFAULT now(),
    ok   boolean NOT NULL
);
CREATE INDEX gate_calls_key_at ON absurd.gate_calls (key, at);

CREATE TABLE absurd.gate_transitions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key         text NOT NULL,
    from_state  text NOT NULL,
    to_state    text NOT NULL,
    reason      text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION absurd.set_breaker_state(p_key text, p_to text, p_reason text, p_cooldown_s double precision)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_from text;
BEGIN
    SELECT breaker_state INTO v_from FROM absurd.gates WHERE key = p_key FOR UPDATE;
    IF NOT FOUND OR v_from = p_to THEN
        RETURN;
    END IF;
    UPDATE absurd.gates
    SET breaker_state = p_to, state_changed_at = now(), cooldown_s = p_cooldown_s,
        cooldown_until = CASE WHEN p_to = 'open' THEN now() + make_interval(secs => p_cooldown_s) END
    WHERE key = p_key;
    INSERT INTO absurd.gate_transitions (key, from_state, to_state, reason) VALUES (p_key, v_from, p_to, p_reason);
    PERFORM pg_notify('absurd_breaker', json_build_object('key', p_key, 'from', v_from, 'to', p_to)::text);
    IF p_to <> 'open' THEN
        PERFORM pg_notify('absurd_wake', '');
    END IF;
END
$$;

-- Record a gated task's outcome and move its breaker: a half-open success closes it; a failure re-opens a
-- half-open breaker with a doubled cooldown, or opens a closed one past its threshold.
CREATE FUNCTION absurd.record_gate_outcome(p_key text, p_ok boolean) RETURNS void
LANGUAGE plpgsql AS $$
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

-- Spawning now also sets the gate: the given key, else the task's name when a gate of that name exists.
DROP FUNCTION absurd.spawn_many(text, text[], jsonb[], text[], integer, timestamptz, integer, jsonb,
                                double precision, jsonb);
CREATE FUNCTION absurd.spawn_many(
    p_queue text, p_names text[], p_params jsonb[], p_keys text[],
    p_priority integer, p_available_at timestamptz, p_max_attempts integer, p_retry jsonb,
    p_timeout_s double precision, p_headers jsonb, p_gate text, p_gate_limit integer)
RETURNS TABLE (ord bigint, task_id bigint, created boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_ords bigint[];
    v_ids bigint[];
    v_keys text[];
BEGIN
    PERFORM absurd.ensure_queue(p_queue);
    -- A gated task is only ever claimed through its gate's row, so the row must exist.
    IF p_gate IS NOT NULL THEN
        INSERT INTO absurd.gates (key, max_running) VALUES (p_gate, p_gate_limit) ON CONFLICT DO NOTHING;
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
    RETURN QUERY
    SELECT u.ord, coalesce(u.id, (SELECT t.id FROM absurd.tasks t WHERE t.idempotency_key = u.key)),
           u.id IS NOT NULL
    FROM unnest(v_ords, v_ids, v_keys) AS u(ord, id, key)
    ORDER BY u.ord;
END
$$;

-- The claimable tasks of a queue, best first, locked for this transaction. The fast path reads only
-- ungated tasks through tasks_claim; gated ones are read per gate through tasks_claim_gated.
CREATE FUNCTION absurd.ready_tasks(p_queue text, p_limit integer) RETURNS SETOF bigint
LANGUAGE sql AS $$
    SELECT t.id FROM absurd.tasks t
    WHERE t.queue = p_queue AND t.state IN ('pending', 'sleeping') AND t.gate_key IS NULL
      AND t.available_at <= now()
    ORDER BY t.priority DESC, t.available_at, t.id
    LIMIT p_limit
    FOR UPDATE SKIP LOCKED
$$;

CREATE FUNCTION absurd.ready_gated_tasks(p_gate text, p_queue text, p_limit integer) RETURNS SETOF bigint
LANGUAGE sql AS $$
    SELECT t.id FROM absurd.tasks t
    WHERE t.gate_key = p_gate AND t.queue = p_queue AND t.state IN ('pending', 'sleeping')
      AND t.available_at <= now()
    ORDER BY t.priority DESC, t.available_at, t.id
    LIMIT p_limit
    FOR UPDATE SKIP LOCKED
$$;

-- Start a run, with a lease, for each locked task.
CREATE FUNCTION absurd.start_runs(p_ids bigint[], p_worker text, p_lease_s double precision)
RETURNS TABLE (task_id bigint, run_id bigint, attempt integer, name text, params jsonb, headers jsonb,
               timeout_s double precision, failures integer, max_attempts integer)
LANGUAGE sql AS $$
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
    SELECT * FROM claimed
$$;

-- Claim: ungated tasks first, then gated ones gate by gate. A gate's row is locked (SKIP LOCKED) while
-- its tasks are claimed, so concurrent claimers never exceed its limit.
DROP FUNCTION absurd.claim(text, text, integer, double precision);
CREATE FUNCTION absurd.claim(p_queue text, p_worker text, p_limit integer, p_lease_s double precision)
RETURNS TABLE (task_id bigint, run_id bigint, attempt integer, name text, params jsonb, headers jsonb,
               timeout_s double precision, failures integer, max_attempts integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_ids bigint[];
    v_want integer := p_limit;
    v_cap integer;
    v_running integer;
    g absurd.gates;
BEGIN
    IF EXISTS (SELECT 1 FROM absurd.queues q WHERE q.name = p_queue AND q.paused) THEN
        RETURN;
    END IF;
    v_ids := ARRAY(SELECT absurd.ready_tasks(p_queue, v_want));
    IF cardinality(v_ids) > 0 THEN
        RETURN QUERY SELECT * FROM absurd.start_runs(v_ids, p_worker, p_lease_s);
    END IF;
    v_want := v_want - cardinality(v_ids);
    IF v_want <= 0 OR NOT EXISTS (SELECT 1 FROM absurd.gates) THEN
        RETURN;
    END IF;

    -- Breakers whose cooldown has passed let trial tasks through.
    FOR g IN SELECT * FROM absurd.gates
             WHERE breaker_state = 'open' AND cooldown_until <= now() FOR UPDATE SKIP LOCKED LOOP
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
        v_cap := v_want;
        IF g.max_running IS NOT NULL THEN
            v_cap := least(v_cap, g.max_running - v_running);
        END IF;
        IF g.breaker_state = 'half_open' THEN
            v_cap := least(v_cap, g.half_open_trials - v_running);
        END IF;
        CONTINUE WHEN v_cap <= 0;
        v_ids := ARRAY(SELECT absurd.ready_gated_tasks(g.key, p_queue, v_cap));
        CONTINUE WHEN cardinality(v_ids) = 0;
        RETURN QUERY SELECT * FROM absurd.start_runs(v_ids, p_worker, p_lease_s);
        v_want := v_want - cardinality(v_ids);
        EXIT WHEN v_want <= 0;
    END LOOP;
END
$$;

-- The value a reference such as ${calibrate.result.caltable} points at, in the task's workflow.
CREATE FUNCTION absurd.ref_value(p_workflow bigint, p_step text, p_path text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN coalesce(p_path, '') = '' THEN t.result
                ELSE t.result #> string_to_array(substr(p_path, 2), '.') END
    FROM absurd.tasks t
    WHERE t.workflow_id = p_workflow AND t.step_name = p_step AND t.state = 'completed'
    ORDER BY t.id DESC LIMIT 1
$$;

-- Replace references to parents' results in a task's params. A string that is one reference takes the
-- referenced JSON value; references inside longer strings are interpolated as text.
CREATE FUNCTION absurd.resolve_refs(p_value jsonb, p_workflow bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_text text;
    v_match text[];
    v_out jsonb;
    v_ref jsonb;
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
        v_match := regexp_match(v_text, '^\$\{([A-Za-z0-9_.:-]+?)\.result((\.[A-Za-z0-9_-]+)*)\}$');
        IF v_match IS NOT NULL THEN
            RETURN coalesce(absurd.ref_value(p_workflow, v_match[1], v_match[2]), 'null'::jsonb);
        END IF;
        LOOP
            v_match := regexp_match(v_text, '\$\{([A-Za-z0-9_.:-]+?)\.result((\.[A-Za-z0-9_-]+)*)\}');
            EXIT WHEN v_match IS NULL;
            v_ref := absurd.ref_value(p_workflow, v_match[1], v_match[2]);
            v_text := replace(v_text, '${' || v_match[1] || '.result' || coalesce(v_match[2], '') || '}',
                              coalesce(v_ref #>> '{}', ''));
        END LOOP;
        RETURN to_jsonb(v_text);
    ELSE
        RETURN p_value;
    END CASE;
END
$$;

-- A parent finished: completed (or skipped with its edge optional) releases its dependents; a dependent
-- whose last dependency is met becomes pending with its references resolved.
CREATE FUNCTION absurd.release_dependents(p_parents bigint[], p_only_optional boolean) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
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

-- Complete many runs at once (fencing as before), then release dependents and feed breakers. The release
-- is a separate statement so that it sees the results just written.
DROP FUNCTION absurd.complete_runs(bigint[], bigint[], jsonb[]);
CREATE FUNCTION absurd.complete_runs(p_task_ids bigint[], p_run_ids bigint[], p_results jsonb[])
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
           array_agg(done.gate_key) FILTER (WHERE done.gate_key IS NOT NULL),
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

-- Failing a run now files terminal failures in the DLQ and feeds the task's breaker.
CREATE OR REPLACE FUNCTION absurd.end_failed_run(t absurd.tasks, p_reason text, p_error jsonb, p_permanent boolean)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_failures integer := t.failures + 1;
    v_state text;
BEGIN
    UPDATE absurd.runs SET state = 'failed', finished_at = now(), failure_reason = p_reason, error = p_error
    WHERE task_id = t.id AND attempt = t.attempts;
    IF t.cancel_requested_at IS NOT NULL THEN
        v_state := 'cancelled';
    ELSIF p_permanent OR v_failures >= t.max_attempts OR t.retry->>'kind' = 'none' THEN
        v_state := 'failed';
    ELSE
        v_state := 'pending';
    END IF;
    UPDATE absurd.tasks
    SET state = v_state, failures = v_failures, last_error = p_error, lease_expires_at = NULL,
        available_at = CASE WHEN v_state = 'pending'
                            THEN now() + absurd.retry_delay(t.retry, v_failures) ELSE available_at END,
        finished_at = CASE WHEN v_state = 'pending' THEN NULL ELSE now() END
    WHERE id = t.id;
    IF v_state = 'failed' THEN
        INSERT INTO absurd.dlq (task_id, queue, task_name, reason, error)
        VALUES (t.id, t.queue, t.name,
                CASE WHEN p_permanent THEN 'permanent'
                     WHEN t.retry->>'kind' = 'none' THEN 'no_retry' ELSE 'exhausted' END,
                p_error);
    END IF;
    -- Invalid input and cancellations say nothing about the health of what the breaker guards.
    IF t.gate_key IS NOT NULL AND NOT p_permanent AND v_state <> 'cancelled' THEN
        PERFORM absurd.record_gate_outcome(t.gate_key, false);
    END IF;
    IF t.gate_key IS NOT NULL THEN
        PERFORM pg_notify('absurd_wake', '');
    END IF;
    RETURN v_state;
END
$$;

-- A dead parent (cancelled, or skipped from the DLQ): dependents on required edges are cancelled (which
-- cascades through the trigger below), dependents on optional edges are released.
CREATE FUNCTION absurd.settle_dead_parent(p_task_id bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE absurd.tasks c SET state = 'cancelled', finished_at = now()
    FROM absurd.task_deps d
    WHERE d.depends_on = p_task_id AND NOT d.optional AND c.id = d.task_id AND c.state = 'waiting';
    PERFORM absurd.release_dependents(ARRAY[p_task_id], true);
END
$$;

CREATE FUNCTION absurd.on_task_cancelled() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM absurd.settle_dead_parent(NEW.id);
    RETURN NULL;
END
$$;

CREATE TRIGGER task_cancelled AFTER UPDATE OF state ON absurd.tasks
    FOR EACH ROW WHEN (NEW.state = 'cancelled' AND OLD.state <> 'cancelled' AND NEW.workflow_id IS NOT NULL)
    EXECUTE FUNCTION absurd.on_task_cancelled();

-- Waiting tasks are cancelled at once, like pending ones.
CREATE OR REPLACE FUNCTION absurd.cancel_task(p_task_id bigint) RETURNS text
LANGUAGE plpgsql AS $$
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

-- Submit a workflow atomically. p_tasks is a JSON array of
-- {step, name, params, depends_on: [{step, optional}], queue, priority, max_attempts, retry, timeout_s, gate}.
-- The caller has validated names, dependencies and cycles; the database enforces the order.
CREATE FUNCTION absurd.submit_workflow(p_name text, p_params jsonb, p_tasks jsonb) RETURNS bigint
LANGUAGE plpgsql AS $$
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
-- also waits on each child, so fan-in needs nothing more.
CREATE FUNCTION absurd.spawn_children(p_parent bigint, p_run bigint, p_key text, p_names text[],
                                      p_steps text[], p_params jsonb[], p_queue text)
RETURNS TABLE (task_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_workflow bigint;
    v_ids bigint[];
    v_done jsonb;
BEGIN
    SELECT t.workflow_id INTO v_workflow FROM absurd.tasks t
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
    PERFORM absurd.ensure_queue(p_queue);
    WITH ins AS (
        INSERT INTO absurd.tasks (queue, name, params, workflow_id, step_name, gate_key)
        SELECT p_queue, u.name, coalesce(u.params, '{}'), v_workflow, u.step,
               (SELECT g.key FROM absurd.gates g WHERE g.key = u.name)
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

CREATE FUNCTION absurd.cancel_workflow(p_workflow bigint) RETURNS integer
LANGUAGE plpgsql AS $$
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

-- DLQ actions. Each returns the affected task id (the new one for requeue) and records the action.
CREATE FUNCTION absurd.dlq_retry(p_dlq_id bigint, p_actor text, p_reason text, p_params jsonb)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    e absurd.dlq;
BEGIN
    SELECT * INTO e FROM absurd.dlq WHERE id = p_dlq_id AND resolved_at IS NULL FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no open DLQ entry with id %', p_dlq_id USING ERRCODE = 'P0002';
    END IF;
    UPDATE absurd.tasks
    SET state = 'pending', failures = 0, available_at = now(), finished_at = NULL,
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

CREATE FUNCTION absurd.dlq_skip(p_dlq_id bigint, p_actor text, p_reason text) RETURNS bigint
LANGUAGE plpgsql AS $$
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

CREATE FUNCTION absurd.dlq_requeue(p_dlq_id bigint, p_actor text, p_reason text) RETURNS bigint
LANGUAGE plpgsql AS $$
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

-- Cleanup keeps tasks still in the DLQ and the rows that hang off deleted tasks go with them.
CREATE OR REPLACE FUNCTION absurd.cleanup(p_older_than interval, p_batch integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    WITH doomed AS (
        SELECT t.id FROM absurd.tasks t
        WHERE t.finished_at < now() - p_older_than AND t.state IN ('completed', 'cancelled', 'failed')
          AND NOT EXISTS (SELECT 1 FROM absurd.dlq d WHERE d.task_id = t.id AND d.resolved_at IS NULL)
        ORDER BY t.finished_at LIMIT p_batch
        FOR UPDATE SKIP LOCKED
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

-- Woken tasks may sit in several queues: wake every worker, not only one queue's.
CREATE OR REPLACE FUNCTION absurd.emit_event(p_name text, p_payload jsonb) RETURNS integer
LANGUAGE plpgsql AS $$
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

-- Fencing, as for every other write on a run: only a held, unexpired lease, and only a requested cancel.
CREATE OR REPLACE FUNCTION absurd.finish_cancelled(p_task_id bigint, p_run_id bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_attempt integer;
BEGIN
    UPDATE absurd.tasks
    SET state = 'cancelled', finished_at = now(), lease_expires_at = NULL
    WHERE id = p_task_id AND current_run = p_run_id AND state = 'running' AND lease_expires_at > now()
      AND cancel_requested_at IS NOT NULL
    RETURNING attempts INTO v_attempt;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE absurd.runs SET state = 'cancelled', finished_at = now(), failure_reason = 'cancelled'
    WHERE task_id = p_task_id AND attempt = v_attempt;
    RETURN true;
END
$$;

CREATE OR REPLACE FUNCTION absurd.release_runs(p_task_ids bigint[], p_run_ids bigint[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    WITH released AS (
        UPDATE absurd.tasks t
        SET state = 'pending', available_at = now(), lease_expires_at = NULL, worker_id = NULL
        FROM unnest(p_task_ids, p_run_ids) AS u(task_id, run_id)
        WHERE t.id = u.task_id AND t.current_run = u.run_id AND t.state = 'running'
          AND t.lease_expires_at > now()
        RETURNING t.id, t.attempts
    ), ended AS (
        UPDATE absurd.runs r SET state = 'released', finished_at = now()
        FROM released WHERE r.task_id = released.id AND r.attempt = released.attempts
    )
    SELECT count(*) INTO n FROM released;
    PERFORM pg_notify('absurd_wake', '');
    RETURN n;
END
$$;
