"""The engine's named SQL. Statements call the functions of migrations/0001_queue.sql; no SQL is
ever built from input, all values travel as parameters."""

from __future__ import annotations

SPAWN_MANY = """
SELECT task_id, created FROM absurd.spawn_many(
    %(queue)s, %(names)s, %(params)s::jsonb[], %(keys)s, %(priority)s, %(not_before)s,
    %(max_attempts)s, %(retry)s, %(timeout_s)s, %(headers)s)
"""

CLAIM = "SELECT * FROM absurd.claim(%s, %s, %s, %s)"
COMPLETE_RUNS = "SELECT task_id FROM absurd.complete_runs(%s, %s, %s::jsonb[])"
FAIL_RUN = "SELECT absurd.fail_run(%s, %s, %s, %s, %s)"
EXTEND_LEASES = "SELECT task_id, cancel_requested FROM absurd.extend_leases(%s, %s, %s)"
RELEASE_RUNS = "SELECT absurd.release_runs(%s, %s)"
FINISH_CANCELLED = "SELECT absurd.finish_cancelled(%s, %s)"
SET_CHECKPOINT = "SELECT absurd.set_checkpoint(%s, %s, %s, %s)"
SUSPEND_RUN = "SELECT absurd.suspend_run(%s, %s, %s, NULL)"
AWAIT_EVENT = "SELECT status, payload FROM absurd.await_event(%s, %s, %s, %s)"
EMIT_EVENT = "SELECT absurd.emit_event(%s, %s)"
CANCEL_TASK = "SELECT absurd.cancel_task(%s)"
REAP_EXPIRED = "SELECT absurd.reap_expired(%s)"
CLEANUP = "SELECT absurd.cleanup(make_interval(secs => %s), %s)"

CHECKPOINTS = "SELECT name, value FROM absurd.checkpoints WHERE task_id = %s"
RUN_STATUS = """
SELECT current_run = %s AND state = 'running' AND lease_expires_at > now(), cancel_requested_at IS NOT NULL
FROM absurd.tasks WHERE id = %s
"""

TASK = """
SELECT id, queue, name, params, headers, state, priority,
       CASE WHEN isfinite(available_at) THEN available_at END AS available_at, max_attempts, retry, timeout_s,
       idempotency_key, attempts, failures, current_run, worker_id, lease_expires_at, wait_event,
       cancel_requested_at, result, last_error, created_at, started_at, finished_at
FROM absurd.tasks WHERE id = %s
"""
TASK_STATE = "SELECT state, result, last_error FROM absurd.tasks WHERE id = %s"
RUNS_OF_TASK = """
SELECT task_id, attempt, id, worker_id, state, started_at, finished_at, failure_reason, error
FROM absurd.runs WHERE task_id = %s ORDER BY attempt
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
       count(t.id) FILTER (WHERE t.state = 'completed') AS completed,
       count(t.id) FILTER (WHERE t.state = 'failed') AS failed,
       count(t.id) FILTER (WHERE t.state = 'cancelled') AS cancelled,
       extract(epoch FROM now() - min(t.created_at) FILTER (WHERE t.state = 'pending'))
           AS oldest_pending_s,
       count(t.id) FILTER (WHERE t.state = 'completed' AND t.finished_at > now() - interval '1 minute')
           AS completed_last_minute
FROM absurd.queues q LEFT JOIN absurd.tasks t ON t.queue = q.name
GROUP BY q.name, q.paused ORDER BY q.name
"""

REGISTER_WORKER = """
INSERT INTO absurd.workers (id, hostname, pid, queues, concurrency) VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), stopped_at = NULL
"""
WORKER_HEARTBEAT = "UPDATE absurd.workers SET heartbeat_at = now() WHERE id = %s"
WORKER_STOPPED = "UPDATE absurd.workers SET stopped_at = now() WHERE id = %s"
LIST_WORKERS = """
SELECT id, hostname, pid, queues, concurrency, started_at, heartbeat_at, stopped_at
FROM absurd.workers ORDER BY started_at DESC
"""
