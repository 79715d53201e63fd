"""What a running task sees: its identity, durable steps, sleeps, event waits and cancellation."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import psycopg
import structlog
from psycopg.types.json import Jsonb

from absurd import queries
from absurd.errors import (
    EventTimeoutError,
    LeaseLostError,
    Suspended,
    TaskCancelledError,
    TaskTimeoutError,
)
from absurd.values import to_json

# One lazy logger for every context: binding returns a new logger, so sharing it is safe.
_TASK_LOG = structlog.get_logger("absurd.task")


class ConnectionSource(Protocol):
    """Anything that lends a connection for a moment (a psycopg pool, or a one-connection holder)."""

    def connection(self) -> AbstractContextManager[psycopg.Connection]: ...


class RunSignals:
    """Flags the worker raises for a run it holds in-process: lease lost, cancel asked, timed out.

    Plain attributes, not threading.Events: one supervisor thread writes them and the task reads
    them, and an object per task must stay cheap.
    """

    __slots__ = ("cancel_requested", "lease_lost", "timed_out")

    def __init__(self) -> None:
        self.lease_lost = False
        self.cancel_requested = False
        self.timed_out = False


class TaskContext:
    """Passed as the first argument to every task function."""

    def __init__(
        self,
        *,
        task_id: int,
        run_id: int,
        attempt: int,
        name: str,
        headers: dict[str, Any],
        worker_id: str,
        db: ConnectionSource,
        signals: RunSignals | None = None,
    ) -> None:
        self.task_id = task_id
        self.run_id = run_id
        self.attempt = attempt
        self.name = name
        self.headers = headers
        self.worker_id = worker_id
        self._db = db
        # In a child process the worker cannot reach our memory, so we ask the database instead.
        self._signals = signals
        self._checkpoints: dict[str, Any] | None = None
        self.log = _TASK_LOG

    def connection(self) -> AbstractContextManager[psycopg.Connection]:
        """Borrow an autocommit connection to the task's database (for reading products, say)."""
        return self._db.connection()

    # Cancellation and lease -------------------------------------------------------------------

    def heartbeat(self) -> None:
        """Check that the run is still ours and not cancelled; call it inside long loops.

        Raises TaskCancelledError, LeaseLostError or TaskTimeoutError when the run must stop.
        """
        if self._signals is not None:
            if self._signals.lease_lost:
                raise LeaseLostError(f"run {self.run_id} of task {self.task_id} lost its lease")
            if self._signals.timed_out:
                raise TaskTimeoutError(f"task {self.task_id} exceeded its timeout")
            if self._signals.cancel_requested:
                raise TaskCancelledError(f"task {self.task_id} was cancelled")
            return
        with self._db.connection() as conn:
            row = conn.execute(queries.RUN_STATUS, (self.run_id, self.task_id)).fetchone()
        if row is None or not row[0]:
            raise LeaseLostError(f"run {self.run_id} of task {self.task_id} lost its lease")
        if row[1]:
            raise TaskCancelledError(f"task {self.task_id} was cancelled")

    # Durable steps ----------------------------------------------------------------------------

    def _load_checkpoints(self) -> dict[str, Any]:
        if self._checkpoints is None:
            with self._db.connection() as conn:
                rows = conn.execute(queries.CHECKPOINTS, (self.task_id,)).fetchall()
            self._checkpoints = {name: value for name, value in rows}
        return self._checkpoints

    def _save(self, name: str, value: Any) -> None:
        with self._db.connection() as conn:
            row = conn.execute(
                queries.SET_CHECKPOINT, (self.task_id, self.run_id, name, Jsonb(value))
            ).fetchone()
        if not row or not row[0]:
            raise LeaseLostError(f"run {self.run_id} of task {self.task_id} lost its lease at step {name!r}")
        self._load_checkpoints()[name] = value

    def step(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` once per task: its JSON result is recorded, and a retried attempt gets the
        recorded result back without running ``fn`` again."""
        if name.startswith("$"):
            raise ValueError("step names starting with '$' are reserved")
        self.heartbeat()
        done = self._load_checkpoints()
        if name in done:
            return done[name]
        value = to_json(fn(*args, **kwargs))
        json.dumps(value)  # fail here, naming the step, rather than inside the database driver
        self._save(name, value)
        return value

    # Fan-out ----------------------------------------------------------------------------------

    def spawn_children(
        self,
        key: str,
        name: str,
        params: Sequence[Any],
        queue: str = "default",
        steps: Sequence[str] | None = None,
    ) -> list[int]:
        """Add one ``name`` task per params entry to this task's workflow (fan-out).

        Every task waiting on this one also waits on all the children (fan-in). ``key`` names the
        fan-out: a later run of this task gets the same children back instead of spawning again.
        """
        steps = list(steps) if steps is not None else [f"{key}[{i}]" for i in range(len(params))]
        if len(steps) != len(params):
            raise ValueError("steps and params must have the same length")
        self.heartbeat()
        try:
            with self._db.connection() as conn:
                rows = conn.execute(
                    queries.SPAWN_CHILDREN,
                    (
                        self.task_id,
                        self.run_id,
                        key,
                        [name] * len(params),
                        steps,
                        [json.dumps(to_json(p)) for p in params],
                        queue,
                    ),
                ).fetchall()
        except psycopg.errors.NoDataFound as exc:
            raise LeaseLostError(str(exc.diag.message_primary)) from None
        return [int(r[0]) for r in rows]

    # Suspension -------------------------------------------------------------------------------

    def sleep_until(self, name: str, when: datetime) -> None:
        """Suspend the task until ``when`` without holding a worker; returns once it has passed.

        ``name`` identifies the sleep, so a re-run after waking does not sleep again.
        """
        key = f"$sleep:{name}"
        done = self._load_checkpoints()
        if key in done:
            wake = datetime.fromisoformat(done[key]["until"])
        else:
            wake = when if when.tzinfo else when.replace(tzinfo=UTC)
            self._save(key, {"until": wake.isoformat()})
        # The database's clock, not the worker's: it makes the task claimable again, so a worker clock
        # running behind would otherwise suspend, be claimed and suspend again until it caught up.
        with self._db.connection() as conn:
            passed = conn.execute(queries.TIME_HAS_COME, (wake,)).fetchone()
            if passed and passed[0]:
                return
            row = conn.execute(queries.SUSPEND_RUN, (self.task_id, self.run_id, wake)).fetchone()
        if not row or not row[0]:
            raise LeaseLostError(f"run {self.run_id} of task {self.task_id} lost its lease before sleeping")
        raise Suspended(f"sleeping until {wake.isoformat()}")

    def sleep_for(self, name: str, seconds: float) -> None:
        """Suspend the task for ``seconds`` (measured from the first time this sleep is reached)."""
        self.sleep_until(name, datetime.now(UTC) + timedelta(seconds=seconds))

    def await_event(self, name: str, timeout_s: float | None = None) -> Any:
        """Return the payload of event ``name``, suspending the task until it is emitted.

        An event emitted before the wait began is returned at once. Raises EventTimeoutError
        once ``timeout_s`` (counted from the first wait) has passed without it.
        """
        key = f"$event:{name}"
        done = self._load_checkpoints()
        if key in done:
            return done[key]
        self.heartbeat()
        with self._db.connection() as conn:
            row = conn.execute(queries.AWAIT_EVENT, (self.task_id, self.run_id, name, timeout_s)).fetchone()
        status, payload = row if row else ("lease_lost", None)
        if status == "received":
            self._save(key, payload)
            return payload
        if status == "timeout":
            raise EventTimeoutError(f"event {name!r} was not emitted within {timeout_s} s")
        if status == "suspended":
            raise Suspended(f"awaiting event {name!r}")
        raise LeaseLostError(f"run {self.run_id} of task {self.task_id} lost its lease awaiting {name!r}")
