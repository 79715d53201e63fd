"""The producer and admin side of the queue: spawn, inspect, cancel, await, emit."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from absurd import queries
from absurd.database import connect, resolve_dsn
from absurd.errors import NotFoundError, TaskFailedError
from absurd.maintenance.pruner import delete_finished
from absurd.options import GateConfig, SpawnOptions
from absurd.registry import Registry
from absurd.states import TERMINAL_TASK_STATES
from absurd.values import to_json
from absurd.workflow_spec import SpecError, WorkflowSpec, check_spec, resolve_options, to_submission


@dataclass(frozen=True)
class Spawned:
    """The outcome of one spawn: the task id, and whether this call created it."""

    task_id: int
    created: bool


class Client:
    """A connection to the queue. Cheap to create; use as a context manager to close it."""

    def __init__(
        self, dsn: str | None = None, conn: psycopg.Connection | None = None, registry: Registry | None = None
    ) -> None:
        self.dsn = resolve_dsn(dsn) if conn is None else dsn or ""
        self._conn = conn
        # With a registry, each task's declared options are the defaults its spawns start from.
        self.registry = registry

    @property
    def conn(self) -> psycopg.Connection:
        """The client's autocommit connection, opened on first use."""
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.dsn)
        return self._conn

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Spawning -----------------------------------------------------------------------------------

    def spawn(
        self, name: str, params: Any = None, options: SpawnOptions | None = None, **overrides: Any
    ) -> Spawned:
        """Queue one task. ``overrides`` are SpawnOptions fields (queue, priority, timeout_s, ...)."""
        opts = (options or self._defaults(name)).merged(**overrides)
        return self.spawn_many(name, [params], options=opts, keys=[opts.idempotency_key])[0]

    def spawn_many(
        self,
        name: str | Sequence[str],
        params: Sequence[Any],
        options: SpawnOptions | None = None,
        keys: Sequence[str | None] | None = None,
        **overrides: Any,
    ) -> list[Spawned]:
        """Queue many tasks sharing one set of options in a single round trip.

        ``name`` is one task name for all, or one per params entry; ``keys`` are optional
        per-task idempotency keys.
        """
        opts = (options or self._defaults(name if isinstance(name, str) else "")).merged(**overrides)
        n = len(params)
        names = [name] * n if isinstance(name, str) else list(name)
        if len(names) != n or (keys is not None and len(keys) != n):
            raise ValueError("names, params and keys must have the same length")
        rows = self.conn.execute(
            queries.SPAWN_MANY,
            {
                "queue": opts.queue,
                "names": names,
                "params": [json.dumps(to_json(p) if p is not None else {}) for p in params],
                "keys": list(keys) if keys is not None else [None] * n,
                "priority": opts.priority,
                "not_before": opts.not_before,
                "max_attempts": opts.max_attempts,
                "retry": Jsonb(opts.retry.model_dump()),
                "timeout_s": opts.timeout_s,
                "headers": Jsonb(opts.headers),
                "gate": opts.gate,
                "gate_limit": opts.gate_limit,
            },
        ).fetchall()
        return [Spawned(int(task_id), bool(created)) for task_id, created in rows]

    def _defaults(self, name: str) -> SpawnOptions:
        if self.registry is not None and name in self.registry:
            return self.registry.get(name).options
        return SpawnOptions()

    # Reading ------------------------------------------------------------------------------------

    def get_task(self, task_id: int) -> dict[str, Any]:
        """The task's full row; raises NotFoundError for an unknown id."""
        with self.conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(queries.TASK, (task_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no task with id {task_id}")
        return row

    def runs(self, task_id: int, logs: bool = False) -> list[dict[str, Any]]:
        """The task's runs (its attempt history), oldest first; with ``logs``, each with its log tail under
        ``log`` (``lines``, oldest first, each with ``at``, ``level`` and ``text``; ``dropped``, the earlier
        lines left out; ``updated_at``), or None when the run logged nothing."""
        with self.conn.cursor(row_factory=dict_row) as cur:
            runs = cur.execute(queries.RUNS_OF_TASK, (task_id,)).fetchall()
            if logs:
                tails = {row.pop("run_id"): row for row in cur.execute(queries.RUN_LOGS_OF_TASK, (task_id,))}
                for run in runs:
                    run["log"] = tails.get(run["id"])
        return runs

    def list_tasks(
        self, queue: str | None = None, state: str | None = None, name: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Recent tasks, newest first, optionally filtered."""
        with self.conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(
                queries.LIST_TASKS, {"queue": queue, "state": state, "name": name, "limit": limit}
            ).fetchall()

    def queue_stats(self) -> list[dict[str, Any]]:
        """Per-queue counts by state, the oldest pending task's age and last-minute throughput."""
        with self.conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(queries.QUEUE_STATS).fetchall()

    def wait_result(self, task_id: int, timeout_s: float = 60.0) -> Any:
        """Block until the task completes and return its result.

        Raises TaskFailedError if it ends failed or cancelled, TimeoutError if it is still going
        after ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        delay = 0.01
        while True:
            row = self.conn.execute(queries.TASK_STATE, (task_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no task with id {task_id}")
            state, result, error = row
            if state == "completed":
                return result
            if state in TERMINAL_TASK_STATES:
                raise TaskFailedError(task_id, state, error)
            if time.monotonic() >= deadline:
                raise TimeoutError(f"task {task_id} still {state} after {timeout_s:.0f} s")
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    # Control ------------------------------------------------------------------------------------

    def cancel(self, task_id: int) -> str:
        """Cancel a task; returns its state after the request ('running' means cancelling)."""
        row = self.conn.execute(queries.CANCEL_TASK, (task_id,)).fetchone()
        if row is None or row[0] is None:
            raise NotFoundError(f"no task with id {task_id}")
        return str(row[0])

    def emit_event(self, name: str, payload: Any = None) -> int:
        """Emit an event; returns how many waiting tasks it woke."""
        return emit_event(self.conn, name, payload)

    def create_queue(self, name: str) -> None:
        """Create a queue if it does not exist (spawning also creates queues on demand)."""
        SpawnOptions(queue=name)  # validates the name
        self.conn.execute(queries.ENSURE_QUEUE, (name,))

    def set_paused(self, queue: str, paused: bool) -> None:
        """Pause or resume claiming from a queue."""
        cur = self.conn.execute(queries.SET_QUEUE_PAUSED, (paused, queue))
        if cur.rowcount == 0:
            raise NotFoundError(f"no queue named {queue!r}")

    def cleanup(self, older_than_s: float, batch: int = 1000, max_batches: int | None = None) -> int:
        """Delete finished tasks older than ``older_than_s`` in bounded batches; returns the count."""
        return delete_finished(self.conn, older_than_s, batch, max_batches)

    # Workflows ----------------------------------------------------------------------------------

    def submit_workflow(
        self, spec: WorkflowSpec, params: dict[str, Any] | None = None, event: dict[str, Any] | None = None
    ) -> int:
        """Validate ``spec`` (against the client's registry when it has one) and submit it atomically.

        Raises SpecError listing every problem; nothing is written then.
        """
        problems = check_spec(spec, self.registry)
        if problems:
            raise SpecError(problems, spec.name)
        if self.registry is not None:
            # Steps that leave an option out take their task type's, as they do from the CLI.
            spec = resolve_options(spec, self.registry)
        rows = to_submission(spec, params or {}, event)
        merged = {**spec.params, **(params or {})}
        row = self.conn.execute(queries.SUBMIT_WORKFLOW, (spec.name, Jsonb(merged), Jsonb(rows))).fetchone()
        assert row is not None
        return int(row[0])

    def workflow(self, workflow_id: int) -> dict[str, Any]:
        """A workflow's derived status and its tasks with dependencies, states and durations."""
        with self.conn.cursor(row_factory=dict_row) as cur:
            status = cur.execute(queries.WORKFLOW_STATUS, (workflow_id,)).fetchone()
            if status is None:
                raise NotFoundError(f"no workflow with id {workflow_id}")
            status["task_rows"] = cur.execute(queries.WORKFLOW_TASKS, (workflow_id,)).fetchall()
        return status

    def list_workflows(self, state: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Recent workflows with their derived state, newest first."""
        with self.conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(queries.LIST_WORKFLOWS, {"state": state, "limit": limit}).fetchall()

    def cancel_workflow(self, workflow_id: int) -> int:
        """Cancel every unfinished task of a workflow; returns how many were cancelled or asked to stop."""
        row = self.conn.execute(queries.CANCEL_WORKFLOW, (workflow_id,)).fetchone()
        if row is None or row[0] is None:
            raise NotFoundError(f"no workflow with id {workflow_id}")
        return int(row[0])

    # Dead-letter queue ---------------------------------------------------------------------------

    def dlq(
        self,
        queue: str | None = None,
        name: str | None = None,
        since: datetime | None = None,
        text: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Open DLQ entries, oldest first, filtered by queue, task name, entry time and error text."""
        with self.conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(
                queries.LIST_DLQ, {"queue": queue, "name": name, "since": since, "text": text, "limit": limit}
            ).fetchall()

    def dlq_entry(self, dlq_id: int) -> dict[str, Any]:
        """One DLQ entry with its task's attempt history and the actions taken on it."""
        with self.conn.cursor(row_factory=dict_row) as cur:
            entry = cur.execute(queries.DLQ_ENTRY, (dlq_id,)).fetchone()
            if entry is None:
                raise NotFoundError(f"no DLQ entry with id {dlq_id}")
            entry["actions"] = cur.execute(queries.DLQ_ACTIONS, (dlq_id,)).fetchall()
        entry["runs"] = self.runs(entry["task_id"])
        return entry

    def _dlq_action(self, sql: str, args: tuple[Any, ...]) -> int:
        try:
            row = self.conn.execute(sql, args).fetchone()
        except psycopg.errors.NoDataFound as exc:
            raise NotFoundError(str(exc.diag.message_primary)) from None
        assert row is not None
        return int(row[0])

    def dlq_retry(self, dlq_id: int, actor: str, reason: str | None = None, params: Any = None) -> int:
        """Give the dead task new attempts (with edited params if given); its workflow resumes."""
        return self._dlq_action(
            queries.DLQ_RETRY, (dlq_id, actor, reason, None if params is None else Jsonb(params))
        )

    def dlq_skip(self, dlq_id: int, actor: str, reason: str) -> int:
        """Mark the task permanently failed; dependents are cancelled, or run where the edge is optional."""
        return self._dlq_action(queries.DLQ_SKIP, (dlq_id, actor, reason))

    def dlq_requeue(self, dlq_id: int, actor: str, reason: str | None = None) -> int:
        """Spawn a copy of the task; its workflow continues from the copy. Returns the new task id."""
        return self._dlq_action(queries.DLQ_REQUEUE, (dlq_id, actor, reason))

    def retry_task(self, task_id: int, actor: str, reason: str | None = None) -> int:
        """Retry a failed task through its DLQ entry."""
        row = self.conn.execute(queries.OPEN_DLQ_OF_TASK, (task_id,)).fetchone()
        if row is None:
            self.get_task(task_id)  # an unknown id raises NotFoundError
            raise NotFoundError(f"task {task_id} is not in the dead-letter queue")
        return self.dlq_retry(int(row[0]), actor, reason)

    # Gates: concurrency limits and circuit breakers ------------------------------------------------

    def configure_gate(self, config: GateConfig) -> None:
        """Create or update a gate. Tasks spawned after this with the gate's key (or name) go through it."""
        self.conn.execute(queries.UPSERT_GATE, config.model_dump())

    def gates(self) -> list[dict[str, Any]]:
        """Every gate with its breaker state and running/waiting counts."""
        with self.conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(queries.LIST_GATES).fetchall()

    def gate(self, key: str, transitions: int = 20) -> dict[str, Any]:
        """One gate with its recent breaker transitions."""
        with self.conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(queries.GATE, (key,)).fetchone()
            if row is None:
                raise NotFoundError(f"no gate (breaker or limit) with key {key!r}")
            row["transitions"] = cur.execute(queries.GATE_TRANSITIONS, (key, transitions)).fetchall()
        return row

    def set_breaker(self, key: str, state: str, reason: str) -> None:
        """Force a breaker open ('trip') or closed ('reset')."""
        gate = self.gate(key, transitions=0)
        cooldown = gate["base_cooldown_s"] if state == "open" else None
        self.conn.execute(queries.SET_BREAKER_STATE, (key, state, reason, cooldown))

    def set_gate_limit(self, key: str, max_running: int | None) -> int | None:
        """Set a gate's concurrency limit (None: no limit); returns the previous one. NotFoundError for an
        unknown gate."""
        row = self.conn.execute(queries.SET_GATE_LIMIT, (max_running, key)).fetchone()
        if row is None:
            raise NotFoundError(f"no gate (breaker or limit) with key {key!r}")
        return None if row[0] is None else int(row[0])

    def workers(self) -> list[dict[str, Any]]:
        """The worker registry, newest first."""
        with self.conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(queries.LIST_WORKERS).fetchall()

    def served_task_names(self, within_days: float = 7.0) -> set[str] | None:
        """The task names served by the workers seen (registered or heartbeating) in the last ``within_days``
        days; None when no worker has ever registered, so which names are served is unknown."""
        row = self.conn.execute(queries.SERVED_TASK_NAMES, (within_days,)).fetchone()
        if row is None or not row[0]:
            return None
        return set(row[1])


def emit_event(conn: psycopg.Connection, name: str, payload: Any = None) -> int:
    """Emit an event on ``conn``, inside whatever transaction it has open (a completion hook's, say),
    so the event is seen only if that transaction commits. Returns how many waiting tasks it woke."""
    row = conn.execute(queries.EMIT_EVENT, (name, Jsonb(to_json(payload)))).fetchone()
    return int(row[0]) if row else 0
