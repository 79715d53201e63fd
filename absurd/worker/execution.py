"""Running one claimed task and turning whatever happened into an Outcome."""

from __future__ import annotations

import contextlib
import ctypes
import json
import signal
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import psycopg
import pydantic
import structlog

from absurd.context import ConnectionSource, RunSignals, TaskContext
from absurd.database import connect
from absurd.errors import (
    LeaseLostError,
    PermanentError,
    Suspended,
    TaskCancelledError,
    TaskTimeoutError,
)
from absurd.logging import run_context
from absurd.registry import TaskDefinition
from absurd.values import to_json
from absurd.worker import run_log

# json.dumps(value, allow_nan=False) builds a new encoder at every call; one made once does the same.
_encode_strict = json.JSONEncoder(allow_nan=False).encode
OutcomeKind = Literal["completed", "failed", "suspended", "cancelled", "lease_lost"]
log = structlog.get_logger("absurd.worker")


class Claimed(NamedTuple):
    """A run handed to this worker by ``absurd.claim`` (a named tuple: built from each claimed row)."""

    task_id: int
    run_id: int
    attempt: int
    name: str
    params: Any
    headers: dict[str, Any]
    timeout_s: float | None
    failures: int
    max_attempts: int


@dataclass
class Outcome:
    """How a run ended, as the completer will record it."""

    kind: OutcomeKind
    result: Any = None
    # The result as JSON text, when execute() already encoded it to check it.
    result_json: str | None = None
    error: dict[str, Any] = field(default_factory=dict)
    permanent: bool = False
    reason: str = "error"


def describe(exc: BaseException, tb: str | None = None) -> dict[str, Any]:
    """An exception as the JSON kept in the attempt history: type, message, traceback."""
    cls = type(exc)
    return {
        "type": f"{cls.__module__}.{cls.__qualname__}",
        "message": str(exc),
        "traceback": tb if tb is not None else "".join(traceback.format_exception(exc)),
    }


def execute(definition: TaskDefinition, ctx: TaskContext, raw_params: Any) -> Outcome:
    """Run the task function and classify its ending. Never raises."""
    try:
        params = definition.parse_params(raw_params)
    except pydantic.ValidationError as exc:
        return Outcome("failed", error=describe(exc), permanent=True)
    try:
        result = to_json(definition.fn(ctx, params))
        try:
            text = "null" if result is None else _encode_strict(result)
            if "\\u0000" in text:
                raise ValueError("it contains a NUL character (U+0000), which Postgres jsonb cannot store")
        except (TypeError, ValueError) as exc:
            # Found here, naming the task, rather than as a driver error in the completer.
            error = TypeError(f"task {definition.name!r} returned a result that is not JSON: {exc}")
            return Outcome("failed", error=describe(error), permanent=True)
        return Outcome("completed", result=result, result_json=text)
    except Suspended:
        return Outcome("suspended")
    except TaskCancelledError:
        return Outcome("cancelled")
    except LeaseLostError as exc:
        log.warning("lease lost; result discarded", error=str(exc))
        return Outcome("lease_lost")
    except TaskTimeoutError as exc:
        return Outcome("failed", error=describe(exc), reason="timeout")
    except Exception as exc:
        permanent = isinstance(exc, (PermanentError, pydantic.ValidationError, *definition.permanent_errors))
        return Outcome("failed", error=describe(exc), permanent=permanent)


# Child processes -------------------------------------------------------------------------------


class _ChildDatabase:
    """One connection per child process, reopened if the server dropped it."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._conn: psycopg.Connection | None = None

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = connect(self.dsn)
        yield self._conn


_child_db: _ChildDatabase | None = None


def child_initializer(log_level: str) -> None:
    """Set up a worker child: die with the parent, leave signals to the parent, configure logs."""
    from absurd.logging import configure_logging

    with contextlib.suppress(OSError, AttributeError):
        # PR_SET_PDEATHSIG: a SIGKILLed worker must not leave orphans running its tasks.
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    configure_logging(log_level)


def run_claimed(
    definition: TaskDefinition,
    claimed: Claimed,
    worker_id: str,
    db: ConnectionSource,
    signals: RunSignals | None = None,
) -> Outcome:
    """Run one claimed task with its context, its identity bound into every log line it writes, and the
    lines it logs kept as its log tail."""
    ctx = TaskContext(
        task_id=claimed.task_id,
        run_id=claimed.run_id,
        attempt=claimed.attempt,
        name=claimed.name,
        headers=claimed.headers,
        worker_id=worker_id,
        db=db,
        signals=signals,
    )
    # Reset by token: restores whatever the thread had, without copying its whole context.
    token = run_context.set(
        {"task_id": claimed.task_id, "run_id": claimed.run_id, "worker_id": worker_id, "task": claimed.name}
    )
    try:
        with run_log.captured(claimed.task_id, claimed.run_id, db, claimed.timeout_s):
            return execute(definition, ctx, claimed.params)
    finally:
        run_context.reset(token)


def run_in_child(definition: TaskDefinition, claimed: Claimed, dsn: str, worker_id: str) -> Outcome:
    """Entry point in a worker child process: run one task with a database-backed context."""
    global _child_db
    if _child_db is None or _child_db.dsn != dsn:
        _child_db = _ChildDatabase(dsn)
    return run_claimed(definition, claimed, worker_id, _child_db)
