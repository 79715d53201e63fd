"""Fixtures for queue tests: an in-process worker on the test database."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import psycopg
import pytest

from absurd.maintenance import ReaperSettings
from absurd.worker import Worker, WorkerSettings
from tests.support.tasks import EFFECTS_DDL, registry

StartWorker = Callable[..., Worker]


@pytest.fixture
def effects(dsn: str) -> Callable[[str | None], list[tuple[int, str]]]:
    """Create the effects table; return a reader of (task_id, label) rows."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(EFFECTS_DDL)

    def read(label: str | None = None) -> list[tuple[int, str]]:
        with psycopg.connect(dsn, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT task_id, label FROM test_effects WHERE %s::text IS NULL OR label = %s ORDER BY at",
                (label, label),
            ).fetchall()
        return [(int(a), str(b)) for a, b in rows]

    return read


@pytest.fixture
def start_worker(dsn: str) -> Iterator[StartWorker]:
    """Start in-process workers (in threads) that are stopped after the test."""
    started: list[tuple[Worker, threading.Thread]] = []

    def start(**settings: object) -> Worker:
        defaults: dict[str, object] = {
            "poll_s": 0.2,
            "reaper": ReaperSettings(interval_s=0.5),
            "shutdown_grace_s": 5.0,
        }
        worker = Worker(registry, WorkerSettings(**{**defaults, **settings}), dsn)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        started.append((worker, thread))
        return worker

    yield start
    for worker, _ in started:
        worker.stop()
    for _, thread in started:
        thread.join(timeout=30)


def pytest_configure(config: pytest.Config) -> None:
    """Register the chaos marker (``pytest -m chaos`` runs the chaos suite alone)."""
    config.addinivalue_line("markers", "chaos: worker SIGKILLs and a Postgres restart under load")
