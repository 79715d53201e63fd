"""``contimg demo``: the queue end to end on the embedded Postgres, with a live progress display.

Each run gets a fresh database and run directory, so a second run reuses nothing stale.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo
from rich.console import Console
from rich.live import Live
from rich.table import Table

from absurd.client import Client
from absurd.database import connect, redact, resolve_dsn
from absurd.migrate import migrate
from absurd.options import FixedDelay
from absurd.states import TASK_STATES, TERMINAL_TASK_STATES
from contimg.runtime import WorkerProcesses


@dataclass
class DemoRun:
    """Where a demo run lives."""

    run_dir: Path
    dsn: str
    database: str


def prepare(base_dir: Path, dsn: str | None = None) -> DemoRun:
    """Make a run directory and a fresh, migrated database for this run."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    run_dir = (base_dir / f"demo-{stamp}-{uuid.uuid4().hex[:4]}").resolve()
    run_dir.mkdir(parents=True)
    server_dsn = resolve_dsn(dsn)
    database = f"contimg_demo_{stamp.lower()}_{uuid.uuid4().hex[:4]}"
    with connect(server_dsn) as conn:
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(database)))
    demo_dsn = make_conninfo(server_dsn, dbname=database)
    with connect(demo_dsn) as conn:
        migrate(conn)
    return DemoRun(run_dir, demo_dsn, database)


def counts(client: Client) -> dict[str, dict[str, int]]:
    """Task counts by name and state."""
    rows = client.conn.execute(
        "SELECT name, state, count(*) FROM absurd.tasks GROUP BY name, state"
    ).fetchall()
    table: dict[str, dict[str, int]] = {}
    for name, state, n in rows:
        table.setdefault(name, dict.fromkeys(TASK_STATES, 0))[state] = n
    return table


def progress_table(data: dict[str, dict[str, int]], elapsed: float) -> Table:
    """The live display: one row per task name."""
    t = Table(title=f"tasks flowing — {elapsed:5.1f} s", header_style="bold")
    t.add_column("task")
    for s in TASK_STATES:
        t.add_column(s, justify="right")
    for name in sorted(data):
        t.add_row(name, *(str(data[name][s]) for s in TASK_STATES))
    return t


def run_queue_demo(base_dir: Path, workers: int, tasks: int, dsn: str | None, console: Console) -> int:
    """Spawn a mix of built-in tasks, run a worker pool on them and summarise. Returns an exit code."""
    run = prepare(base_dir, dsn)
    console.print(f"[bold]run directory[/bold] {run.run_dir}")
    console.print(f"[bold]database[/bold] {redact(run.dsn)}")
    started = time.monotonic()
    with Client(run.dsn) as client:
        client.spawn_many("noop", [{}] * tasks)
        client.spawn_many("echo", [{"epoch": i} for i in range(20)])
        client.spawn_many("sleep", [{"seconds": 0.5}] * 8)
        client.spawn_many("fail", [{"fail_attempts": 1}] * 5, retry=FixedDelay(base_s=0.2))
        pool = WorkerProcesses(run.dsn, "absurd.builtin_tasks:builtin", run.run_dir / "logs")
        for i in range(workers):
            pool.start(["default"], concurrency=32, name=f"worker-{i}")
        try:
            with Live(progress_table(counts(client), 0), console=console, refresh_per_second=4) as live:
                while True:
                    data = counts(client)
                    live.update(progress_table(data, time.monotonic() - started))
                    open_tasks = sum(
                        n for d in data.values() for s, n in d.items() if s not in TERMINAL_TASK_STATES
                    )
                    if open_tasks == 0 or pool.alive() == 0:
                        break
                    time.sleep(0.25)
        finally:
            pool.stop()
        durations = client.conn.execute(
            """SELECT t.name, count(*), avg(extract(epoch FROM r.finished_at - r.started_at)),
                      max(extract(epoch FROM r.finished_at - r.started_at))
               FROM absurd.runs r JOIN absurd.tasks t ON t.id = r.task_id
               WHERE r.state = 'completed' GROUP BY t.name ORDER BY t.name"""
        ).fetchall()
        failed = client.conn.execute(
            "SELECT count(*) FROM absurd.tasks WHERE state <> 'completed'"
        ).fetchone()
    wall = time.monotonic() - started
    summary = Table(title="summary: completed runs", header_style="bold")
    for col in ("task", "runs", "mean s", "max s"):
        summary.add_column(col)
    for name, n, mean, longest in durations:
        summary.add_row(name, str(n), f"{float(mean):.4f}", f"{float(longest):.4f}")
    console.print(summary)
    not_done = int(failed[0]) if failed else 0
    console.print(
        f"wall time {wall:.1f} s; tasks not completed: {not_done}; worker logs in {run.run_dir / 'logs'}"
    )
    return 0 if not_done == 0 else 1
