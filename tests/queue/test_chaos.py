"""Chaos: plain, hook-writing and diamond-workflow tasks drained by worker processes that are SIGKILLed
every few seconds, with one Postgres restart. Nothing may be lost, completed twice or left stuck, no join
may start with a null reference, and every hook product is written exactly once.

The default size runs in the normal suite. ``pytest -m chaos`` selects it alone; set ABSURD_CHAOS_TASKS and
ABSURD_CHAOS_WORKERS for a bigger run (``python -m bench.chaos`` does 20,000 tasks on 4 workers).
"""

from __future__ import annotations

import os

import pytest

from bench.chaos import run_chaos
from tests.support.postgres import ServerUnderTest


@pytest.mark.chaos
def test_sigkills_and_a_restart_lose_nothing_and_double_nothing(pg_server: ServerUnderTest, dsn: str) -> None:
    if pg_server.restart is None:
        pytest.skip("this server cannot be restarted by the tests")
    tasks = int(os.environ.get("ABSURD_CHAOS_TASKS", "1200"))
    workers = int(os.environ.get("ABSURD_CHAOS_WORKERS", "3"))
    kill_every_s = float(os.environ.get("ABSURD_CHAOS_KILL_EVERY_S", "2"))
    report = run_chaos(
        pg_server, dsn, tasks, workers, kill_every_s, concurrency=8, plain_s=0.3, timeout_s=500
    )
    assert report.restarts == 1 and report.kills >= 1, report
    assert report.problems() == {}, report
