"""Worker processes and polling for the tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psycopg

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def start_worker(
    dsn: str, *args: str, registry: str = "tests.support.tasks:registry"
) -> subprocess.Popen[bytes]:
    """Start ``absurd worker`` as a separate process on ``dsn``."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "ABSURD_LOG_LEVEL": os.environ.get("ABSURD_LOG_LEVEL", "WARNING"),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "absurd", "worker", "--dsn", dsn, "--registry", registry, *args],
        cwd=REPO,
        env=env,
    )


def stop_worker(proc: subprocess.Popen[bytes], timeout: float = 60.0) -> int:
    """SIGTERM a worker and wait for it; SIGKILL it if it will not stop."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def wait_until(
    predicate: Callable[[], T], timeout: float = 60.0, interval: float = 0.05, what: str = ""
) -> T:
    """Poll ``predicate`` until it returns something truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or predicate}")
        time.sleep(interval)


def wait_until_lock_wait(conn: psycopg.Connection, pid: int, what: str, timeout: float = 120.0) -> None:
    """Poll until the backend ``pid`` waits on a lock: an interleaving that a test sets up on purpose."""

    def waiting() -> bool:
        row = conn.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
        return bool(row and row[0] == "Lock")

    wait_until(waiting, timeout=timeout, what=what)
