"""CPU time per job of a drain, split between the worker processes and the server:
``python -m bench.cpu [--systems engine,engine-forked,pgqueuer] [--n N] [--workers W] [--rounds R]
[--batch-size B]``.

On a fresh embedded Postgres (its processes are the postmaster's children, so only they are counted), N
no-op jobs are enqueued and drained by W fresh worker processes, as ``bench.peers`` drains them. Reported
per job: the CPU time (user + system, from /proc) of the worker processes, start-up included, and of the
server's processes, the benchmark's own polling included (shown apart: its statements' wall time). CPU
time depends far less on what else runs on the machine than the drain's wall-clock rate does.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

from absurd.logging import configure_logging
from bench.postgres import embedded_server, scratch_database
from bench.processes import stop_workers
from bench.systems import System, pgq
from bench.systems.engine import EngineSystem
from bench.systems.measure import ENQUEUE_BATCH, wait_empty

TICKS = os.sysconf("SC_CLK_TCK")


def _stats() -> dict[int, list[str]]:
    """The fields of /proc/PID/stat after the command name, for every live process."""
    out: dict[int, list[str]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            out[int(stat.parent.name)] = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
    return out


def tree_cpu_s(root: int) -> float:
    """User plus system CPU seconds of a process and all its descendants: the live ones, and those that
    exited and were waited for (their time is in their parent's cutime and cstime). 0 once it has gone.
    For the postmaster, every backend; for ``absurd worker --workers W``, the worker processes it forked."""
    stats = _stats()
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        fields = stats.get(pid)
        if fields is None:
            continue
        total += sum(int(f) for f in fields[11:15]) / TICKS
        todo.extend(child for child, f in stats.items() if int(f[1]) == pid)
    return total


class TimedPolls:
    """Wraps a system's polls to add up their wall time."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.seconds = 0.0
        self.count = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.system, name)

    def unfinished(self) -> bool:
        """The wrapped system's answer, timed."""
        return self._timed(self.system.unfinished)

    def any_done(self) -> bool:
        """The wrapped system's answer, timed."""
        return self._timed(self.system.any_done)

    def _timed(self, poll: Callable[[], bool]) -> bool:
        start = time.perf_counter()
        try:
            return poll()
        finally:
            self.seconds += time.perf_counter() - start
            self.count += 1


def drain_cpu(system: System, postmaster: int, n: int, processes: int) -> str:
    """One drain's figures, as a line."""
    system.reset()
    system.enqueue(n, ENQUEUE_BATCH)
    system.analyze()
    polls = TimedPolls(system)
    server_before = tree_cpu_s(postmaster)
    launched = time.monotonic()
    procs = system.launch(processes)
    try:
        wait_empty(polls, procs, timeout_s=max(120.0, n / 50))  # type: ignore[arg-type]
        seconds = time.monotonic() - launched
        workers = sum(tree_cpu_s(p.pid) for p in procs)  # read before they exit
        server = tree_cpu_s(postmaster) - server_before
    finally:
        stop_workers(procs)
    per_job = 1e6 / n
    return (
        f"{system.label}, W={processes}: {n / seconds:,.0f} jobs/s; CPU per job: workers "
        f"{workers * per_job:.0f} us, server {server * per_job:.0f} us (of which the benchmark's "
        f"{polls.count} polls took up to {polls.seconds * per_job:.0f} us)"
    )


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and print one line per drain."""
    parser = argparse.ArgumentParser(prog="python -m bench.cpu", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--systems",
        default="engine,pgqueuer",
        help="any of engine, engine-forked (one absurd worker --workers W), pgqueuer (default: the first "
        "and the last)",
    )
    parser.add_argument("--n", type=int, default=30_000, help="jobs per drain (default 30,000)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--rounds", type=int, default=2, help="drains per system, taking turns (default 2)")
    parser.add_argument(
        "--concurrency", type=int, default=256, help="this engine's slots per process (default 256)"
    )
    parser.add_argument("--batch-size", type=int, default=100, help="PgQueuer's batch size (default 100)")
    args = parser.parse_args(argv)
    names = [s.strip() for s in args.systems.split(",") if s.strip()]
    if "pgqueuer" in names and not pgq.available():
        raise SystemExit(pgq.MISSING)
    configure_logging("WARNING")
    with embedded_server() as server, scratch_database(str(server.get_uri())) as dsn:
        postmaster = int((Path(server.pgdata) / "postmaster.pid").read_text().split()[0])
        systems: list[System] = []
        for name in names:
            if name in ("engine", "engine-forked"):
                systems.append(EngineSystem(dsn, args.concurrency, forked=name == "engine-forked"))
            else:
                pgq.install_schema(dsn)
                systems.append(pgq.PgQueuerSystem(dsn, args.batch_size))
        try:
            for _ in range(args.rounds):
                for system in systems:
                    print(drain_cpu(system, postmaster, args.n, args.workers), flush=True)
        finally:
            for system in systems:
                system.close()


if __name__ == "__main__":
    main()
