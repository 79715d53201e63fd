"""The chaos run: ``python -m bench.chaos [--tasks N] [--workers W] [--kill-every-s S] [--diamonds-only]
[--no-restart] [--json]``.

Plain, hook-writing and diamond-workflow tasks (whose joins take their parents' results through
``${step.result...}`` references) are drained by W real ``absurd worker`` processes while a random worker
is SIGKILLed (and replaced) every few seconds and Postgres is restarted once, half way. Then the database
is asked: how many tasks were lost, completed twice or left stuck, how many joins started with a null
reference, and whether every hook product was written exactly once. Every count should be 0.

It runs on a fresh embedded Postgres (pgserver) in a temporary directory. ``tests/queue/test_chaos.py``
runs the same at a small size in the normal suite.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import time
from dataclasses import asdict, dataclass

import psycopg

from absurd.client import Client
from absurd.workflow_spec import parse_spec
from bench.postgres import count
from bench.processes import stop_workers
from tests.support.postgres import ServerUnderTest, fresh_database, make_template, session_server
from tests.support.processes import start_worker
from tests.support.tasks import EFFECTS_DDL

DIAMOND = parse_spec(
    {
        "name": "chaos-diamond",
        "tasks": [
            {"name": "a", "type": "echo", "params": {"v": "A"}},
            {"name": "b", "type": "echo", "params": {"v": "B"}},
            {
                "name": "join",
                "type": "echo",
                "depends_on": ["a", "b"],
                "params": {"from_a": "${a.result.v}", "from_b": "${b.result.v}"},
            },
        ],
    }
)


UNFINISHED = "SELECT count(*) FROM absurd.tasks WHERE state NOT IN ('completed', 'failed', 'cancelled')"


@dataclass
class ChaosReport:
    """What a chaos run did and what the database shows afterwards."""

    tasks: int
    workers: int
    kills: int
    restarts: int
    seconds: float
    lost: int
    completed_twice: int
    stuck: int
    null_joins: int
    hook_products_missing: int
    hook_products_doubled: int

    def problems(self) -> dict[str, int]:
        """The counts that must be 0."""
        keys = (
            "lost",
            "completed_twice",
            "stuck",
            "null_joins",
            "hook_products_missing",
            "hook_products_doubled",
        )
        return {k: getattr(self, k) for k in keys if getattr(self, k)}


def _count(dsn: str, sql: str) -> int:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        return count(conn, sql)


def spawn_mix(client: Client, n: int, plain_s: float, diamonds_only: bool = False) -> None:
    """About a third each: plain tasks (``sleep`` for ``plain_s``, so runs are in flight when a worker is
    killed), hook-writing tasks, and diamonds of three tasks; or only diamonds."""
    client.conn.execute(EFFECTS_DDL)
    third = 0 if diamonds_only else n // 3
    client.spawn_many("sleep", [{"seconds": plain_s, "heartbeat_every_s": 0.1}] * third)
    client.spawn_many("effect", [{}] * third)
    for _ in range((n - 2 * third) // 3):
        client.submit_workflow(DIAMOND)


def run_chaos(
    server: ServerUnderTest,
    dsn: str,
    tasks: int,
    workers: int,
    kill_every_s: float = 2.0,
    lease_s: float = 5.0,
    concurrency: int = 8,
    plain_s: float = 0.2,
    diamonds_only: bool = False,
    restart: bool = True,
    timeout_s: float = 3600.0,
    seed: int = 7,
) -> ChaosReport:
    """Spawn the mix on ``dsn``, drain it under kills and one restart of ``server``, and count.

    The victim of each kill is a random worker among those up for at least twice ``kill_every_s``: a
    worker killed while still starting would do nothing, and one must live long enough to reap.
    """
    rng = random.Random(seed)
    with Client(dsn) as client:
        spawn_mix(client, tasks, plain_s, diamonds_only)
    total = _count(dsn, "SELECT count(*) FROM absurd.tasks")
    args = ("--concurrency", str(concurrency), "--lease-s", str(lease_s))
    procs: list[subprocess.Popen[bytes]] = [start_worker(dsn, *args) for _ in range(workers)]
    born = [time.monotonic()] * workers
    kills = restarts = 0
    started = time.monotonic()
    next_kill = started + kill_every_s
    unfinished = total
    try:
        while time.monotonic() - started < timeout_s:
            try:
                unfinished = _count(dsn, UNFINISHED)
            except psycopg.OperationalError:
                time.sleep(0.5)  # the restart
                continue
            if unfinished == 0:
                break
            if restart and restarts == 0 and unfinished <= total // 2 and server.restart is not None:
                server.restart()
                restarts += 1
            now = time.monotonic()
            old_enough = [i for i in range(workers) if now - born[i] >= 2 * kill_every_s]
            if kill_every_s > 0 and now >= next_kill and old_enough:
                victim = rng.choice(old_enough)
                procs[victim].send_signal(signal.SIGKILL)
                procs[victim].wait()
                procs[victim] = start_worker(dsn, *args)
                born[victim] = time.monotonic()
                kills += 1
                next_kill = time.monotonic() + kill_every_s
            time.sleep(0.2)
    finally:
        stop_workers(procs, timeout=60.0)
    seconds = time.monotonic() - started
    return ChaosReport(
        tasks=total,
        workers=workers,
        kills=kills,
        restarts=restarts,
        seconds=round(seconds, 1),
        # Ended failed or cancelled (none may), or gone from the table altogether.
        lost=_count(dsn, "SELECT count(*) FROM absurd.tasks WHERE state IN ('failed', 'cancelled')")
        + total
        - _count(dsn, "SELECT count(*) FROM absurd.tasks"),
        completed_twice=_count(
            dsn,
            "SELECT count(*) FROM (SELECT task_id FROM absurd.runs WHERE state = 'completed' "
            "GROUP BY task_id HAVING count(*) > 1) d",
        ),
        stuck=_count(dsn, UNFINISHED),
        null_joins=_count(
            dsn,
            "SELECT count(*) FROM absurd.tasks WHERE step_name = 'join' AND state = 'completed' "
            'AND result IS DISTINCT FROM \'{"from_a": "A", "from_b": "B"}\'::jsonb',
        ),
        hook_products_missing=_count(
            dsn,
            "SELECT count(*) FROM absurd.tasks t WHERE t.name = 'effect' AND t.state = 'completed' "
            "AND NOT EXISTS (SELECT 1 FROM test_effects e WHERE e.task_id = t.id)",
        ),
        hook_products_doubled=_count(
            dsn,
            "SELECT count(*) FROM (SELECT task_id FROM test_effects GROUP BY task_id HAVING count(*) > 1) d",
        ),
    )


def main() -> None:
    """Run once on a fresh embedded Postgres and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--kill-every-s", type=float, default=2.0, help="0: no kills")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--diamonds-only", action="store_true", help="spawn only diamond workflows")
    parser.add_argument("--no-restart", action="store_true", help="do not restart Postgres")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with session_server() as server:
        make_template(server)
        with fresh_database(server) as dsn:
            report = run_chaos(
                server,
                dsn,
                args.tasks,
                args.workers,
                args.kill_every_s,
                concurrency=args.concurrency,
                diamonds_only=args.diamonds_only,
                restart=not args.no_restart,
            )
    if args.json:
        print(json.dumps(asdict(report)))
    else:
        for key, value in asdict(report).items():
            print(f"{key:>22}  {value}")
    raise SystemExit(1 if report.problems() else 0)


if __name__ == "__main__":
    main()
