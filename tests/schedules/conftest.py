"""Fixtures for schedule tests: writing schedule files, syncing them, and a settable clock."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from absurd.builtin_tasks import builtin
from absurd.schedules import load_paths
from absurd.schedules.sync import sync

Sync = Callable[..., None]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a schedule file (dedented) under tmp_path/schedules and return its path."""
    directory = tmp_path / "schedules"
    directory.mkdir(exist_ok=True)

    def write_file(name: str, text: str) -> Path:
        path = directory / name
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return write_file


@pytest.fixture
def sync_text(dsn: str, write: Callable[[str, str], Path]) -> Callable[..., None]:
    """Write one schedule file and sync it at ``now``."""

    def run(text: str, now: datetime | None = None, name: str = "s.yaml") -> None:
        path = write(name, text)
        loaded, problems = load_paths([path.parent], builtin)
        assert not problems, [str(p) for p in problems]
        with psycopg.connect(dsn, autocommit=True) as conn:
            sync(conn, loaded, now=now or datetime.now(UTC))

    return run


def count(dsn: str, sql: str, *args: object) -> int:
    """A single integer from ``sql``."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(sql, args).fetchone()
    assert row is not None
    return int(row[0])
