"""The engine's named SQL. Statements call the functions of migrations 0001_queue.sql,
0002_workflows.sql and 0012_run_logs.sql; no SQL is ever built from input, all values travel as parameters."""

from __future__ import annotations

SPAWN_MANY = """
SELECT task_id, created FROM absurd.spawn_many(
    %(queue)s, %(names)s, %(params)s::jsonb[], %(keys)s, %(priority)s, %(not_before)s,
    %(max_attempts)s, %(retry)s, %(timeout_s)s, %(headers)s, %(gate)s, %(gate_limit)s)
"""

CLAIM = "SELECT * FROM absurd.claim(%s, %s, %s, %s)"
COMPLETE_RUNS = "SELECT task_id FROM absurd.complete_runs(%s, %s, %s::jsonb[])"
# The same call for the completer's batches, which travel as three text values (two array literals and a
# JSON array of results) that the driver sends as they are, rather than encoding lists element by element.
COMPLETE_RUNS_PACKED = """
SELECT task_id FROM absurd.complete_runs(%s::bigint[], %s::bigint[],
    ARRAY(SELECT e.r FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS e(r, i) ORDER BY e.i))
"""
FAIL_RUN = "SELECT absurd.fail_run(%s, %s, %s, %s, %s)"
COMPLETED_BY_RUN = (
    "SELECT EXISTS (SELECT 1 FROM absurd.tasks WHERE id = %s AND current_run = %s AND state = 'completed')"
)
EXTEND_LEASES = "SELECT task_id, cancel_requested FROM absurd.extend_leases(%s, %s, %s)"
RELEASE_RUNS = "SELECT absurd.release_runs(%s, %s)"
FINISH_CANCELLED = "SELECT absurd.finish_cancelled(%s, %s)"
SET_CHECKPOINT = "SELECT absurd.set_checkpoint(%s, %s, %s, %s)"
SUSPEND_RUN = "SELECT absurd.suspend_run(%s, %s, %s, NULL)"
TIME_HAS_COME = "SELECT now() >= %s"
AWAIT_EVENT = "SELECT status, payload FROM absurd.await_event(%s, %s, %s, %s)"
EMIT_EVENT = "SELECT absurd.emit_event(%s, %s)"
CANCEL_TASK = "SELECT absurd.cancel_task(%s)"
REAP_EXPIRED = "SELECT absurd.reap_expired(%s)"
RETIRE_REPLACED = "SELECT kind, id FROM absurd.retire_replaced_daemons(%s)"
CLEANUP = "SELECT absurd.cleanup(make_interval(secs => %s), %s)"

CHECKPOINTS = "SELECT name, value FROM absurd.checkpoints WHERE task_id = %s"
RUN_STATUS = """
SELECT current_run = %s AND state = 'running' AND lease_expires_at > now(), cancel_requested_at IS NOT NULL
FROM absurd.tasks WHERE id = %s
"""

TASK = """
SELECT id, queue, name, params, headers, state, priority,
       CASE WHEN isfinite(available_at) THEN available_at END AS available_at, max_attempts, retry, timeout_s,
       idempotency_key, attempts, failures, lease_expiries, max_lease_expiries, current_run, worker_id,
       lease_expires_at, wait_event, cancel_requested_at, result, last_error, created_at, started_at,
       finished_at
FROM absurd.tasks WHERE id = %s
"""
TASK_STATE = "SELECT state, result, last_error FROM absurd.tasks WHERE id = %s"
SAVE_RUN_LOG = "SELECT absurd.save_run_log(%s, %s, %s::jsonb, %s)"
RUN_LOGS_OF_TASK = "SELECT run_id, lines, dropped, updated_at FROM absurd.run_logs WHERE task_id = %s"
RUNS_OF_TASK = """
SELECT task_id, attempt, id, worker_id, state, started_at, finished_at, failure_reason, error
FROM absurd.attempts WHERE task_id = %s ORDER BY attempt
"""
LIST_TASKS = """
SELECT id, queue, name, state, priority, attempts, failures, created_at, started_at, finished_at, last_error
FROM absurd.tasks
WHERE (%(queue)s::text IS NULL OR queue = %(queue)s)
  AND (%(state)s::text IS NULL OR state = %(state)s)
  AND (%(name)s::text IS NULL OR name = %(name)s)
ORDER BY id DESC LIMIT %(limit)s
"""

ENSURE_QUEUE = "SELECT absurd.ensure_queue(%s)"
SET_QUEUE_PAUSED = "UPDATE absurd.queues SET paused = %s WHERE name = %s"
QUEUE_STATS = """
SELECT q.name, q.paused,
       count(t.id) FILTER (WHERE t.state = 'pending' AND t.available_at <= now()) AS ready,
       count(t.id) FILTER (WHERE t.state = 'pending' AND t.available_at > now()) AS delayed,
       count(t.id) FILTER (WHERE t.state = 'running') AS running,
       count(t.id) FILTER (WHERE t.state = 'sleeping') AS sleeping,
       count(t.id) FILTER (WHERE t.state = 'waiting') AS blocked,
       count(t.id) FILTER (WHERE t.state = 'completed') AS completed,
       count(t.id) FILTER (WHERE t.state = 'failed') AS failed,
       count(t.id) FILTER (WHERE t.state = 'cancelled') AS cancelled,
       (SELECT count(*) FROM absurd.dlq d WHERE d.queue = q.name AND d.resolved_at IS NULL) AS dlq,
       extract(epoch FROM now() - min(t.created_at) FILTER (WHERE t.state = 'pending'))
           AS oldest_pending_s,
       count(t.id) FILTER (WHERE t.state = 'completed' AND t.finished_at > now() - interval '1 minute')
           AS completed_last_minute
FROM absurd.queues q LEFT JOIN absurd.tasks t ON t.queue = q.name
GROUP BY q.name, q.paused ORDER BY q.name
"""

REGISTER_WORKER = """
INSERT INTO absurd.workers (id, hostname, pid, queues, concurrency, task_names)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), stopped_at = NULL, task_names = excluded.task_names
"""
# A row retired as replaced (stopped_at = its last heartbeat, 0019_replaced_daemons.sql) is live again if the
# daemon beats after all; one that stopped itself stays stopped.
WORKER_HEARTBEAT = """
UPDATE absurd.workers
SET heartbeat_at = now(), stopped_at = CASE WHEN stopped_at = heartbeat_at THEN NULL ELSE stopped_at END
WHERE id = %s
"""
WORKER_STOPPED = "UPDATE absurd.workers SET stopped_at = now() WHERE id = %s"
LIST_WORKERS = """
SELECT id, hostname, pid, queues, concurrency, started_at, heartbeat_at, stopped_at
FROM absurd.workers ORDER BY started_at DESC
"""
# Whether any worker ever registered, and the task names served by those seen in the last %s days.
SERVED_TASK_NAMES = """
SELECT EXISTS (SELECT 1 FROM absurd.workers),
       ARRAY(SELECT DISTINCT unnest(task_names) FROM absurd.workers
             WHERE heartbeat_at > now() - %s * interval '1 day')
"""

# Workflows -------------------------------------------------------------------------------------

SUBMIT_WORKFLOW = "SELECT absurd.submit_workflow(%s, %s, %s)"
SPAWN_CHILDREN = "SELECT task_id FROM absurd.spawn_children(%s, %s, %s, %s, %s, %s::jsonb[], %s)"
CANCEL_WORKFLOW = "SELECT absurd.cancel_workflow(%s)"
WORKFLOW_STATUS = "SELECT * FROM absurd.workflow_status WHERE id = %s"
LIST_WORKFLOWS = """
SELECT * FROM absurd.workflow_status
WHERE (%(state)s::text IS NULL OR state = %(state)s)
ORDER BY id DESC LIMIT %(limit)s
"""
WORKFLOW_TASKS = """
SELECT t.id, t.step_name, t.name, t.state, t.attempts, t.failures, t.queue, t.started_at, t.finished_at,
       extract(epoch FROM t.finished_at - t.started_at) AS duration_s, t.last_error,
       coalesce(array_agg(p.step_name ORDER BY p.step_name) FILTER (WHERE p.id IS NOT NULL), '{}')
           AS depends_on,
       EXISTS (SELECT 1 FROM absurd.dlq d WHERE d.task_id = t.id AND d.resolved_at IS NULL) AS in_dlq
FROM absurd.tasks t
LEFT JOIN absurd.task_deps dep ON dep.task_id = t.id
LEFT JOIN absurd.tasks p ON p.id = dep.depends_on
WHERE t.workflow_id = %s
GROUP BY t.id ORDER BY t.id
"""

# Dead-letter queue -------------------------------------------------------------------------------

LIST_DLQ = """
SELECT d.id, d.task_id, d.queue, d.task_name, d.reason, d.entered_at, d.error->>'type' AS error_type,
       d.error->>'message' AS error_message, t.attempts, t.failures, t.lease_expiries, t.workflow_id,
       t.step_name
FROM absurd.dlq d JOIN absurd.tasks t ON t.id = d.task_id
WHERE d.resolved_at IS NULL
  AND (%(queue)s::text IS NULL OR d.queue = %(queue)s)
  AND (%(name)s::text IS NULL OR d.task_name = %(name)s)
  AND (%(since)s::timestamptz IS NULL OR d.entered_at >= %(since)s)
  AND (%(text)s::text IS NULL OR d.error::text ILIKE '%%' || %(text)s || '%%')
ORDER BY d.id
LIMIT %(limit)s
"""
DLQ_ENTRY = """
SELECT d.*, t.failures, t.lease_expiries
FROM absurd.dlq d LEFT JOIN absurd.tasks t ON t.id = d.task_id WHERE d.id = %s
"""
DLQ_ACTIONS = (
    "SELECT action, actor, reason, details, at FROM absurd.dlq_actions WHERE dlq_id = %s ORDER BY id"
)
DLQ_RETRY = "SELECT absurd.dlq_retry(%s, %s, %s, %s)"
DLQ_SKIP = "SELECT absurd.dlq_skip(%s, %s, %s)"
DLQ_REQUEUE = "SELECT absurd.dlq_requeue(%s, %s, %s)"
OPEN_DLQ_OF_TASK = "SELECT id FROM absurd.dlq WHERE task_id = %s AND resolved_at IS NULL"

# Gates: concurrency limits and circuit breakers ------------------------------------------------------

UPSERT_GATE = """
INSERT INTO absurd.gates (key, max_running, breaker_enabled, failure_threshold, window_s, failure_rate,
                          min_calls, base_cooldown_s, max_cooldown_s, half_open_trials)
VALUES (%(key)s, %(max_running)s, %(breaker_enabled)s, %(failure_threshold)s, %(window_s)s, %(failure_rate)s,
        %(min_calls)s, %(base_cooldown_s)s, %(max_cooldown_s)s, %(half_open_trials)s)
ON CONFLICT (key) DO UPDATE SET
    max_running = excluded.max_running, breaker_enabled = excluded.breaker_enabled,
    failure_threshold = excluded.failure_threshold, window_s = excluded.window_s,
    failure_rate = excluded.failure_rate, min_calls = excluded.min_calls,
    base_cooldown_s = excluded.base_cooldown_s, max_cooldown_s = excluded.max_cooldown_s,
    half_open_trials = excluded.half_open_trials
"""
LIST_GATES = """
SELECT g.*, (SELECT count(*) FROM absurd.tasks t WHERE t.gate_key = g.key AND t.state = 'running') AS running,
       (SELECT count(*) FROM absurd.tasks t WHERE t.gate_key = g.key AND t.state IN ('pending', 'sleeping'))
           AS waiting
FROM absurd.gates g ORDER BY g.key
"""
GATE = "SELECT * FROM absurd.gates WHERE key = %s"
GATE_TRANSITIONS = """
SELECT from_state, to_state, reason, at FROM absurd.gate_transitions WHERE key = %s ORDER BY id DESC LIMIT %s
"""
SET_BREAKER_STATE = "SELECT absurd.set_breaker_state(%s, %s, %s, %s)"
# A new limit holds from the next claim: gated tasks are claimed under the gate's row lock.
SET_GATE_LIMIT = """
UPDATE absurd.gates g SET max_running = %s FROM absurd.gates old
WHERE g.key = %s AND old.key = g.key RETURNING old.max_running
"""
