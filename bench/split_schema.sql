-- A prototype of a split queue schema, for bench/ceiling.py only: the engine does not use it.
--
-- absurd.tasks changes `state` at every claim and completion, and `state` is in the predicate of six of its
-- indexes, so every such update writes a new row version elsewhere and an entry in every index that takes
-- it (no HOT update). Here claimability and leases live in narrow tables of their own (as in Solid Queue's
-- ready and claimed executions), and split.tasks has no index on anything a claim or completion changes:
-- its updates can be HOT. Only the ungated fast path is modelled: no gates, sleeps, retries or workflows.

CREATE SCHEMA split;

CREATE TABLE split.tasks (LIKE absurd.tasks INCLUDING DEFAULTS) WITH (fillfactor = 50);
ALTER TABLE split.tasks ADD PRIMARY KEY (id);

CREATE TABLE split.ready (
    task_id       bigint PRIMARY KEY,
    queue         text NOT NULL,
    priority      integer NOT NULL,
    available_at  timestamptz NOT NULL
);
CREATE INDEX ready_claim ON split.ready (queue, priority DESC, available_at, task_id);

CREATE TABLE split.leases (
    task_id     bigint PRIMARY KEY,
    run_id      bigint NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX leases_expiry ON split.leases (expires_at);

CREATE TABLE split.runs (LIKE absurd.runs INCLUDING DEFAULTS);
ALTER TABLE split.runs ADD PRIMARY KEY (task_id, attempt);

-- Moves the tasks absurd.spawn_many made into the split tables, all ready.
CREATE FUNCTION split.take_over() RETURNS void LANGUAGE sql AS $$
    TRUNCATE split.tasks, split.ready, split.leases, split.runs;
    INSERT INTO split.tasks SELECT * FROM absurd.tasks;
    INSERT INTO split.ready SELECT id, queue, priority, available_at FROM split.tasks;
    TRUNCATE absurd.tasks;
$$;

-- The same columns as absurd.claim.
CREATE FUNCTION split.claim(p_queue text, p_worker text, p_limit integer, p_lease_s double precision)
RETURNS TABLE (task_id bigint, run_id bigint, attempt integer, name text, params jsonb, headers jsonb,
               timeout_s double precision, failures integer, max_attempts integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_ids bigint[];
BEGIN
    v_ids := ARRAY(SELECT r.task_id FROM split.ready r
                   WHERE r.queue = p_queue AND r.available_at <= now()
                   ORDER BY r.priority DESC, r.available_at, r.task_id
                   LIMIT p_limit FOR UPDATE SKIP LOCKED);
    DELETE FROM split.ready r WHERE r.task_id = ANY(v_ids);
    RETURN QUERY
    WITH claimed AS (
        UPDATE split.tasks t
        SET state = 'running', attempts = t.attempts + 1, current_run = nextval('absurd.run_ids'),
            worker_id = p_worker, started_at = coalesce(t.started_at, now()), run_started_at = now()
        WHERE t.id = ANY(v_ids)
        RETURNING t.id, t.current_run, t.attempts, t.name, t.params, t.headers, t.timeout_s, t.failures,
                  t.max_attempts
    ), leased AS (
        INSERT INTO split.leases
        SELECT c.id, c.current_run, now() + make_interval(secs => p_lease_s) FROM claimed c
    )
    SELECT * FROM claimed;
END
$$;

-- The same arguments and fencing as absurd.complete_runs: the lease row holds the run id and its expiry.
CREATE FUNCTION split.complete_runs(p_task_ids bigint[], p_run_ids bigint[], p_results jsonb[])
RETURNS TABLE (task_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_ids bigint[];
    v_runs bigint[];
    v_results jsonb[];
    v_done bigint[];
BEGIN
    SELECT array_agg(u.id ORDER BY u.id, u.run), array_agg(u.run ORDER BY u.id, u.run),
           array_agg(u.result ORDER BY u.id, u.run)
    INTO v_ids, v_runs, v_results
    FROM unnest(p_task_ids, p_run_ids, p_results) AS u(id, run, result);
    WITH fenced AS (
        DELETE FROM split.leases l
        WHERE l.task_id = ANY(v_ids) AND l.run_id = v_runs[width_bucket(l.task_id, v_ids)]
          AND l.expires_at > now()
        RETURNING l.task_id
    )
    SELECT array_agg(f.task_id) INTO v_done FROM fenced f;
    RETURN QUERY
    WITH done AS (
        UPDATE split.tasks t
        SET state = 'completed', result = v_results[width_bucket(t.id, v_ids)], finished_at = now()
        WHERE t.id = ANY(v_done)
        RETURNING t.id, t.attempts, t.current_run, t.worker_id, t.run_started_at
    ), ended AS (
        INSERT INTO split.runs (task_id, attempt, id, worker_id, state, started_at, finished_at)
        SELECT d.id, d.attempts, d.current_run, coalesce(d.worker_id, ''), 'completed', d.run_started_at, now()
        FROM done d
    )
    SELECT d.id FROM done d;
END
$$;
