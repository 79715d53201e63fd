"""How fast Postgres alone runs the queue's claim and completion, with no worker process:
``python -m bench.ceiling [--n N] [--connections 1,2] [--rounds R] [--schemas current,split]``.

On a fresh embedded Postgres, N no-op tasks are spawned, then K threads of this process, each with its
own connection, claim a batch of 256 and complete it at once until none is left. No task runs, so this is
the most a drain on this server can reach with these calls: the ceiling a worker's own CPU comes on top
of. Reported per schema and K: tasks per second (wall clock from the first claim to the last completion),
CPU per task of the server's processes (the postmaster's tree, from /proc) and of this process, and the
share of task updates that were HOT (no new index entries).

``current`` is the engine's schema (``absurd.claim``, ``absurd.complete_runs``); ``split`` is a prototype
in bench/split_schema.sql, where claimability and leases live in narrow tables and task updates can be
HOT. The engine does not use the prototype: it is here to measure what such a schema would gain.
"""

from __future__ import annotations

import argparse
import resource
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from absurd import queries
from absurd.client import Client
from absurd.logging import configure_logging
from bench.cpu import tree_cpu_s
from bench.postgres import embedded_server, scratch_database
from bench.queue.workload import reset_queue, spawn_noops

BATCH = 256
REAPED_S = 0.5
SPLIT_DDL = Path(__file__).with_name("split_schema.sql")


@dataclass(frozen=True)
class Schema:
    """The calls and counters of one schema."""

    claim: str
    complete: str
    tasks_table: str
    completed: str


SCHEMAS = {
    "current": Schema(
        claim=queries.CLAIM,
        complete=queries.COMPLETE_RUNS_PACKED,
        tasks_table="absurd.tasks",
        completed="SELECT count(*) FROM absurd.tasks WHERE state = 'completed'",
    ),
    "split": Schema(
        claim="SELECT * FROM split.claim(%s, %s, %s, %s)",
        complete=queries.COMPLETE_RUNS_PACKED.replace("absurd.complete_runs", "split.complete_runs"),
        tasks_table="split.tasks",
        completed="SELECT count(*) FROM split.tasks WHERE state = 'completed'",
    ),
}
UPDATES = "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relid = %s::regclass"


@dataclass(frozen=True)
class Ceiling:
    """One drain without workers."""

    schema: str
    connections: int
    n: int
    seconds: float
    server_cpu_s: float
    client_cpu_s: float
    updates: int
    hot_updates: int

    def line(self) -> str:
        """The figures as one line."""
        per_task = 1e6 / self.n
        hot = 100 * self.hot_updates / self.updates if self.updates else 0.0
        server, client = self.server_cpu_s * per_task, self.client_cpu_s * per_task
        return (
            f"{self.schema}, {self.connections} connection(s): {self.n / self.seconds:,.0f} tasks/s; CPU per "
            f"task: server {server:.1f} us, this process {client:.1f} us; HOT task updates {hot:.0f} %"
        )


def drive(dsn: str, schema: Schema, worker: str, claimed: list[int]) -> None:
    """Claim a batch and complete it at once, until nothing is left to claim."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        total = 0
        while rows := conn.execute(schema.claim, ("default", worker, BATCH, 30.0)).fetchall():
            conn.execute(
                schema.complete,
                (
                    "{" + ",".join(str(r[0]) for r in rows) + "}",
                    "{" + ",".join(str(r[1]) for r in rows) + "}",
                    "[" + ",".join("null" for _ in rows) + "]",
                ),
            ).fetchall()
            total += len(rows)
        conn.execute("SELECT pg_stat_force_next_flush()")  # its update counts, before the reader looks
        claimed.append(total)


def measure(client: Client, postmaster: int, name: str, n: int, connections: int) -> Ceiling:
    """Spawn ``n`` no-ops and drain them with ``connections`` threads."""
    schema = SCHEMAS[name]
    conn = client.conn
    reset_queue(conn)
    spawn_noops(client, n, 10_000)
    if name == "split":
        conn.execute("SELECT split.take_over()")
    conn.execute(f"VACUUM ANALYZE {schema.tasks_table}")  # a name from SCHEMAS, never input
    conn.execute("CHECKPOINT")  # each drain starts with the same full-page writes ahead
    before = conn.execute(UPDATES, (schema.tasks_table,)).fetchone()
    assert before is not None
    claimed: list[int] = []
    threads = [
        threading.Thread(target=drive, args=(client.dsn, schema, f"ceiling-{i}", claimed))
        for i in range(connections)
    ]
    server_before, usage_before = tree_cpu_s(postmaster), resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # The drivers' backends exit as their connections close: read once their time is in the postmaster's.
    time.sleep(REAPED_S)
    server = tree_cpu_s(postmaster) - server_before
    done = conn.execute(schema.completed).fetchone()
    if len(claimed) != connections or not done or done[0] != n:
        raise RuntimeError(f"{name}: {done[0] if done else 0} of {n} tasks completed; see the errors above")
    after = conn.execute(UPDATES, (schema.tasks_table,)).fetchone()
    assert after is not None
    return Ceiling(
        schema=name,
        connections=connections,
        n=n,
        seconds=seconds,
        server_cpu_s=server,
        client_cpu_s=(usage.ru_utime + usage.ru_stime) - (usage_before.ru_utime + usage_before.ru_stime),
        updates=after[0] - before[0],
        hot_updates=after[1] - before[1],
    )


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and print one line per drain."""
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30_000, help="tasks per drain (default 30,000)")
    parser.add_argument("--connections", default="1,2", help="connection counts (default 1,2)")
    parser.add_argument("--rounds", type=int, default=2, help="drains per setting, taking turns (default 2)")
    parser.add_argument("--schemas", default="current,split", help="any of current, split (default both)")
    args = parser.parse_args(argv)
    names = [s.strip() for s in args.schemas.split(",") if s.strip()]
    unknown = sorted(set(names) - set(SCHEMAS))
    if unknown:
        parser.error(f"unknown schema {', '.join(unknown)}; choose from {', '.join(SCHEMAS)}")
    counts = [int(c) for c in args.connections.split(",")]
    configure_logging("WARNING")
    with embedded_server() as server, scratch_database(str(server.get_uri())) as dsn:
        postmaster = int((Path(server.pgdata) / "postmaster.pid").read_text().split()[0])
        client = Client(dsn)
        try:
            if "split" in names:
                client.conn.execute(SPLIT_DDL.read_text())
            for _ in range(args.rounds):
                for connections in counts:
                    for name in names:
                        print(measure(client, postmaster, name, args.n, connections).line(), flush=True)
        finally:
            client.close()


if __name__ == "__main__":
    main()
