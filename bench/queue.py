"""The queue benchmark: ``python -m bench.queue [--quick] [--json] [--only KEYS] [--dsn DSN]``.

It measures the engine the way an operator runs it: tasks are spawned through ``Client`` and drained
by real ``python -m absurd worker`` processes running the built-in ``noop`` task. Everything runs in a
scratch database (``bench_<hex>``) that is migrated at the start and dropped at the end. Without
``--dsn`` or ``ABSURD_DSN`` a fresh embedded Postgres is started in a temporary directory, so a run
never touches the user's data. Durability settings are left as the server has them and reported.

Rates are taken on the database clock wherever possible: a drain is timed from the first run's
``started_at`` to the N-th run's ``finished_at``, which leaves out worker start-up; spawn-to-start
latency is a run's ``started_at`` minus its task's ``created_at``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo
from rich.console import Console
from rich.table import Table

from absurd.client import Client
from absurd.database import DSN_ENV
from absurd.logging import configure_logging
from absurd.migrate import migrate
from absurd.options import GateConfig
from absurd.workflow_spec import parse_spec

REPO = Path(__file__).resolve().parents[1]
REGISTRY = "absurd.builtin_tasks:builtin"
QUEUE = "default"

# Result keys, in the order the table shows them.
KEYS = (
    "enqueue_per_s",
    "drain_per_s_1w",
    "drain_per_s_4w",
    "latency_p50_ms",
    "latency_p99_ms",
    "drain_per_s_backlog_10k",
    "drain_per_s_backlog_1m",
    "worker_rss_growth_pct",
    "commit_per_s",
    "drain_per_s_fanout_10k",
    "drain_per_s_gated",
    "drain_per_s_dag",
    "gate_overhead_pct",
    "dag_overhead_pct",
)

# Measurements, each producing some of KEYS; --only picks measurements through the keys they produce.
MEASUREMENT_KEYS = {
    "commit": ("commit_per_s",),
    "enqueue": ("enqueue_per_s",),
    "drain_1w": ("drain_per_s_1w",),
    "drain_4w": ("drain_per_s_4w",),
    "latency": ("latency_p50_ms", "latency_p99_ms"),
    "backlog_10k": ("drain_per_s_backlog_10k",),
    "backlog_1m": ("drain_per_s_backlog_1m", "worker_rss_growth_pct"),
    "fanout": ("drain_per_s_fanout_10k",),
    "gated": ("drain_per_s_gated", "gate_overhead_pct"),
    "dag": ("drain_per_s_dag", "dag_overhead_pct"),
}

PEERS = (
    "Peers on a 2-core machine like this one (docs: queue.md), enqueue / drain of 2,000 no-op jobs per s: "
    "PgQueuer 1.6 ~30,000 / ~3,000; Chancy 0.26 ~3,800 / ~720; DBOS 3.4 ~260 / ~670; "
    "procrastinate 3.10 ~9,000 / ~360 (171 at 10k). pgbench there: ~16,000 single-row UPDATE commits/s "
    "with 4 connections (commit_per_s here uses 1 connection)."
)


@dataclass(frozen=True)
class Sizes:
    """How many tasks each measurement uses; --quick shrinks them."""

    enqueue_tasks: int
    enqueue_batch: int
    drain_tasks: int
    latency_samples: int
    backlog_small: int
    backlog_large: int
    backlog_window: int
    commit_seconds: float


FULL = Sizes(
    enqueue_tasks=200_000,
    enqueue_batch=10_000,
    drain_tasks=50_000,
    latency_samples=400,
    backlog_small=10_000,
    backlog_large=1_000_000,
    backlog_window=100_000,
    commit_seconds=3.0,
)
QUICK = Sizes(
    enqueue_tasks=50_000,
    enqueue_batch=10_000,
    drain_tasks=20_000,
    latency_samples=200,
    backlog_small=10_000,
    backlog_large=200_000,
    backlog_window=50_000,
    commit_seconds=2.0,
)


@dataclass(frozen=True)
class Target:
    """A goal a figure is judged against."""

    text: str
    check: Callable[[dict[str, float | None]], bool | None]


def _at_least(key: str, floor: float) -> Callable[[dict[str, float | None]], bool | None]:
    def check(r: dict[str, float | None]) -> bool | None:
        value = r.get(key)
        return None if value is None else value >= floor

    return check


def _at_most(key: str, ceiling: float) -> Callable[[dict[str, float | None]], bool | None]:
    def check(r: dict[str, float | None]) -> bool | None:
        value = r.get(key)
        return None if value is None else value <= ceiling

    return check


def _backlog_ratio(r: dict[str, float | None]) -> bool | None:
    big, small = r.get("drain_per_s_backlog_1m"), r.get("drain_per_s_backlog_10k")
    if big is None or not small:
        return None
    return big >= 0.8 * small


RSS_FLAT_PCT = 10.0
TARGETS = {
    "enqueue_per_s": Target(">= 50,000/s", _at_least("enqueue_per_s", 50_000)),
    "drain_per_s_1w": Target(">= 10,000/s", _at_least("drain_per_s_1w", 10_000)),
    "drain_per_s_4w": Target(">= 10,000/s", _at_least("drain_per_s_4w", 10_000)),
    "latency_p50_ms": Target("<= 5 ms", _at_most("latency_p50_ms", 5.0)),
    "drain_per_s_backlog_1m": Target(">= 80% of the 10k-backlog rate", _backlog_ratio),
    "worker_rss_growth_pct": Target(
        f"flat (<= {RSS_FLAT_PCT:g}%)", _at_most("worker_rss_growth_pct", RSS_FLAT_PCT)
    ),
    "gate_overhead_pct": Target("< 20% slower than plain", _at_most("gate_overhead_pct", 20.0)),
    "dag_overhead_pct": Target("< 20% slower than plain", _at_most("dag_overhead_pct", 20.0)),
}

LABELS = {
    "enqueue_per_s": "enqueue (spawn_many), tasks/s",
    "drain_per_s_1w": "no-op drain, 1 worker, tasks/s",
    "drain_per_s_4w": "no-op drain, 4 workers, tasks/s",
    "latency_p50_ms": "spawn -> start p50, ms",
    "latency_p99_ms": "spawn -> start p99, ms",
    "drain_per_s_backlog_10k": "drain with 10k pending, tasks/s",
    "drain_per_s_backlog_1m": "drain with 1M pending, tasks/s",
    "worker_rss_growth_pct": "worker RSS growth over the big drain, %",
    "commit_per_s": "single-row UPDATE commits/s (1 conn)",
    "drain_per_s_fanout_10k": "workflow fanning out to 10k tasks, tasks/s",
    "drain_per_s_gated": "drain through a gate (limit + breaker), tasks/s",
    "drain_per_s_dag": "drain of 10-task chains (DAG release), tasks/s",
    "gate_overhead_pct": "gate cost vs plain 1-worker drain, %",
    "dag_overhead_pct": "DAG cost vs plain 1-worker drain, %",
}


@dataclass
class Run:
    """What one benchmark run measured, and under which conditions."""

    quick: bool
    sizes: Sizes
    concurrency: int
    results: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(KEYS))
    notes: dict[str, str] = field(default_factory=dict)
    server: dict[str, str] = field(default_factory=dict)
    loadavg_before: str = ""
    loadavg_after: str = ""


# The server and the scratch database ------------------------------------------------------------


@contextmanager
def admin_dsn(dsn: str | None) -> Iterator[tuple[str, str]]:
    """Yield (DSN of a server we may create databases on, where it came from)."""
    given = dsn or os.environ.get(DSN_ENV)
    if given:
        yield given, "--dsn" if dsn else DSN_ENV
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs' XDG_RUNTIME_DIR warning
        import pgserver

        data_dir = tempfile.mkdtemp(prefix="absurd-bench-pg-")
        server = pgserver.get_server(data_dir, cleanup_mode="delete")
    try:
        yield str(server.get_uri()), f"embedded pgserver in {data_dir}"
    finally:
        server.cleanup()
        shutil.rmtree(data_dir, ignore_errors=True)


@contextmanager
def scratch_database(admin: str) -> Iterator[str]:
    """Create and migrate ``bench_<hex>``, yield its DSN, drop it afterwards."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # name is ours, never user input
    dsn = make_conninfo(admin, dbname=name)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            migrate(conn)
        yield dsn
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def server_facts(conn: psycopg.Connection) -> dict[str, str]:
    """The settings that decide commit cost, as the server reports them."""
    facts = {}
    for setting in ("server_version", "fsync", "synchronous_commit", "wal_sync_method", "shared_buffers"):
        row = conn.execute(f"SHOW {setting}").fetchone()  # fixed names from the tuple above
        facts[setting] = str(row[0]) if row else "?"
    return facts


def reset_queue(conn: psycopg.Connection) -> None:
    """Empty the queue tables so each measurement starts from the same state."""
    conn.execute(
        "TRUNCATE absurd.tasks, absurd.runs, absurd.checkpoints, absurd.workers, absurd.workflows, "
        "absurd.task_deps"
    )


def spawn_noops(client: Client, n: int, batch: int) -> float:
    """Spawn ``n`` no-op tasks in batches; return the seconds it took."""
    start = time.perf_counter()
    left = n
    while left > 0:
        size = min(batch, left)
        client.spawn_many("noop", [None] * size)
        left -= size
    return time.perf_counter() - start


# Worker processes ---------------------------------------------------------------------------------


def start_workers(dsn: str, count: int, concurrency: int) -> list[subprocess.Popen[bytes]]:
    """Start ``count`` ``absurd worker`` processes serving the built-in tasks."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "absurd", "worker", "--dsn", dsn, "--registry", REGISTRY]
    options = ["--concurrency", str(concurrency), "--log-level", "WARNING", "--shutdown-grace-s", "5"]
    return [subprocess.Popen([*command, *options], cwd=REPO, env=env) for _ in range(count)]


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM the workers and wait; SIGKILL any that will not stop."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def workers(dsn: str, count: int, concurrency: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Worker processes for the duration of the block."""
    procs = start_workers(dsn, count, concurrency)
    try:
        yield procs
    finally:
        stop_workers(procs)


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc/PID/status (KiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS line for pid {pid}")


def check_alive(procs: list[subprocess.Popen[bytes]]) -> None:
    """Stop the benchmark if a worker died, rather than waiting for work that will never finish."""
    for proc in procs:
        if proc.poll() is not None:
            raise RuntimeError(f"worker pid {proc.pid} exited with code {proc.returncode}; see its log above")


# Measurements ---------------------------------------------------------------------------------------

COMPLETED_UP_TO = "SELECT count(*) FROM absurd.runs WHERE state = 'completed'"
# Two probes of the runs primary key: an estimate of runs started that costs the same at any size.
CLAIMED_SO_FAR = "SELECT coalesce(max(task_id) - min(task_id) + 1, 0) FROM absurd.runs"
DRAIN_WINDOW = """
WITH firsts AS (
    SELECT finished_at FROM absurd.runs WHERE state = 'completed' ORDER BY finished_at LIMIT %s
)
SELECT count(*), extract(epoch FROM max(f.finished_at) - (SELECT min(started_at) FROM absurd.runs))
FROM firsts f
"""


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


def measure_commits(conn: psycopg.Connection, seconds: float) -> float:
    """Single-row UPDATE commits per second, autocommit, one connection."""
    conn.execute("CREATE TABLE IF NOT EXISTS bench_counter (id int PRIMARY KEY, n bigint NOT NULL)")
    conn.execute("INSERT INTO bench_counter VALUES (1, 0) ON CONFLICT (id) DO UPDATE SET n = 0")
    count = 0
    start = time.perf_counter()
    end = start + seconds
    while time.perf_counter() < end:
        conn.execute("UPDATE bench_counter SET n = n + 1 WHERE id = 1")
        count += 1
    return count / (time.perf_counter() - start)


def measure_enqueue(client: Client, sizes: Sizes) -> float:
    """Tasks per second through spawn_many, one round trip per batch."""
    return sizes.enqueue_tasks / spawn_noops(client, sizes.enqueue_tasks, sizes.enqueue_batch)


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
    row = client.conn.execute(
        "SELECT extract(epoch FROM max(r.finished_at) - min(r.started_at)) FROM absurd.runs r"
    ).fetchone()
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


def measure_latency(client: Client, dsn: str, samples: int, concurrency: int) -> tuple[float, float]:
    """p50 and p99 of spawn -> start, one task at a time to an idle worker woken by NOTIFY."""
    conn = client.conn
    with workers(dsn, 1, concurrency) as procs:
        # Wait for the worker to register and its listener to settle, then warm it with a few tasks.
        deadline = time.monotonic() + 60
        while not conn.execute("SELECT 1 FROM absurd.workers").fetchone():
            check_alive(procs)
            if time.monotonic() > deadline:
                raise TimeoutError("the latency worker did not register within 60 s")
            time.sleep(0.1)
        time.sleep(1.0)
        ids = []
        for i in range(samples + 10):
            task_id = client.spawn("noop").task_id
            while True:
                row = conn.execute("SELECT state FROM absurd.tasks WHERE id = %s", (task_id,)).fetchone()
                if row and row[0] == "completed":
                    break
                check_alive(procs)
                time.sleep(0.002)
            if i >= 10:
                ids.append(task_id)
            time.sleep(0.02)  # let the worker go back to waiting on its notification
    rows = conn.execute(
        """SELECT extract(epoch FROM r.started_at - t.created_at) * 1000
           FROM absurd.tasks t JOIN absurd.runs r ON r.task_id = t.id AND r.attempt = 1
           WHERE t.id = ANY(%s)""",
        (ids,),
    ).fetchall()
    latencies = sorted(float(r[0]) for r in rows)
    p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
    return statistics.median(latencies), p99


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
    row = client.conn.execute(
        "SELECT extract(epoch FROM max(finished_at) - min(started_at)) FROM absurd.runs"
    ).fetchone()
    whole = n / float(row[0]) if row and row[0] else float("nan")
    run.notes["backlog_1m"] = (
        f"{n:,} pending; rate over the first {sizes.backlog_window:,}; whole drain {whole:,.0f}/s; "
        f"worker RSS {warm / 1024:.1f} MiB after the window -> {end / 1024:.1f} MiB at the end "
        f"(peak {peak / 1024:.1f} MiB)"
    )
    return rate, 100.0 * (end - warm) / warm


def run_benchmark(dsn: str, run: Run, selected: set[str], console: Console) -> None:
    """Run the selected measurements against a migrated scratch database."""
    s, c = run.sizes, run.concurrency
    with Client(dsn) as client:
        conn = client.conn
        run.server = server_facts(conn)

        def step(name: str, what: str) -> bool:
            if name not in selected:
                return False
            reset_queue(conn)
            console.log(f"{name}: {what}")
            return True

        r = run.results
        if step("commit", f"{s.commit_seconds:g} s of single-row UPDATE commits"):
            r["commit_per_s"] = measure_commits(conn, s.commit_seconds)
        if step("enqueue", f"{s.enqueue_tasks:,} tasks in batches of {s.enqueue_batch:,}"):
            r["enqueue_per_s"] = measure_enqueue(client, s)
        if step("drain_1w", f"{s.drain_tasks:,} no-ops, 1 worker x {c}"):
            r["drain_per_s_1w"] = measure_drain(client, dsn, s.drain_tasks, 1, c)
        if step("drain_4w", f"{s.drain_tasks:,} no-ops, 4 workers x {c}"):
            r["drain_per_s_4w"] = measure_drain(client, dsn, s.drain_tasks, 4, c)
        if step("latency", f"{s.latency_samples} single spawns to an idle worker"):
            r["latency_p50_ms"], r["latency_p99_ms"] = measure_latency(client, dsn, s.latency_samples, c)
        if step("backlog_10k", f"{s.backlog_small:,} pending, 1 worker x {c}"):
            r["drain_per_s_backlog_10k"] = measure_drain(client, dsn, s.backlog_small, 1, c)
        if step("backlog_1m", f"{s.backlog_large:,} pending, 1 worker x {c}"):
            r["drain_per_s_backlog_1m"], r["worker_rss_growth_pct"] = measure_big_backlog(
                client, dsn, s, c, run
            )
        if step("fanout", "a workflow fanning out to 10,000 no-ops and joining, 1 worker"):
            r["drain_per_s_fanout_10k"] = measure_fanout(client, dsn, 10_000, c)
        if step("gated", f"{s.drain_tasks:,} no-ops through a gate, 1 worker x {c}"):
            r["drain_per_s_gated"] = measure_gated(client, dsn, s.drain_tasks, c)
            r["gate_overhead_pct"] = overhead_pct(r.get("drain_per_s_1w"), r["drain_per_s_gated"])
        if step("dag", f"{s.drain_tasks:,} no-ops in chains of 10, 1 worker x {c}"):
            r["drain_per_s_dag"] = measure_dag(client, dsn, s.drain_tasks, c)
            r["dag_overhead_pct"] = overhead_pct(r.get("drain_per_s_1w"), r["drain_per_s_dag"])
        reset_queue(conn)


# Output -----------------------------------------------------------------------------------------------


def verdict(key: str, results: dict[str, float | None]) -> tuple[str, str]:
    """The target text and pass/FAIL/'-' for one key."""
    target = TARGETS.get(key)
    if target is None:
        return "", ""
    ok = target.check(results)
    return target.text, "-" if ok is None else ("pass" if ok else "FAIL")


def render(run: Run, source: str, console: Console) -> None:
    """The readable table, with conditions above and peers below."""
    mode = "QUICK (smaller sizes; not the full benchmark)" if run.quick else "full"
    s = run.sizes
    title = f"absurd queue benchmark - {mode}"
    table = Table(title=title, caption=PEERS, caption_justify="left")
    table.add_column("measurement")
    table.add_column("value", justify="right")
    table.add_column("target")
    table.add_column("result")
    for key in KEYS:
        value = run.results[key]
        shown = (
            "-" if value is None else (f"{value:,.2f}" if key.endswith(("_ms", "_pct")) else f"{value:,.0f}")
        )
        text, ok = verdict(key, run.results)
        style = "red" if ok == "FAIL" else ("green" if ok == "pass" else "")
        label = LABELS[key]
        if key == "drain_per_s_backlog_1m" and s.backlog_large != 1_000_000:
            label = f"drain with {s.backlog_large:,} pending (not 1M), tasks/s"
        table.add_row(label, shown, text, f"[{style}]{ok}[/]" if style else ok)
    console.print(table)
    facts = ", ".join(f"{k}={v}" for k, v in run.server.items())
    console.print(f"server: {source}; {facts}")
    console.print(
        f"workers: python -m absurd worker --concurrency {run.concurrency} (claim batch = free slots, "
        f"at most 256; completer batches up to 500 outcomes, 2 ms linger; NOTIFY wake-up, 1 s fallback poll)"
    )
    console.print(
        f"sizes: enqueue {s.enqueue_tasks:,} in batches of {s.enqueue_batch:,}; drains {s.drain_tasks:,}; "
        f"latency {s.latency_samples} samples; backlogs {s.backlog_small:,} and {s.backlog_large:,} "
        f"(rate over the first {s.backlog_window:,})"
    )
    for name, note in run.notes.items():
        console.print(f"{name}: {note}")
    console.print(f"load average before: {run.loadavg_before}; after: {run.loadavg_after}")


def as_json(run: Run, source: str) -> str:
    """The result keys, plus the conditions under ``meta``."""
    meta = {
        "quick": run.quick,
        "concurrency": run.concurrency,
        "server": run.server,
        "source": source,
        "sizes": asdict(run.sizes),
        "notes": run.notes,
        "loadavg_before": run.loadavg_before,
        "loadavg_after": run.loadavg_after,
    }
    return json.dumps({**run.results, "meta": meta})


def loadavg() -> str:
    """The first three fields of /proc/loadavg."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def parse_only(text: str | None) -> set[str]:
    """Measurements producing the keys named in --only (all when not given)."""
    if not text:
        return set(MEASUREMENT_KEYS)
    wanted = {k.strip() for k in text.split(",") if k.strip()}
    unknown = wanted - set(KEYS)
    if unknown:
        raise SystemExit(
            f"--only: unknown key(s) {', '.join(sorted(unknown))}; choose from {', '.join(KEYS)}"
        )
    return {name for name, keys in MEASUREMENT_KEYS.items() if wanted & set(keys)}


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, run the benchmark and print the table or the JSON object."""
    parser = argparse.ArgumentParser(prog="python -m bench.queue", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dsn", help=f"server to benchmark on (default: ${DSN_ENV}, else a temporary pgserver)"
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, about 1-2 minutes")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--only", help=f"comma-separated keys to measure: {', '.join(KEYS)}")
    parser.add_argument(
        "--concurrency", type=int, default=64, help="task slots per worker process (default 64)"
    )
    args = parser.parse_args(argv)
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")

    # With --json the progress log and table go to stderr, so stdout holds only the JSON object.
    console = Console(stderr=args.json, width=max(110, shutil.get_terminal_size().columns))
    configure_logging("WARNING")  # migrations log at INFO; keep stdout for the results
    run = Run(quick=args.quick, sizes=QUICK if args.quick else FULL, concurrency=args.concurrency)
    selected = parse_only(args.only)
    run.loadavg_before = loadavg()
    with admin_dsn(args.dsn) as (admin, source), scratch_database(admin) as dsn:
        run_benchmark(dsn, run, selected, console)
    run.loadavg_after = loadavg()
    render(run, source, console)
    if args.json:
        sys.stdout.write(as_json(run, source) + "\n")


if __name__ == "__main__":
    main()
