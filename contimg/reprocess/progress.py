"""Where a reprocessing run stands: observations done, failed and in flight, the rate and the time left."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import psycopg
from pydantic import BaseModel
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from contimg.store import reprocess


class RunProgress(BaseModel):
    """A run's numbers. ``rate_per_hour`` and ``eta_s`` are None until an observation is done."""

    run_id: int
    created_at: datetime
    submitted: bool
    cancelled: bool
    observations: int
    done: int
    failed: int
    in_flight: int
    unsubmitted: int
    mosaics: int
    mosaics_done: int
    mosaics_failed: int
    rate_per_hour: float | None
    eta_s: float | None
    tasks: dict[str, dict[str, int]]

    @property
    def finished(self) -> bool:
        """Nothing left to run: everything submitted is done or failed (or the run was cancelled)."""
        settled = self.in_flight == 0 and self.mosaics_done + self.mosaics_failed == self.mosaics
        return self.submitted and settled and (self.unsubmitted == 0 or self.cancelled)


def run_progress(conn: psycopg.Connection, run_id: int) -> RunProgress:
    """Read a run's progress; LookupError if there is no such run."""
    run = reprocess.get_run(conn, run_id)
    if run is None:
        raise LookupError(f"no reprocessing run {run_id}; list them with `contimg reprocess status`")
    raw = reprocess.progress(conn, run_id)
    units: dict[tuple[str, str], int] = {(r["kind"], r["state"]): int(r["n"]) for r in raw["units"]}

    def count(kind: str, *states: str) -> int:
        return sum(n for (k, s), n in units.items() if k == kind and (not states or s in states))

    done = count("observation", "done")
    remaining = count("observation", "in_flight", "unsubmitted")
    created: datetime = run["created_at"]
    last = raw["times"]["last_finished"] if raw["times"] else None
    rate = eta = None
    if done and last is not None:
        hours = max((last - created).total_seconds(), 1.0) / 3600
        rate = done / hours
        eta = remaining / rate * 3600
    tasks: dict[str, dict[str, int]] = {}
    for row in raw["tasks"]:
        tasks.setdefault(row["step"], {})[row["state"]] = int(row["n"])
    return RunProgress(
        run_id=run_id,
        created_at=created,
        submitted=run["submitted_at"] is not None,
        cancelled=run["cancelled_at"] is not None,
        observations=count("observation"),
        done=done,
        failed=count("observation", "failed"),
        in_flight=count("observation", "in_flight"),
        unsubmitted=count("observation", "unsubmitted"),
        mosaics=count("mosaic"),
        mosaics_done=count("mosaic", "done"),
        mosaics_failed=count("mosaic", "failed"),
        rate_per_hour=rate,
        eta_s=eta,
        tasks=tasks,
    )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, s = divmod(int(seconds), 60)
    hours, m = divmod(minutes, 60)
    return f"{hours}h{m:02d}m" if hours else f"{m}m{s:02d}s"


def render(p: RunProgress) -> Any:
    """The display: a bar of observations settled, the counts, and tasks by step and state."""
    bar = Progress(
        TextColumn(f"run {p.run_id}" + (" [red](cancelled)[/]" if p.cancelled else "")),
        BarColumn(),
        MofNCompleteColumn(),
    )
    bar.add_task("observations", total=max(p.observations, 1), completed=p.done + p.failed)
    rate = "-" if p.rate_per_hour is None else f"{p.rate_per_hour:.1f}"
    counts = Text(
        f"observations: done {p.done}, failed {p.failed}, in flight {p.in_flight}, "
        f"not submitted {p.unsubmitted}; mosaics {p.mosaics_done}/{p.mosaics} done"
        + (f", {p.mosaics_failed} failed" if p.mosaics_failed else "")
        + f"; rate {rate} obs/h; time left {_duration(p.eta_s)}"
    )
    steps = Table(header_style="bold", box=None)
    states = ("waiting", "pending", "running", "sleeping", "completed", "failed", "cancelled")
    steps.add_column("step")
    for state in states:
        steps.add_column(state, justify="right")
    for step in sorted(p.tasks):
        steps.add_row(step, *(str(p.tasks[step].get(s, 0)) for s in states))
    return Group(bar, counts, steps)


def watch(
    conn: psycopg.Connection,
    run_id: int,
    console: Console,
    interval_s: float = 1.0,
    timeout_s: float | None = None,
) -> RunProgress:
    """Show the run's progress live until it has finished (or ``timeout_s`` passed); return the last view."""
    started = time.monotonic()
    current = run_progress(conn, run_id)
    with Live(render(current), console=console, refresh_per_second=2, transient=False) as live:
        while not current.finished:
            if timeout_s is not None and time.monotonic() - started > timeout_s:
                break
            time.sleep(interval_s)
            current = run_progress(conn, run_id)
            live.update(render(current))
    return current
