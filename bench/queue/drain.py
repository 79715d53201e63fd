"""Drain measurements: worker processes empty a backlog of no-ops, timed on the database clock from
the first run's ``started_at`` to the N-th run's ``finished_at``."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import psycopg

from absurd.client import Client
from absurd.options import GateConfig
from absurd.workflow_spec import parse_spec
from bench.processes import check_alive, rss_kib, workers
from bench.queue.plan import Run, Sizes
from bench.queue.workload import spawn_noops

COMPLETED_UP_TO = "SELECT count(*) FROM absurd.runs WHERE state = 'completed'"
# Two probes of the runs primary key: an estimate of runs ended (a run's row is written when it ends) that
# costs the same at any size.
CLAIMED_SO_FAR = "SELECT coalesce(max(task_id) - min(task_id) + 1, 0) FROM absurd.runs"
DRAIN_WINDOW = """
WITH firsts AS (
    SELECT finished_at FROM absurd.runs WHERE state = 'completed' ORDER BY finished_at LIMIT %s
)
SELECT count(*), extract(epoch FROM max(f.finished_at) - (SELECT min(started_at) FROM absurd.runs))
FROM firsts f
"""
WHOLE_SPAN = "SELECT extract(epoch FROM max(finished_at) - min(started_at)) FROM absurd.runs"


def wait_completed(
    conn: psycopg.Connection,
    procs: list[subprocess.Popen[bytes]],
    n: int,
    timeout_s: float,
    on_poll: Callable[[], None] | None = None,
) -> None:
    """Poll until ``n`` runs have completed: cheaply (runs started) while far off, exactly near the end."""
    deadline = time.monotonic() + timeout_s
    while True:
        check_alive(procs)
        if on_poll is not None:
            on_poll()
        row = conn.execute(CLAIMED_SO_FAR if n > 20_000 else COMPLETED_UP_TO).fetchone()
        seen = int(row[0]) if row else 0
        if seen >= n:
            row = conn.execute(COMPLETED_UP_TO).fetchone()
            if row and int(row[0]) >= n:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {seen} of {n} tasks done after {timeout_s:.0f} s")
        time.sleep(0.2 if n - seen < 20_000 else 1.0)


def drain_rate(conn: psycopg.Connection, n: int) -> float:
    """Rate over the first ``n`` completions: n / (n-th finished_at - first started_at), DB clock."""
    row = conn.execute(DRAIN_WINDOW, (n,)).fetchone()
    if not row or not row[1]:
        raise RuntimeError("no completed runs to time")
    return float(row[0]) / float(row[1])


def measure_drain(client: Client, dsn: str, n: int, processes: int, concurrency: int) -> float:
    """Spawn ``n`` no-ops (untimed), then time ``processes`` workers emptying the queue."""
    spawn_noops(client, n, 10_000)
    client.conn.execute("ANALYZE absurd.tasks")
    with workers(dsn, processes, concurrency) as procs:
        wait_completed(client.conn, procs, n, timeout_s=max(120.0, n / 100))
    return drain_rate(client.conn, n)


def measure_fanout(client: Client, dsn: str, n: int, concurrency: int) -> float:
    """A workflow whose first task fans out to ``n`` no-ops and whose last waits for them all: tasks
    per second from the fan-out's start to the join's end, 1 worker."""
    spec = parse_spec(
        {
            "name": "bench-fanout",
            "tasks": [
                {"name": "fan", "type": "fan-out", "params": {"n": n}},
                {"name": "join", "type": "noop", "depends_on": ["fan"]},
            ],
        }
    )
    client.submit_workflow(spec)
    with workers(dsn, 1, concurrency) as procs:
        wait_completed(client.conn, procs, n + 2, timeout_s=max(120.0, n / 100))
    row = client.conn.execute(WHOLE_SPAN).fetchone()
    assert row is not None
    return (n + 2) / float(row[0])


def measure_gated(client: Client, dsn: str, n: int, concurrency: int) -> float:
    """The plain drain, but every task passes a gate with a (high) limit and a breaker."""
    client.configure_gate(GateConfig(key="noop", max_running=100_000, breaker_enabled=True))
    try:
        return measure_drain(client, dsn, n, 1, concurrency)
    finally:
        client.conn.execute("DELETE FROM absurd.gates")


def measure_dag(client: Client, dsn: str, n: int, concurrency: int, chain: int = 10) -> float:
    """``n`` no-ops as chains of ``chain`` tasks, each released by its parent's completion."""
    spec = parse_spec(
        {
            "name": "bench-chain",
            "tasks": [
                {"name": f"s{i}", "type": "noop", "depends_on": [f"s{i - 1}"] if i else []}
                for i in range(chain)
            ],
        }
    )
    for _ in range(n // chain):
        client.submit_workflow(spec)
    client.conn.execute("ANALYZE absurd.tasks")
    total = (n // chain) * chain
    with workers(dsn, 1, concurrency) as procs:
        wait_completed(client.conn, procs, total, timeout_s=max(120.0, total / 100))
    return drain_rate(client.conn, total)


def overhead_pct(plain: float | None, other: float | None) -> float | None:
    """How much slower ``other`` is than ``plain``, in percent (negative: faster)."""
    if not plain or not other:
        return None
    return 100.0 * (plain - other) / plain


def measure_big_backlog(
    client: Client, dsn: str, sizes: Sizes, concurrency: int, run: Run
) -> tuple[float, float]:
    """Drain rate over the first window of a large backlog, and the worker's RSS growth over all of it."""
    n = sizes.backlog_large
    spawn_noops(client, n, 10_000)
    client.conn.execute("ANALYZE absurd.tasks")
    peak = 0

    with workers(dsn, 1, concurrency) as procs:
        pid = procs[0].pid

        def sample() -> None:
            nonlocal peak
            peak = max(peak, rss_kib(pid))

        wait_completed(client.conn, procs, sizes.backlog_window, timeout_s=n / 50, on_poll=sample)
        warm = rss_kib(pid)
        rate = drain_rate(client.conn, sizes.backlog_window)
        wait_completed(client.conn, procs, n, timeout_s=n / 50, on_poll=sample)
        end = rss_kib(pid)
    row = client.conn.execute(WHOLE_SPAN).fetchone()
    whole = n / float(row[0]) if row and row[0] else float("nan")
    run.notes["backlog_1m"] = (
        f"{n:,} pending; rate over the first {sizes.backlog_window:,}; whole drain {whole:,.0f}/s; "
        f"worker RSS {warm / 1024:.1f} MiB after the window -> {end / 1024:.1f} MiB at the end "
        f"(peak {peak / 1024:.1f} MiB)"
    )
    return rate, 100.0 * (end - warm) / warm
