"""The reprocessing benchmark: ``python -m bench.reprocess [--observations 6] [--workers 1,2] [--json]``.

A simulated archive (a calibrator transit and targets after it; tiny observations, see
``contimg.reprocess.archive``; simulation not timed) is reprocessed with ``contimg reprocess`` through
the whole chain, once per worker count, each on a fresh database (a fresh embedded Postgres unless
--dsn). Each worker is one ``absurd worker`` process with one task slot, as one host would run one
process per core.

Reported per worker count: wall time from submission to the last observation done, observations per
hour, the tasks' time per observation (the sum of the runs' claim-to-completion time, which holds the
task bodies and their completion hooks) and the slot time outside any task per observation: the
queue's own work (submission, claiming, releasing dependents, waking on NOTIFY or the poll) plus any
time a slot had nothing ready to run (apply tasks waiting for the calibrator's solve; the mosaic's
wait for the night). With one worker that is the queue's overhead and the chain's idle gaps together.
The projection to N hosts multiplies the one-process rate by N, assuming shared storage and Postgres
keep up.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.table import Table

from bench.postgres import admin_dsn, scratch_database
from contimg.reprocess.archive import Archive, ArchiveSettings, simulate_archive
from contimg.runtime import WorkerProcesses
from contimg.tasks import queues

REPO = Path(__file__).resolve().parents[1]
# Small images: the observations are tiny and the benchmark is about the pipeline's flow.
IMAGING = ("--set", "image.imaging.imsize=128", "--set", "image.imaging.cell_arcsec=30")

_TIMES = """
SELECT extract(epoch FROM max(r.finished_at) - min(w.created_at)) AS wall_s,
       sum(extract(epoch FROM r.finished_at - r.started_at)) AS busy_s,
       count(*) FILTER (WHERE r.state = 'completed') AS runs
FROM absurd.runs r JOIN absurd.tasks t ON t.id = r.task_id
JOIN absurd.workflows w ON w.id = t.workflow_id
"""

_DONE = "SELECT count(*) FROM products.reprocess_progress WHERE kind = 'observation' AND state = 'done'"


def run_once(admin: str, archive: Archive, workers: int, out: Path, timeout_s: float) -> dict[str, Any]:
    """Reprocess the archive with ``workers`` one-slot worker processes; return the figures."""
    with scratch_database(admin) as dsn:
        pool = WorkerProcesses(dsn, "contimg.tasks.registry:registry", out / "logs")
        for i in range(workers):
            pool.start(list(queues.ALL), 1, f"worker-{i}")
        try:
            done = subprocess.run(
                [
                    *(sys.executable, "-m", "contimg.cli", "--log-level", "WARNING", "reprocess"),
                    *("--input-dir", str(archive.directory), "--output-dir", str(out / "products")),
                    *("--catalogue", str(archive.catalogue), "--night-poll-s", "1"),
                    *("--start", f"{archive.group_times[0]:%Y-%m-%dT%H:%M:%S}"),
                    *("--end", f"{archive.group_times[-1]:%Y-%m-%dT%H:%M:%S}"),
                    *IMAGING,
                    *("--dsn", dsn),
                ],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=timeout_s,
            )
            if done.returncode != 0:
                raise RuntimeError(f"contimg reprocess failed:\n{done.stdout}\n{done.stderr}")
        finally:
            pool.stop()
        with psycopg.connect(dsn) as conn:
            row = conn.execute(_TIMES).fetchone()
            finished = conn.execute(_DONE).fetchone()
    assert row is not None and finished is not None
    wall, busy, runs = float(row[0]), float(row[1]), int(row[2])
    n = int(finished[0])
    return {
        "workers": workers,
        "observations": n,
        "wall_s": wall,
        "obs_per_hour": n / wall * 3600,
        "task_s_per_obs": busy / n,
        "queue_overhead_s_per_obs": max(wall * workers - busy, 0.0) / n,
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its table (or JSON)."""
    parser = argparse.ArgumentParser(prog="python -m bench.reprocess", description=__doc__.splitlines()[0])
    parser.add_argument("--observations", type=int, default=6, help="archive size (with the calibrator)")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker-process counts")
    parser.add_argument("--hosts", default="1,2,4,8,16", help="host counts to project to")
    parser.add_argument("--dsn", help="a Postgres server to make scratch databases on")
    parser.add_argument("--timeout-s", type=float, default=3600.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    counts = [int(w) for w in args.workers.split(",")]
    console = Console(stderr=args.json)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-reprocess-") as tmp, admin_dsn(args.dsn) as (admin, where):
        console.print(f"simulating {args.observations} observations; database: {where}")
        archive = simulate_archive(ArchiveSettings(observations=args.observations), Path(tmp))
        for workers in counts:
            started = time.monotonic()
            results.append(run_once(admin, archive, workers, Path(tmp) / f"w{workers}", args.timeout_s))
            console.print(f"{workers} worker(s): {time.monotonic() - started:.0f} s")
    one = next((r for r in results if r["workers"] == 1), results[0])
    per_slot = one["obs_per_hour"] / one["workers"]
    projection = {int(h): per_slot * int(h) for h in args.hosts.split(",")}
    if args.json:
        print(json.dumps({"results": results, "projection_obs_per_hour": projection}, indent=2))
        return
    table = Table(title="reprocessing the archive through the whole chain", header_style="bold")
    for col in ("workers", "observations", "wall s", "obs/h", "task s/obs", "slot s/obs outside tasks"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(
            str(r["workers"]),
            str(r["observations"]),
            f"{r['wall_s']:.0f}",
            f"{r['obs_per_hour']:.0f}",
            f"{r['task_s_per_obs']:.2f}",
            f"{r['queue_overhead_s_per_obs']:.2f}",
        )
    console.print(table)
    hosts = Table(
        title="projection: one worker process per host, from the 1-worker rate", header_style="bold"
    )
    hosts.add_column("hosts", justify="right")
    hosts.add_column("obs/h", justify="right")
    # These are the simulated archive's tiny observations; real ones cost what bench.science measures.
    hosts.add_column("8,600 of these observations in", justify="right")
    for h, rate in projection.items():
        hosts.add_row(str(h), f"{rate:.0f}", f"{8600 / rate:.1f} h")
    console.print(hosts)


if __name__ == "__main__":
    main()
