"""The side-by-side measurements, the same for every system.

- enqueue: N no-op jobs through the system's bulk API in batches of 10,000; jobs per second.
- drain: the wall clock (``time.monotonic``) from launching W worker processes, start-up included, until
  the system reports no job left (polled every 50 ms), for the N jobs just enqueued.
- latency: a light steady load (``rate`` single spawns per second for ``seconds``) on one worker process
  that has settled; each job's spawn-to-start on the database clock.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass

from bench.processes import check_alive, stop_workers
from bench.queue.latency import percentiles
from bench.systems import System

ENQUEUE_BATCH = 10_000
POLL_S = 0.05
WARM_UP_JOBS = 20


@dataclass(frozen=True)
class Drain:
    """One drain: N jobs enqueued, then drained by W processes."""

    n: int
    processes: int
    enqueue_per_s: float
    drain_s: float
    # From launch until the first poll that saw a job done: mostly the workers' start-up.
    first_done_s: float

    @property
    def drain_per_s(self) -> float:
        """Jobs per second over the drain's wall-clock time."""
        return self.n / self.drain_s


@dataclass(frozen=True)
class Latency:
    """Spawn-to-start under a steady load."""

    samples: int
    p50_ms: float
    p99_ms: float


def wait_empty(system: System, procs: list[subprocess.Popen[bytes]], timeout_s: float) -> float | None:
    """Poll until the system has no job left; fail if a worker dies or the deadline passes. Returns when
    (``time.monotonic``) a poll first saw a job done, if one did."""
    deadline = time.monotonic() + timeout_s
    first_done = None
    while system.unfinished():
        check_alive(procs)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{system.label}: jobs left after {timeout_s:.0f} s")
        time.sleep(POLL_S)
        if first_done is None and system.any_done():
            first_done = time.monotonic()
    return first_done


def measure_drain(system: System, n: int, processes: int) -> Drain:
    """Enqueue ``n`` no-ops (timed), then time ``processes`` fresh workers emptying the queue."""
    system.reset()
    start = time.perf_counter()
    system.enqueue(n, ENQUEUE_BATCH)
    enqueue_s = time.perf_counter() - start
    system.analyze()
    launched = time.monotonic()
    procs = system.launch(processes)
    try:
        first_done = wait_empty(system, procs, timeout_s=max(120.0, n / 50))
        emptied = time.monotonic()
    finally:
        stop_workers(procs)
    done = system.completed()
    if done != n:
        raise RuntimeError(f"{system.label}: {done} of {n} jobs completed after the drain")
    return Drain(
        n=n,
        processes=processes,
        enqueue_per_s=n / enqueue_s,
        drain_s=emptied - launched,
        # No poll saw a job done before none was left (the last batch committed between two polls).
        first_done_s=(first_done or emptied) - launched,
    )


def measure_latency(system: System, rate: float, seconds: float) -> Latency:
    """Spawn one job every ``1 / rate`` s for ``seconds`` to one worker process that has started and
    served a few jobs; p50 and p99 of spawn-to-start over the jobs of the steady load."""
    system.reset()
    procs = system.launch(1)
    try:
        for _ in range(WARM_UP_JOBS):
            system.spawn_one()
        wait_empty(system, procs, timeout_s=120.0)
        time.sleep(1.0)  # let the worker go back to waiting for work
        since = system.clock()
        total = round(rate * seconds)
        start = time.monotonic()
        for i in range(total):
            ahead = start + i / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
            system.spawn_one()
        wait_empty(system, procs, timeout_s=120.0)
    finally:
        stop_workers(procs)
    values = system.latencies_ms(since)
    if len(values) != total:
        raise RuntimeError(f"{system.label}: {len(values)} of {total} steady-load jobs were timed")
    p50, p99 = percentiles(values)
    return Latency(samples=total, p50_ms=p50, p99_ms=p99)
