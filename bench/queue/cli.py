"""The command line of ``python -m bench.queue``: pick the measurements, run them, print the results."""

from __future__ import annotations

import argparse
import shutil
import sys

from rich.console import Console

import bench.queue
from absurd.client import Client
from absurd.database import DSN_ENV
from absurd.logging import configure_logging
from bench.postgres import admin_dsn, scratch_database, server_facts
from bench.processes import loadavg
from bench.queue.drain import (
    measure_big_backlog,
    measure_dag,
    measure_drain,
    measure_fanout,
    measure_gated,
    overhead_pct,
)
from bench.queue.latency import measure_latency
from bench.queue.plan import FULL, KEYS, QUICK, Run, parse_only
from bench.queue.report import as_json, render
from bench.queue.workload import measure_commits, measure_enqueue, reset_queue


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


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, run the benchmark and print the table or the JSON object."""
    doc = bench.queue.__doc__ or ""
    parser = argparse.ArgumentParser(prog="python -m bench.queue", description=doc.splitlines()[0])
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
