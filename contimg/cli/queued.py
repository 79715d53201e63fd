"""How the manual pipeline commands run their step: as a registered task on the queue (the default),
or in this process with ``--direct``, for debugging.

Queued, a command checks its params with the task's own pydantic model before anything is queued (a
bad value is a usage error naming the field, exit 2), spawns the task with the task's own options,
prints its id, then follows it: each change of state goes to stderr, and a task that ends failed or
cancelled exits 1 with the task's error. ``--no-wait`` prints one JSON line per task on stdout (its
id, name and queue) and returns at once. A queued step's products are recorded by the task's
completion hook, as in the streaming pipeline; a direct run records nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ValidationError

from absurd.cli.toolkit import EXIT_FAILED, client, emit_json, err_console, fail, one_line
from absurd.client import Client
from absurd.errors import UsageError
from absurd.states import TERMINAL_TASK_STATES

Direct = Annotated[
    bool,
    typer.Option(
        "--direct",
        help="Run in this process instead of through the queue, for debugging: no worker, and no "
        "product is recorded in the database.",
    ),
]
Wait = Annotated[
    bool,
    typer.Option(
        "--wait/--no-wait",
        help="Follow the queued task until it ends; --no-wait prints its id as a JSON line and returns.",
    ),
]
TimeoutOpt = Annotated[
    float,
    typer.Option("--timeout-s", min=0.0, help="Stop waiting after this long (the task carries on); exit 1."),
]

# Polling the task row: quick at first (small tasks finish in seconds), then at most every 2 s.
_FIRST_POLL_S = 0.1
_MAX_POLL_S = 2.0
EXIT_INTERRUPTED = 130  # the shell's code for a command ended by SIGINT


@dataclass(frozen=True)
class Ended:
    """A queued task that has ended: its result when completed, its error message otherwise;
    ``index`` is the position of its params in those given."""

    index: int
    task_id: int
    state: str
    result: Any
    error: str | None

    @property
    def completed(self) -> bool:
        """Whether the task completed (its result is then set)."""
        return self.state == "completed"


def task_params(name: str, values: Mapping[str, Any]) -> BaseModel:
    """``values`` checked by the registered task's own params model; a UsageError naming each bad field."""
    from contimg.tasks.registry import registry

    model = registry.get(name).params_model
    assert model is not None, f"task {name} declares no params model"
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'params'}: {err['msg']}" for err in exc.errors()
        )
        raise UsageError(f"{name} params: {problems}; nothing was queued") from None


def run_task(name: str, values: Mapping[str, Any], dsn: str | None, wait: bool, timeout_s: float) -> Any:
    """Queue one task and, when ``wait``, follow it: its result once completed, None with --no-wait.
    A task that ends failed or cancelled exits 1 with its error."""
    ended = list(run_tasks(name, [values], dsn, wait, timeout_s))
    if not ended:
        return None
    (done,) = ended
    if not done.completed:
        raise fail(f"task {done.task_id} ({name}) ended {done.state}: {done.error}", EXIT_FAILED)
    return done.result


def run_and_print(
    name: str, values: Mapping[str, Any], dsn: str | None, wait: bool, timeout_s: float
) -> None:
    """``run_task``, then the task's result (its id and what it made) as JSON on stdout."""
    outcome = run_task(name, values, dsn, wait, timeout_s)
    if outcome is not None:
        emit_json(outcome)


def run_tasks(
    name: str,
    values: Sequence[Mapping[str, Any]],
    dsn: str | None,
    wait: bool,
    timeout_s: float,
    labels: Sequence[Mapping[str, Any]] | None = None,
) -> Iterator[Ended]:
    """Check every params first, queue one task per params, then (when ``wait``) yield each task as
    it ends, in the order they end. With --no-wait, print each task's id as a JSON line instead,
    with its entry of ``labels`` (say, the group it converts)."""
    from contimg.tasks.registry import registry

    checked = [task_params(name, v).model_dump(mode="json") for v in values]
    queue = registry.get(name).options.queue
    with client(dsn, registry=registry) as c:
        ids = [s.task_id for s in c.spawn_many(name, checked)]
        for task_id in ids:
            err_console.print(f"task {task_id} ({name}) queued on {queue}", markup=False)
        if not wait:
            for task_id, label in zip(ids, labels or [{}] * len(ids), strict=True):
                # One line per task, as `convert groups` prints one per group.
                typer.echo(json.dumps({**label, "task_id": task_id, "task": name, "queue": queue}))
            return
        try:
            yield from _follow(c, ids, queue, timeout_s)
        except KeyboardInterrupt:
            # Ctrl-C stops the waiting, not the work: say so, and how to cancel it.
            shown = ", ".join(map(str, ids))
            raise fail(
                f"stopped waiting; task(s) {shown} carry on: follow with `absurd task show ID`, stop with "
                "`absurd task cancel ID`",
                EXIT_INTERRUPTED,
            ) from None


def _follow(c: Client, ids: list[int], queue: str, timeout_s: float) -> Iterator[Ended]:
    """Poll the tasks until each ends, showing each change of state on stderr."""
    deadline = time.monotonic() + timeout_s
    seen: dict[int, tuple[str, int]] = {}
    open_ids = list(ids)
    delay = _FIRST_POLL_S
    while open_ids:
        for task_id in list(open_ids):
            row = c.get_task(task_id)
            state, failures = row["state"], row["failures"]
            if seen.get(task_id) != (state, failures):
                seen[task_id] = (state, failures)
                _show(task_id, row, queue)
            if state in TERMINAL_TASK_STATES:
                open_ids.remove(task_id)
                yield Ended(ids.index(task_id), task_id, state, row["result"], _error(row["last_error"]))
        if not open_ids:
            return
        if time.monotonic() >= deadline:
            states = ", ".join(f"{t} {seen[t][0]}" for t in open_ids)
            raise fail(
                f"gave up waiting after {timeout_s:g} s ({states}); the task(s) carry on: follow them "
                f"with `absurd task show ID`",
                EXIT_FAILED,
            )
        time.sleep(delay)
        delay = min(delay * 2, _MAX_POLL_S)


def _show(task_id: int, row: Mapping[str, Any], queue: str) -> None:
    state = row["state"]
    detail = ""
    if state == "pending" and row["failures"]:
        detail = f" (attempt {row['attempts']} failed: {_error(row['last_error'])}; retrying)"
    elif state == "pending":
        detail = f" (waiting for a worker on the {queue} queue; start one with `contimg worker`)"
    elif state == "running":
        detail = f" (attempt {row['attempts']} on {row['worker_id']})"
    elif state in ("waiting", "sleeping") and row["wait_event"]:
        detail = f" (until event {row['wait_event']})"
    err_console.print(f"task {task_id}: {state}{detail}", markup=False)


def _error(error: Any) -> str | None:
    """The message of a task's stored error (the worker keeps type, message and traceback)."""
    if error is None:
        return None
    if isinstance(error, Mapping):
        return one_line(error.get("message") or error.get("type") or error)
    return one_line(error)
