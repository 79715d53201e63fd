"""Fixtures for the pipeline tests: the science tasks run by a real worker on a real Postgres.

One database and one worker (two child processes, so CASA is imported twice, not per task) serve
the whole package; tests tell their products apart by path. The simulated observations are the
science suite's session fixture, converted here through ``convert-uvh5`` tasks.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from absurd.client import Client
from absurd.maintenance import ReaperSettings
from absurd.worker import Worker, WorkerSettings
from contimg.tasks import queues
from contimg.tasks.params import ConvertResult
from contimg.tasks.registry import registry
from science.convert import ConversionRecord
from tests.science.conftest import SimulatedPair, simulated_pair  # noqa: F401  (a fixture, re-used)
from tests.support.postgres import ServerUnderTest, fresh_database
from tests.support.processes import wait_until

TERMINAL = ("completed", "failed", "cancelled")


@dataclass(frozen=True)
class Pipeline:
    """The package's database, a client on it, and helpers to wait for tasks."""

    dsn: str
    client: Client
    work: Path

    def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of a query on the products database."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()

    def state(self, task_id: int) -> str:
        """The task's state now."""
        return str(self.client.get_task(task_id)["state"])

    def finish(self, task_id: int, timeout: float = 300.0) -> dict[str, Any]:
        """Wait until the task is completed, failed or cancelled; return its row."""
        wait_until(
            lambda: self.state(task_id) in TERMINAL, timeout=timeout, interval=0.2, what=f"task {task_id}"
        )
        return self.client.get_task(task_id)

    def run(self, name: str, params: dict[str, Any], timeout: float = 300.0) -> Any:
        """Spawn a task, wait for it, and return its result; fail the test with its error otherwise."""
        task_id = self.client.spawn(name, params).task_id
        row = self.finish(task_id, timeout)
        assert row["state"] == "completed", f"{name} task {task_id} ended {row['state']}: {row['last_error']}"
        return row["result"]


@pytest.fixture(scope="session")
def pipeline(pg_server: ServerUnderTest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """A migrated database with a worker serving every science queue."""
    with fresh_database(pg_server) as dsn:
        settings = WorkerSettings(
            queues=list(queues.ALL),
            concurrency=3,
            processes=2,
            poll_s=0.2,
            reaper=ReaperSettings(interval_s=0.5),
            shutdown_grace_s=10.0,
        )
        worker = Worker(registry, settings, dsn)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        with Client(dsn, registry=registry) as client:
            try:
                yield Pipeline(dsn, client, tmp_path_factory.mktemp("pipeline"))
            finally:
                worker.stop()
                thread.join(timeout=30)


@dataclass(frozen=True)
class Converted:
    """The simulated pair's Measurement Sets, as the convert-uvh5 tasks recorded them."""

    calibrator: ConversionRecord
    target: ConversionRecord
    ms_dir: Path


@pytest.fixture(scope="session")
def converted(pipeline: Pipeline, simulated_pair: SimulatedPair) -> Converted:  # noqa: F811
    """Both observations converted by tasks: the calibrator found by time, the target by its files."""
    ms_dir = pipeline.work / "ms"
    cal_id = pipeline.client.spawn(
        "convert-uvh5",
        {
            "input_dir": str(simulated_pair.calibrator_dir),
            "group_time": simulated_pair.calibrator.start_time.isoformat(),
            "output_dir": str(ms_dir),
        },
    ).task_id
    target_id = pipeline.client.spawn(
        "convert-uvh5",
        {"input_files": [str(p) for p in simulated_pair.target.subband_paths], "output_dir": str(ms_dir)},
    ).task_id
    records = []
    for task_id in (cal_id, target_id):
        row = pipeline.finish(task_id)
        assert row["state"] == "completed", row["last_error"]
        records.append(ConvertResult.model_validate(row["result"]).record)
    return Converted(calibrator=records[0], target=records[1], ms_dir=ms_dir)
