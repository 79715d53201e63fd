"""Where a drain's time goes: ``python -m bench.profile [--system engine|pgqueuer] [--n N] [--workers W]
[--concurrency C] [--batch-size B] [--py-spy [--py-spy-raw FILE]] [--completion-batches] [--json]``.

On a fresh embedded Postgres (its log is read and its settings changed, so never on the user's server),
N no-op jobs are enqueued and drained twice by W worker processes of one system:

1. with every statement logged (``log_min_duration_statement = 0``): statements per job, and the
   statements that take the most server time. The logging slows this drain; its rate is not the benchmark's.
2. without: the drain's rate (wall clock from launch, as ``bench.peers``), transactions and rows written per
   job (``pg_stat_database``, ``pg_stat_user_tables``; the counters include the profiler's own polls),
   what the database's client backends wait on (``pg_stat_activity``, sampled every 10 ms) and, with
   ``--py-spy``, where the first worker process spends its CPU (``py-spy record``).
3. with ``--completion-batches``: this engine's completion call alone, timed per task at batch sizes from 50
   to 1,000 (a worker's completer sends up to 500 outcomes at once).

``pg_stat_statements`` is not used: the embedded server ships without it.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

from absurd import queries
from absurd.logging import configure_logging
from bench.postgres import embedded_server, scratch_database
from bench.processes import stop_workers
from bench.systems import System, pgq
from bench.systems.engine import EngineSystem
from bench.systems.measure import ENQUEUE_BATCH, wait_empty

DATABASE_STATS = """
SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted, blks_hit + blks_read
FROM pg_stat_database WHERE datname = current_database()
"""
STAT_NAMES = ("commits", "rollbacks", "rows_inserted", "rows_updated", "rows_deleted", "blocks")
TABLE_STATS = """
SELECT schemaname || '.' || relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del FROM pg_stat_user_tables
"""
TABLE_STAT_NAMES = ("inserted", "updated", "of which HOT", "deleted")
# A backend may hold its counters for up to 10 s after it goes idle (PGSTAT_IDLE_INTERVAL) before they
# reach the views: wait that long after the enqueue, so its rows are not counted as the drain's.
STATS_FLUSH_S = 11.0
BACKENDS = """
SELECT state, coalesce(wait_event_type, 'CPU'), coalesce(wait_event, '-')
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
"""
# One logged statement: its duration, the phase (simple statement, or parse/bind/execute) and its text.
LOGGED = re.compile(
    r"duration: ([\d.]+) ms\s+(statement|parse|bind|execute)[^:]*:\s*(.*?)(?=\n\d{4}-\d\d-\d\d |\Z)", re.S
)
SAMPLE_S = 0.01
# Frames every stack shares (threads, the module runner, the CLI framework): no help in finding the cost.
PLUMBING = re.compile(r"\((threading\.py|<frozen runpy>|typer/|click/)|^(main|<module>) \(absurd/__main__")


def database_stats(conn: psycopg.Connection) -> dict[str, int]:
    """The database's cumulative counters."""
    row = conn.execute(DATABASE_STATS).fetchone()
    assert row is not None
    return dict(zip(STAT_NAMES, (int(v) for v in row), strict=True))


def table_stats(conn: psycopg.Connection) -> dict[str, tuple[int, ...]]:
    """Each table's cumulative row counters."""
    return {str(r[0]): tuple(int(v) for v in r[1:]) for r in conn.execute(TABLE_STATS).fetchall()}


def table_rows_per_job(
    before: dict[str, tuple[int, ...]], after: dict[str, tuple[int, ...]], jobs: int
) -> dict[str, str]:
    """Rows written per job, table by table, for the tables the drain wrote to."""
    out = {}
    for table, counts in after.items():
        deltas = [a - b for a, b in zip(counts, before.get(table, (0,) * len(counts)), strict=True)]
        if any(deltas):
            named = zip(TABLE_STAT_NAMES, deltas, strict=True)
            out[table] = ", ".join(f"{name} {d / jobs:.3f}" for name, d in named)
    return out


def shape(sql: str) -> str:
    """A statement with its literals and parameters folded, so repeats group together."""
    sql = re.sub(r"\$\d+", "$", sql)
    sql = re.sub(r"'[^']*'|\b\d+(\.\d+)?\b", "?", sql)
    return re.sub(r"\s+", " ", sql).strip()[:120]


def statements(log_text: str, jobs: int, top: int = 8) -> dict[str, object]:
    """Statements per job, and the top statement shapes by total server time (all phases)."""
    calls: collections.Counter[str] = collections.Counter()
    ms: collections.defaultdict[str, float] = collections.defaultdict(float)
    for match in LOGGED.finditer(log_text):
        key = shape(match.group(3))
        ms[key] += float(match.group(1))
        if match.group(2) in ("statement", "execute"):
            calls[key] += 1
    return {
        "statements_per_job": round(sum(calls.values()) / jobs, 4),
        "top_by_server_ms": [
            {
                "statement": k,
                "calls": calls[k],
                "total_ms": round(v, 1),
                "ms_per_call": round(v / max(calls[k], 1), 2),
            }
            for k, v in sorted(ms.items(), key=lambda kv: -kv[1])[:top]
        ],
    }


class Sampler(threading.Thread):
    """Samples what the database's client backends are doing, every 10 ms, until stopped."""

    def __init__(self, dsn: str):
        super().__init__(daemon=True)
        self.dsn = dsn
        self.counts: collections.Counter[str] = collections.Counter()
        self.samples = 0
        self.halt = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.halt.is_set():
                for state, kind, event in conn.execute(BACKENDS).fetchall():
                    self.counts[f"{kind}:{event}" if state == "active" else f"{state} ({event})"] += 1
                self.samples += 1
                time.sleep(SAMPLE_S)

    def shares(self, top: int = 10) -> dict[str, float]:
        """Per state or wait event, its share of all backend samples, in percent."""
        total = sum(self.counts.values()) or 1
        return {k: round(100 * v / total, 1) for k, v in self.counts.most_common(top)}


def py_spy_command() -> str | None:
    """py-spy from the venv or PATH, if installed."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def cpu_profile(raw: Path, top: int = 12) -> dict[str, float]:
    """From py-spy's raw (collapsed stacks) output, in percent of the CPU samples: the share spent
    importing modules (start-up), then the functions with the most samples in the rest, callees
    included, leaving out thread and CLI plumbing."""
    inclusive: collections.Counter[str] = collections.Counter()
    total = imports = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = {re.sub(r":\d+\)$", ")", f) for f in stack.split(";")[1:]}
        if any("importlib._bootstrap" in f for f in frames):
            imports += n
            continue
        for frame in frames:
            if not PLUMBING.search(frame):
                inclusive[frame] += n
    shares = {"(importing modules: start-up)": round(100 * imports / max(total, 1), 1)}
    shares.update({k: round(100 * v / max(total, 1), 1) for k, v in inclusive.most_common(top)})
    return shares


def set_statement_logging(admin: str, on: bool) -> None:
    """Log every statement with its duration (or stop), server-wide."""
    with psycopg.connect(admin, autocommit=True) as conn:
        if on:
            conn.execute("ALTER SYSTEM SET log_min_duration_statement = 0")
        else:
            conn.execute("ALTER SYSTEM RESET log_min_duration_statement")
        conn.execute("SELECT pg_reload_conf()")
    time.sleep(0.5)  # the reload reaches every backend asynchronously


def fill(system: System, n: int) -> None:
    """An empty queue, then ``n`` no-ops."""
    system.reset()
    system.enqueue(n, ENQUEUE_BATCH)
    system.analyze()


def logged_drain(system: System, admin: str, log: Path, n: int, processes: int) -> dict[str, object]:
    """Drain with every statement logged; what the log shows."""
    fill(system, n)
    set_statement_logging(admin, True)
    offset = log.stat().st_size
    procs = system.launch(processes)
    try:
        wait_empty(system, procs, timeout_s=max(300.0, n / 20))
    finally:
        stop_workers(procs)
        set_statement_logging(admin, False)
    with log.open(errors="replace") as f:
        f.seek(offset)
        return statements(f.read(), n)


def clean_drain(
    system: System, dsn: str, n: int, processes: int, spy: bool, keep_raw: Path | None = None
) -> dict[str, object]:
    """Drain without logging; rate, per-job counters, wait events and (optionally) py-spy."""
    fill(system, n)
    out: dict[str, object] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        time.sleep(STATS_FLUSH_S)
        before, tables_before = database_stats(conn), table_stats(conn)
        sampler = Sampler(dsn)
        sampler.start()
        spy_cmd = py_spy_command() if spy else None
        raw = Path(tempfile.mkstemp(prefix="bench-py-spy-", suffix=".txt")[1])
        launched = time.monotonic()
        procs = system.launch(processes)
        recorder = None
        if spy_cmd:
            command = [spy_cmd, "record", "-p", str(procs[0].pid), "-r", "100", "-f", "raw", "-o", str(raw)]
            quiet = subprocess.DEVNULL
            recorder = subprocess.Popen([*command, "--nonblocking"], stdout=quiet, stderr=quiet)
        try:
            wait_empty(system, procs, timeout_s=max(300.0, n / 20))
            seconds = time.monotonic() - launched
        finally:
            if recorder is not None:
                recorder.send_signal(signal.SIGINT)
                recorder.wait(60)
            sampler.halt.set()
            sampler.join()
            stop_workers(procs)
        after, tables_after = database_stats(conn), table_stats(conn)
    out["drain_s"] = round(seconds, 2)
    out["drain_per_s"] = round(n / seconds)
    out["per_job"] = {k: round((after[k] - before[k]) / n, 3) for k in STAT_NAMES}
    out["rows_per_job_by_table"] = table_rows_per_job(tables_before, tables_after, n)
    out["backend_samples"] = sampler.samples
    out["backends_pct"] = sampler.shares()
    if spy and not spy_cmd:
        out["py_spy"] = "not installed: .venv/bin/pip install py-spy"
    elif recorder is not None and raw.stat().st_size:
        out["py_spy_first_worker_cpu_pct"] = cpu_profile(raw)
        if keep_raw is not None:
            shutil.copyfile(raw, keep_raw)
    raw.unlink(missing_ok=True)
    return out


def render(report: dict[str, object]) -> str:
    """The report as indented text: one line a figure, nested sections indented."""
    lines: list[str] = []

    def walk(value: object, indent: str) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if isinstance(inner, dict | list):
                    lines.append(f"{indent}{key}:")
                    walk(inner, indent + "  ")
                else:
                    lines.append(f"{indent}{key}: {inner}")
        elif isinstance(value, list):
            for item in value:
                lines.append(f"{indent}- " + ", ".join(f"{k}={v}" for k, v in dict(item).items()))

    walk(report, "")
    return "\n".join(lines)


def completion_batches(
    dsn: str, sizes: tuple[int, ...] = (50, 100, 250, 500, 1000), tries: int = 3, backlog: int = 30_000
) -> dict[str, float]:
    """This engine's completion call alone, at several batch sizes: microseconds per task, best of
    ``tries``, on runs just claimed from a ``backlog`` of tasks by one connection (no worker processes)."""
    engine = EngineSystem(dsn, 1)
    out: dict[str, float] = {}
    try:
        engine.reset()
        engine.enqueue(backlog, ENQUEUE_BATCH)
        engine.analyze()
        conn = engine.client.conn
        for size in sizes:
            best = float("inf")
            for _ in range(tries):
                claimed = conn.execute(queries.CLAIM, ("default", "bench-profile", size, 60.0)).fetchall()
                tasks, runs = [r[0] for r in claimed], [r[1] for r in claimed]
                start = time.perf_counter()
                conn.execute(queries.COMPLETE_RUNS, (tasks, runs, [None] * len(tasks))).fetchall()
                best = min(best, (time.perf_counter() - start) / max(len(tasks), 1))
            out[f"batch {size}, us per task"] = round(best * 1e6, 1)
    finally:
        engine.close()
    return out


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, profile one system's drain and print what was found."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--system", choices=("engine", "pgqueuer"), default="engine")
    parser.add_argument("--n", type=int, default=10_000, help="jobs per drain (default 10,000)")
    parser.add_argument("--workers", type=int, default=4, help="worker processes (default 4)")
    parser.add_argument(
        "--concurrency", type=int, default=256, help="this engine's slots per process (default 256)"
    )
    parser.add_argument("--batch-size", type=int, default=100, help="PgQueuer's batch size (default 100)")
    parser.add_argument("--py-spy", action="store_true", help="record the first worker with py-spy")
    parser.add_argument(
        "--py-spy-raw", type=Path, help="with --py-spy: also keep py-spy's collapsed stacks in this file"
    )
    parser.add_argument(
        "--completion-batches",
        action="store_true",
        help="also time this engine's completion call alone at batch sizes 50 to 1,000",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.system == "pgqueuer" and not pgq.available():
        raise SystemExit(pgq.MISSING)
    configure_logging("WARNING")
    report: dict[str, object] = {"system": args.system, "n": args.n, "workers": args.workers}
    with embedded_server() as server, scratch_database(str(server.get_uri())) as dsn:
        system: System
        if args.system == "engine":
            system = EngineSystem(dsn, args.concurrency)
        else:
            pgq.install_schema(dsn)
            system = pgq.PgQueuerSystem(dsn, args.batch_size)
        report["label"] = system.label
        try:
            admin, log = str(server.get_uri()), Path(server.log)
            report["logged_drain"] = logged_drain(system, admin, log, args.n, args.workers)
            report["clean_drain"] = clean_drain(
                system, dsn, args.n, args.workers, args.py_spy, args.py_spy_raw
            )
        finally:
            system.close()
        if args.completion_batches:
            report["completion_batches"] = completion_batches(dsn)
    sys.stdout.write((json.dumps(report) if args.json else render(report)) + "\n")


if __name__ == "__main__":
    main()
