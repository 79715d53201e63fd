"""Tasks used by the tests. Effects are written to tables so tests count what really happened."""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import Any

import psycopg

from absurd.builtin_tasks import builtin
from absurd.context import TaskContext
from absurd.errors import PermanentError
from absurd.options import SpawnOptions
from absurd.registry import Registry

tests_only = Registry()

EFFECTS_DDL = """
CREATE TABLE IF NOT EXISTS test_effects (
    task_id bigint NOT NULL, label text NOT NULL, at timestamptz DEFAULT now())
"""


def record_effect(conn: psycopg.Connection, params: Any, result: Any) -> None:
    """Completion hook: the effect commits in the same transaction as the completion."""
    conn.execute("INSERT INTO test_effects (task_id, label) VALUES (%s, 'completed')", (result["task_id"],))


@tests_only.task("effect", on_complete=record_effect)
def effect(ctx: TaskContext, params: Any) -> dict[str, int]:
    """Complete with a product row written by the completion hook."""
    return {"task_id": ctx.task_id}


def _note(ctx: TaskContext, label: str) -> None:
    with ctx._db.connection() as conn:
        conn.execute("INSERT INTO test_effects (task_id, label) VALUES (%s, %s)", (ctx.task_id, label))


@tests_only.task("three-steps", options=SpawnOptions(max_attempts=3))
def three_steps(ctx: TaskContext, params: Any) -> dict[str, Any]:
    """Three durable steps; the first attempt fails after step 2."""
    a = ctx.step("one", lambda: (_note(ctx, "one"), 1)[1])
    b = ctx.step("two", lambda: (_note(ctx, "two"), 2)[1])
    if ctx.attempt == 1:
        raise RuntimeError("failing after step two on the first attempt")
    c = ctx.step("three", lambda: (_note(ctx, "three"), 3)[1])
    return {"sum": a + b + c}


@tests_only.task("permanent")
def permanent(ctx: TaskContext, params: Any) -> None:
    """Fail with an error that must not be retried."""
    raise PermanentError("bad input: this can never succeed")


@tests_only.task("await-event")
def await_event(ctx: TaskContext, params: Any) -> Any:
    """Wait for the event named in params."""
    return {"payload": ctx.await_event(params["event"], params.get("timeout_s"))}


@tests_only.task("nap")
def nap(ctx: TaskContext, params: Any) -> dict[str, Any]:
    """Sleep durably (without holding a worker) and report the attempt that finished."""
    ctx.sleep_for("nap", params["seconds"])
    return {"attempt": ctx.attempt}


@tests_only.task("slow-process", mode="process")
def slow_process(ctx: TaskContext, params: Any) -> dict[str, Any]:
    """Run in a child process; check for cancellation only if asked to."""
    end = time.monotonic() + params["seconds"]
    while time.monotonic() < end:
        time.sleep(0.1)
        if params.get("heartbeat", True):
            ctx.heartbeat()
    return {"pid": os.getpid()}


@tests_only.task("kill-worker", options=SpawnOptions(max_attempts=2))
def kill_worker(ctx: TaskContext, params: Any) -> None:
    """Kill the worker process running this task, every time (a poison task)."""
    os.kill(os.getpid(), signal.SIGKILL)


@tests_only.task("crash-child", mode="process", options=SpawnOptions(max_attempts=2))
def crash_child(ctx: TaskContext, params: Any) -> None:
    """Kill the child process running this task."""
    os.kill(os.getpid(), signal.SIGKILL)


@tests_only.task("fan-out-add")
def fan_out(ctx: TaskContext, params: Any) -> dict[str, Any]:
    """Spawn ``n`` children that each add their index to a running total."""
    children = ctx.spawn_children("parts", "add", [{"value": i} for i in range(params["n"])])
    return {"children": len(children)}


@tests_only.task("add")
def add(ctx: TaskContext, params: Any) -> dict[str, Any]:
    """Return a value (a fan-out child)."""
    return {"value": params["value"]}


@tests_only.task("collect")
def collect(ctx: TaskContext, params: Any) -> dict[str, Any]:
    """Fan-in: sum what the children of this task's workflow returned."""
    with ctx.connection() as conn:
        row = conn.execute(
            "SELECT count(*), coalesce(sum((result->>'value')::int), 0) FROM absurd.tasks "
            "WHERE workflow_id = (SELECT workflow_id FROM absurd.tasks WHERE id = %s) AND name = 'add' "
            "AND state = 'completed'",
            (ctx.task_id,),
        ).fetchone()
    assert row is not None
    return {"count": row[0], "sum": row[1]}


@tests_only.task("record-order")
def record_order(ctx: TaskContext, params: Any) -> dict[str, Any]:
    """Note when this task ran, and check every parent had completed by then."""
    with ctx.connection() as conn:
        row = conn.execute(
            "SELECT count(*) FROM absurd.task_deps d JOIN absurd.tasks p ON p.id = d.depends_on "
            "WHERE d.task_id = %s AND p.state <> 'completed'",
            (ctx.task_id,),
        ).fetchone()
    return {"unfinished_parents": row[0] if row else -1, "params": params}


@tests_only.task("flaky")
def flaky(ctx: TaskContext, params: Any) -> dict[str, bool]:
    """Fail while the test's ``test_health`` flag says the dependency is down."""
    with ctx.connection() as conn:
        row = conn.execute("SELECT ok FROM test_health").fetchone()
    if not row or not row[0]:
        raise RuntimeError("dependency unavailable")
    return {"ok": True}


@tests_only.task("not-json")
def not_json(ctx: TaskContext, params: Any) -> dict[str, Any]:
    """Return something that is not JSON (a bug the worker must report, not choke on)."""
    return {"when": time.time, "nan": float("nan")}


@tests_only.task("block")
def block(ctx: TaskContext, params: Any) -> None:
    """Sleep without ever checking in (a thread the worker cannot stop), then note that it ended."""
    time.sleep(params["seconds"])
    _note(ctx, "block ended")


def _chatter(ctx: TaskContext, params: Any) -> None:
    n = params.get("lines", 3)
    for i in range(1, n + 1):
        ctx.log.warning(f"line {i} of {n}", **({"pad": "x" * params["pad"]} if params.get("pad") else {}))
    if params.get("stdlib"):
        logging.getLogger("tests.chatty").warning("from the standard library")
    end = time.monotonic() + params.get("quiet_s", 0)
    while time.monotonic() < end:
        time.sleep(0.1)
        ctx.heartbeat()
    if params.get("fail"):
        raise RuntimeError("chatty failed after logging")


@tests_only.task("chatty", options=SpawnOptions(max_attempts=1))
def chatty(ctx: TaskContext, params: Any) -> dict[str, int]:
    """Log ``lines`` lines (and one through the standard library if ``stdlib``), then stay quiet for
    ``quiet_s`` (checking for a cancel), then fail if ``fail``."""
    _chatter(ctx, params)
    return {"attempt": ctx.attempt}


@tests_only.task("chatty-process", mode="process", options=SpawnOptions(max_attempts=1))
def chatty_process(ctx: TaskContext, params: Any) -> dict[str, int]:
    """``chatty`` in a child process."""
    _chatter(ctx, params)
    return {"attempt": ctx.attempt}


registry = builtin.merge(tests_only)
