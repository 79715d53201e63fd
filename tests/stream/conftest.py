"""Fixtures for the streaming converter: tiny simulated observations, a convert worker, the daemon.

The daemon runs as ``contimg stream run`` in its own process, so a test can SIGKILL it; its log goes
to a file the test can read. The worker serving the ``convert`` queue runs in a thread of the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from absurd.maintenance import ReaperSettings
from absurd.worker import Worker, WorkerSettings
from contimg.tasks.registry import registry
from science.constants import TILE_DURATION_S
from science.grouping import FILENAME_TIME_FORMAT, parse_subband_path
from science.simulate import ObservationConfig, SimulatedObservation, simulate_observation
from tests.support.processes import REPO

# Short enough to keep the suite quick, long enough for the first daemon to seal A (and be killed) before
# C's first half times out. The restart may take longer: files already on disk hold a timed-out group.
SUBBAND_TIMEOUT_S = 20.0
NIGHT_START = datetime(2025, 6, 2, 3, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def observations(tmp_path_factory: pytest.TempPathFactory) -> list[SimulatedObservation]:
    """Three consecutive tiny observations (24 antennas, 1 channel per subband, 2 integrations)."""
    root = tmp_path_factory.mktemp("night")
    return [
        simulate_observation(
            ObservationConfig(
                start_time=NIGHT_START + timedelta(seconds=i * TILE_DURATION_S),
                dec_deg=40.0,
                n_antennas=24,
                n_channels=1,
                n_integrations=2,
                seed=i,
            ),
            root / f"obs{i}",
        )
        for i in range(3)
    ]


def group_id_of(paths: list[Path]) -> str:
    """The id a group of these files gets: its earliest file-name time."""
    stamps = []
    for path in paths:
        parsed = parse_subband_path(path)
        assert parsed is not None
        stamps.append(parsed.timestamp)
    return min(stamps).strftime(FILENAME_TIME_FORMAT)


def renamed(path: Path, shift_s: float, directory: Path) -> Path:
    """A copy of a subband file whose name time is shifted by ``shift_s``."""
    parsed = parse_subband_path(path)
    assert parsed is not None
    stamp = (parsed.timestamp + timedelta(seconds=shift_s)).strftime(FILENAME_TIME_FORMAT)
    directory.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(path, directory / f"{stamp}_sb{parsed.subband:02d}.hdf5"))


def deliver(paths: list[Path], incoming: Path, pause_s: float = 0.05) -> None:
    """Copy files into the incoming directory one by one, as the correlator would write them."""
    for path in paths:
        shutil.copy(path, incoming / path.name)
        time.sleep(pause_s)


@dataclass
class StreamRun:
    """A database with a convert worker, and a way to start the daemon on it."""

    dsn: str
    incoming: Path
    output: Path
    logs: Path

    def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of a query on the test's database."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()

    def start_daemon(
        self, name: str, *args: str, timeout_s: float = SUBBAND_TIMEOUT_S
    ) -> subprocess.Popen[bytes]:
        """Start ``contimg stream run`` on the incoming directory; its log goes to ``logs/<name>.log``."""
        env = {**os.environ, "PYTHONPATH": str(REPO), "ABSURD_LOG_LEVEL": "INFO"}
        command = [
            sys.executable,
            "-c",
            "from contimg.cli import app; app()",
            "stream",
            "run",
            "--incoming",
            str(self.incoming),
            "--output-dir",
            str(self.output),
            "--dsn",
            self.dsn,
            "--subband-timeout-s",
            str(timeout_s),
            *args,
        ]
        with (self.logs / f"{name}.log").open("wb") as log:
            return subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)

    def log_text(self) -> str:
        """Everything the daemons logged so far."""
        return "".join(p.read_text() for p in sorted(self.logs.glob("*.log")))


def new_stream_run(dsn: str, root: Path) -> StreamRun:
    """A StreamRun on ``dsn`` with empty incoming and log directories under ``root``."""
    run = StreamRun(dsn, root / "incoming", root / "ms", root / "logs")
    for directory in (run.incoming, run.logs):
        directory.mkdir()
    return run


@pytest.fixture
def stream_run(dsn: str, tmp_path: Path) -> Iterator[StreamRun]:
    """A fresh database whose ``convert`` queue is served by a worker, and empty directories."""
    run = new_stream_run(dsn, tmp_path)
    settings = WorkerSettings(
        queues=["convert"],
        concurrency=2,
        processes=2,
        poll_s=0.2,
        reaper=ReaperSettings(interval_s=0.5),
        shutdown_grace_s=10.0,
    )
    worker = Worker(registry, settings, dsn)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield run
    finally:
        worker.stop()
        thread.join(timeout=30)
