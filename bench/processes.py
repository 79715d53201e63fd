"""``absurd worker`` processes for the benchmarks: started and stopped together, watched while they work.

One worker is started the way the tests start one (``tests.support.processes``), so the benchmarks and
the tests run the same command line.
"""

from __future__ import annotations

import compileall
import functools
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.processes import REPO, start_worker

# The built-in tasks: ``noop`` measures the queue's own overhead.
BUILTIN_REGISTRY = "absurd.builtin_tasks:builtin"


@functools.cache
def compile_engine() -> None:
    """Write the engine's bytecode once, as installing the package does. Without it, a worker started
    under ``PYTHONDONTWRITEBYTECODE`` (set on some machines) compiles every module of ``absurd`` from
    source at each start, about 0.5 s of CPU that no installed deployment pays; PgQueuer, installed in
    site-packages, is compiled already."""
    compileall.compile_dir(REPO / "absurd", quiet=1)


def start_workers(
    dsn: str, count: int, concurrency: int, registry: str = BUILTIN_REGISTRY, forked: bool = False
) -> list[subprocess.Popen[bytes]]:
    """Start ``count`` ``absurd worker`` processes with ``concurrency`` task slots each, from compiled
    bytecode (``compile_engine``): ``count`` commands, or with ``forked`` one ``absurd worker --workers
    count``, which forks them once it has started up."""
    compile_engine()
    options = ["--concurrency", str(concurrency), "--log-level", "WARNING", "--shutdown-grace-s", "5"]
    if forked:
        return [start_worker(dsn, *options, "--workers", str(count), registry=registry)]
    return [start_worker(dsn, *options, registry=registry) for _ in range(count)]


def stop_workers(procs: list[subprocess.Popen[bytes]], timeout: float = 30.0) -> None:
    """SIGTERM every process at once (once: a second SIGTERM ends a worker's grace period), then wait
    for each; SIGKILL any that will not stop."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout)
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


def check_alive(procs: list[subprocess.Popen[bytes]]) -> None:
    """Stop the benchmark if a worker died, rather than waiting for work that will never finish."""
    for proc in procs:
        if proc.poll() is not None:
            raise RuntimeError(f"worker pid {proc.pid} exited with code {proc.returncode}; see its log above")


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc/PID/status (KiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS line for pid {pid}")


def loadavg() -> str:
    """The first three fields of /proc/loadavg."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"
