"""The ``await-night`` task: the first step of a reprocessed night's mosaic workflow.

A night's mosaic must wait for the images of that night, which live in other workflows (one per
observation), and a workflow cannot depend on another. So the mosaic workflow starts with this task,
which sleeps durably (no worker slot held) until no task of the night's observation workflows is
still to run, then completes and releases ``create-mosaic``.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

import absurd
from contimg.store import reprocess
from contimg.tasks import queues

registry = absurd.Registry()


class AwaitNightParams(BaseModel):
    """``await-night``: which run's night to wait for, and how often to look."""

    model_config = ConfigDict(extra="forbid")
    run_id: int = Field(ge=1)
    night: date
    poll_s: float = Field(default=30.0, gt=0, description="seconds between looks")


class AwaitNightResult(BaseModel):
    """How many looks it took."""

    night: date
    polls: int


@registry.task(
    "await-night",
    params=AwaitNightParams,
    options=absurd.SpawnOptions(queue=queues.IMAGING, max_attempts=5),
)
def await_night(ctx: absurd.TaskContext, params: AwaitNightParams) -> AwaitNightResult:
    """Return once every observation workflow of the run's night has finished; sleep between looks."""
    polls = 0
    while True:
        with ctx.connection() as conn:
            still_open = reprocess.night_open_tasks(conn, params.run_id, params.night)
        if still_open == 0:
            return AwaitNightResult(night=params.night, polls=polls)
        # Each look has its own name: a re-run after waking passes the sleeps it already slept.
        ctx.sleep_for(f"look-{polls}", params.poll_s)
        polls += 1
