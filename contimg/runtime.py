"""Run worker pools as child processes of a daemon (the demo, tests): start, watch, stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


class WorkerProcesses:
    """A set of ``absurd worker`` processes on one database."""

    def __init__(self, dsn: str, registry: str, log_dir: Path) -> None:
        self.dsn = dsn
        self.registry = registry
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, queues: Sequence[str], concurrency: int, name: str, extra: Sequence[str] = ()) -> None:
        """Start one worker process serving ``queues``; its log goes to ``log_dir/name.log``."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        args = [
            sys.executable,
            "-m",
            "absurd",
            "worker",
            "--dsn",
            self.dsn,
            "--registry",
            self.registry,
            "--concurrency",
            str(concurrency),
            *extra,
        ]
        for q in queues:
            args += ["--queue", q]
        log = (self.log_dir / f"{name}.log").open("ab")
        env = {**os.environ, "ABSURD_LOG_LEVEL": os.environ.get("ABSURD_LOG_LEVEL", "INFO")}
        self.procs.append(subprocess.Popen(args, stdout=log, stderr=log, env=env))

    def alive(self) -> int:
        """How many are still running."""
        return sum(p.poll() is None for p in self.procs)

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM all (graceful), then SIGKILL any that outlive ``timeout``."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
