"""Each run's log tail: what a task logs is kept, bounded, per run, in threads and child processes, while it
runs and when it ends however it ends; a run that logs nothing writes nothing; the tail goes with its task."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
import pytest
import structlog

from absurd.client import Client
from absurd.options import FixedDelay
from absurd.worker import run_log
from tests.queue.conftest import StartWorker
from tests.queue.test_cli import invoke
from tests.support.processes import wait_until


def _tail(client: Client, task_id: int) -> list[dict[str, Any]]:
    return [r["log"] for r in client.runs(task_id, logs=True)]


def _texts(log: dict[str, Any]) -> list[str]:
    return [line["text"].split(" pad=")[0] for line in log["lines"]]


def test_a_failed_run_keeps_what_it_logged_before_its_error(
    client: Client, start_worker: StartWorker
) -> None:
    start_worker()
    task_id = client.spawn(
        "chatty", {"lines": 3, "stdlib": True, "fail": True}, max_attempts=2, retry=FixedDelay(base_s=0.05)
    ).task_id
    wait_until(lambda: client.get_task(task_id)["state"] == "failed", timeout=30, what="the task to fail")
    runs = client.runs(task_id, logs=True)
    assert [r["state"] for r in runs] == ["failed", "failed"]
    for run in runs:
        log = run["log"]
        assert log is not None, f"attempt {run['attempt']} has no log tail"
        assert _texts(log) == [
            "line 1 of 3",
            "line 2 of 3",
            "line 3 of 3",
            "from the standard library logger=tests.chatty",
        ]
        assert [line["level"] for line in log["lines"]] == ["warning"] * 4
        stamps = [datetime.fromisoformat(line["at"]) for line in log["lines"]]
        assert stamps == sorted(stamps) and run["started_at"] <= stamps[0] <= run["finished_at"]
        assert log["dropped"] == 0
        assert "chatty failed after logging" in run["error"]["traceback"]
    # One tail per run, not one per task.
    rows = client.conn.execute(
        "SELECT count(DISTINCT run_id) FROM absurd.run_logs WHERE task_id = %s", (task_id,)
    )
    assert rows.fetchone() == (2,)


def test_task_show_prints_the_end_of_each_attempts_log(
    dsn: str, client: Client, start_worker: StartWorker
) -> None:
    start_worker()
    task_id = client.spawn("chatty", {"lines": 3, "fail": True}).task_id
    wait_until(lambda: client.get_task(task_id)["state"] == "failed", timeout=30, what="the task to fail")
    code, out = invoke(dsn, "task", "show", str(task_id), "--log-lines", "2")
    assert code == 0
    assert "log of attempt 1 (1 earlier lines not shown)" in out
    assert "WARNING  line 2 of 3" in out and "WARNING  line 3 of 3" in out and "line 1 of 3" not in out
    code, out = invoke(dsn, "task", "show", str(task_id), "--json")
    [run] = json.loads(out)["runs"]
    assert _texts(run["log"]) == ["line 1 of 3", "line 2 of 3", "line 3 of 3"]


def test_the_tail_keeps_the_newest_lines_within_its_bounds(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    many = client.spawn("chatty", {"lines": run_log.MAX_LINES + 300}).task_id
    wide = client.spawn("chatty", {"lines": 60, "pad": 3000}).task_id
    client.wait_result(many, 30)
    client.wait_result(wide, 30)
    [log] = _tail(client, many)
    assert len(log["lines"]) == run_log.MAX_LINES and log["dropped"] == 300
    assert _texts(log)[0] == "line 301 of 500" and _texts(log)[-1] == "line 500 of 500"
    [log] = _tail(client, wide)
    kept = sum(len(line["text"]) for line in log["lines"])
    assert kept <= run_log.MAX_BYTES and log["dropped"] > 0
    assert log["dropped"] + len(log["lines"]) == 60 and _texts(log)[-1] == "line 60 of 60"


def test_a_child_process_run_keeps_its_tail(client: Client, start_worker: StartWorker) -> None:
    start_worker(processes=1)
    task_id = client.spawn("chatty-process", {"lines": 2, "fail": True}).task_id
    wait_until(lambda: client.get_task(task_id)["state"] == "failed", timeout=60, what="the child's run")
    [log] = _tail(client, task_id)
    assert log is not None and _texts(log) == ["line 1 of 2", "line 2 of 2"]


def test_a_child_killed_at_its_timeout_keeps_what_it_logged(
    client: Client, start_worker: StartWorker
) -> None:
    # The child (started by forkserver, so FLUSH_EVERY_S is its default 10 s) logs two lines, then stays
    # quiet past its 1 s timeout; the pool kills it (SIGTERM, which children ignore, then SIGKILL 3 s later)
    # long before a periodic write would come. Past its deadline the tail is written at once.
    start_worker(processes=1)
    task_id = client.spawn("chatty-process", {"lines": 2, "quiet_s": 60}, timeout_s=1.0).task_id
    wait_until(lambda: client.get_task(task_id)["state"] == "failed", timeout=60, what="the timeout")
    [run] = client.runs(task_id, logs=True)
    assert run["failure_reason"] == "timeout"
    assert run["log"] is not None and _texts(run["log"]) == ["line 1 of 2", "line 2 of 2"]


def test_a_silent_long_run_shows_what_it_logged_and_a_cancelled_run_keeps_it(
    client: Client, start_worker: StartWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_log, "FLUSH_EVERY_S", 0.3)
    start_worker(lease_s=3)  # the cancel is seen at the next lease renewal
    task_id = client.spawn("chatty", {"lines": 2, "quiet_s": 60}).task_id

    # Written while the run is still going and logging nothing more: the page shows progress, not only a
    # post-mortem.
    def stored() -> int:
        tails = _tail(client, task_id)
        return len(tails[0]["lines"]) if tails and tails[0] else 0

    wait_until(lambda: stored() == 2, timeout=30, what="both lines stored while the run is silent")
    assert client.get_task(task_id)["state"] == "running"
    client.cancel(task_id)
    wait_until(lambda: client.get_task(task_id)["state"] == "cancelled", timeout=30, what="the cancel")
    [log] = _tail(client, task_id)
    assert _texts(log) == ["line 1 of 2", "line 2 of 2"]


def test_a_run_that_logs_nothing_writes_nothing(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    ids = [client.spawn("noop", {}).task_id for _ in range(20)]
    for task_id in ids:
        client.wait_result(task_id, 30)
    assert client.conn.execute("SELECT count(*) FROM absurd.run_logs").fetchone() == (0,)
    assert all(log is None for task_id in ids for log in _tail(client, task_id))


class _CountingSource:
    """A connection source that counts what it lends."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.lent = 0

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        self.lent += 1
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            yield conn


def test_capture_asks_for_no_connection_unless_something_was_logged(client: Client, dsn: str) -> None:
    source = _CountingSource(dsn)
    with run_log.captured(1, 1, source):
        pass
    assert source.lent == 0
    task_id = client.spawn("echo", {}).task_id
    claimed = client.conn.execute("SELECT * FROM absurd.claim('default', 'tester', 1, 30)").fetchone()
    assert claimed is not None
    run_id = claimed[1]
    with run_log.captured(task_id, run_id, source) as tail:
        structlog.get_logger("t").warning("one line", n=1)
    assert source.lent == 1 and [line["text"] for line in tail.lines] == ["one line n=1"]
    assert _tail(client, task_id)[0]["lines"][0]["text"] == "one line n=1"


def test_a_pruned_task_takes_its_tail_with_it(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    task_id = client.spawn("chatty", {"lines": 2}).task_id
    client.wait_result(task_id, 30)
    assert _tail(client, task_id)[0] is not None
    client.conn.execute(
        "UPDATE absurd.tasks SET finished_at = now() - interval '1 day' WHERE id = %s", (task_id,)
    )
    assert client.cleanup(3600) >= 1
    assert client.conn.execute(
        "SELECT count(*) FROM absurd.run_logs WHERE task_id = %s", (task_id,)
    ).fetchone() == (0,)
