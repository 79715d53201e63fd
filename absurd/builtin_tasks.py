"""Built-in tasks: diagnostics for testing a deployment and for the benchmarks (noop, sleep, echo,
fail), and the queue's own maintenance (cleanup)."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from absurd.context import TaskContext
from absurd.maintenance.pruner import delete_finished
from absurd.maintenance.retention import DEFAULT_RETENTION_DAYS
from absurd.registry import Registry

builtin = Registry()
# Params models are built when a task first needs one (defer_build): most workers never run most tasks.
_LAZY = ConfigDict(defer_build=True)


@builtin.task("noop")
def noop(ctx: TaskContext, params: Any) -> None:
    """Do nothing; measures the queue's own overhead."""
    return None


class SleepParams(BaseModel):
    """Params of ``sleep``."""

    model_config = _LAZY
    seconds: float = Field(1.0, ge=0)
    heartbeat_every_s: float = Field(0.5, gt=0)
    log_progress: bool = Field(False, description="log a line at INFO after each heartbeat")


@builtin.task("sleep", params=SleepParams)
def sleep(ctx: TaskContext, params: SleepParams) -> dict[str, float]:
    """Hold a worker slot for ``seconds``, checking for cancellation as it goes."""
    end = time.monotonic() + params.seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(left, params.heartbeat_every_s))
        ctx.heartbeat()
        if params.log_progress:
            ctx.log.info("sleeping", left_s=round(max(end - time.monotonic(), 0.0), 1))
    return {"slept_s": params.seconds}


@builtin.task("echo")
def echo(ctx: TaskContext, params: Any) -> Any:
    """Return the params as the result."""
    return params


class FailParams(BaseModel):
    """Params of ``fail``."""

    model_config = _LAZY
    fail_attempts: int = Field(1, ge=0, description="fail this many attempts, then succeed")
    message: str = "deliberate failure"
    log_lines: int = Field(0, ge=0, le=10_000, description="log this many progress lines first, at INFO")


@builtin.task("fail", params=FailParams)
def fail(ctx: TaskContext, params: FailParams) -> dict[str, int]:
    """Fail the first ``fail_attempts`` attempts, then succeed."""
    for step in range(1, params.log_lines + 1):
        ctx.log.info("working", step=step, of=params.log_lines)
    if ctx.attempt <= params.fail_attempts:
        raise RuntimeError(f"{params.message} (attempt {ctx.attempt} of {params.fail_attempts} to fail)")
    return {"succeeded_on_attempt": ctx.attempt}


class CleanupParams(BaseModel):
    """Params of ``cleanup``."""

    model_config = _LAZY
    older_than_days: float = Field(
        DEFAULT_RETENTION_DAYS, gt=0, description="delete finished tasks older than this"
    )
    batch: int = Field(1000, ge=1, description="rows deleted per statement, to keep locks short")


@builtin.task("cleanup", params=CleanupParams)
def cleanup(ctx: TaskContext, params: CleanupParams) -> dict[str, int]:
    """Delete finished tasks (and their runs and checkpoints) past the retention period, in batches,
    as the workers' pruner does (absurd/maintenance/pruner.py); tasks still in the dead-letter queue
    are kept."""
    with ctx.connection() as conn:
        deleted = delete_finished(conn, params.older_than_days * 86400, params.batch)
    return {"deleted": deleted}


class FanOutParams(BaseModel):
    """Params of ``fan-out``."""

    model_config = _LAZY
    n: int = Field(100, ge=0, le=1_000_000)
    child: str = "noop"
    queue: str = "default"


@builtin.task("fan-out", params=FanOutParams)
def fan_out(ctx: TaskContext, params: FanOutParams) -> dict[str, int]:
    """Spawn ``n`` children into this task's workflow; tasks waiting on this one wait on them too."""
    ids = ctx.spawn_children("children", params.child, [{}] * params.n, queue=params.queue)
    return {"children": len(ids)}
