"""Durable steps, sleeps, events, cancellation and the lease fence."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, tzinfo

import pytest

import absurd.context
from absurd import queries
from absurd.client import Client
from absurd.errors import TaskFailedError
from absurd.options import FixedDelay
from tests.queue.conftest import StartWorker
from tests.support.processes import wait_until


def test_retry_replays_finished_steps(client: Client, start_worker: StartWorker, effects) -> None:
    start_worker()
    task = client.spawn("three-steps", {}, retry=FixedDelay(base_s=0.05))
    assert client.wait_result(task.task_id, 30) == {"sum": 6}
    # Steps one and two ran once, on the failed first attempt; the retry ran only step three.
    assert [label for _, label in effects()] == ["one", "two", "three"]
    assert [r["state"] for r in client.runs(task.task_id)] == ["failed", "completed"]


def test_event_emitted_after_the_wait_wakes_the_task(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    task = client.spawn("await-event", {"event": "caltable-ready:2026-11-22"})
    wait_until(lambda: client.get_task(task.task_id)["state"] == "sleeping", what="the task to park")
    parked = client.get_task(task.task_id)
    assert parked["worker_id"] is None and parked["wait_event"] == "caltable-ready:2026-11-22"
    assert client.emit_event("caltable-ready:2026-11-22", {"caltable": "/cal/x.bcal"}) == 1
    assert client.wait_result(task.task_id, 30) == {"payload": {"caltable": "/cal/x.bcal"}}
    assert [r["state"] for r in client.runs(task.task_id)] == ["suspended", "completed"]


def test_event_emitted_before_the_wait_is_not_missed(client: Client, start_worker: StartWorker) -> None:
    client.emit_event("early", {"n": 1})
    start_worker()
    task = client.spawn("await-event", {"event": "early"})
    assert client.wait_result(task.task_id, 30) == {"payload": {"n": 1}}
    assert len(client.runs(task.task_id)) == 1


def test_event_wait_times_out(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    task = client.spawn("await-event", {"event": "never", "timeout_s": 0.5}, max_attempts=1)
    with pytest.raises(TaskFailedError, match="not emitted within"):
        client.wait_result(task.task_id, 30)


def test_sleep_frees_the_worker(client: Client, start_worker: StartWorker) -> None:
    start_worker(concurrency=1)
    napper = client.spawn("nap", {"seconds": 5})
    wait_until(lambda: client.get_task(napper.task_id)["state"] == "sleeping")
    # With one slot, this can only run while the napper sleeps without holding it.
    quick = client.spawn("echo", {"q": 1})
    client.wait_result(quick.task_id, 30)
    assert client.get_task(napper.task_id)["state"] == "sleeping"
    assert client.wait_result(napper.task_id, 30) == {"attempt": 2}


def test_cancel_pending_task_at_once(client: Client, start_worker: StartWorker) -> None:
    task = client.spawn("echo", {})
    assert client.cancel(task.task_id) == "cancelled"
    start_worker()
    time.sleep(0.5)
    assert client.get_task(task.task_id)["state"] == "cancelled"
    assert client.runs(task.task_id) == []


def test_cancel_running_thread_task_cooperatively(client: Client, start_worker: StartWorker) -> None:
    start_worker(lease_s=1.5)
    task = client.spawn("sleep", {"seconds": 60, "heartbeat_every_s": 0.1})
    wait_until(lambda: client.get_task(task.task_id)["state"] == "running")
    assert client.cancel(task.task_id) == "running"
    wait_until(lambda: client.get_task(task.task_id)["state"] == "cancelled", timeout=20)
    assert [r["state"] for r in client.runs(task.task_id)] == ["cancelled"]


def test_cancel_kills_a_process_task_that_ignores_it(client: Client, start_worker: StartWorker) -> None:
    start_worker(lease_s=1.5, cancel_grace_s=1.0)
    task = client.spawn("slow-process", {"seconds": 120, "heartbeat": False})
    wait_until(lambda: client.get_task(task.task_id)["state"] == "running", timeout=30)
    client.cancel(task.task_id)
    wait_until(lambda: client.get_task(task.task_id)["state"] == "cancelled", timeout=30)


def test_process_task_timeout_kills_the_child(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    task = client.spawn("slow-process", {"seconds": 120, "heartbeat": False}, timeout_s=1.0, max_attempts=1)
    with pytest.raises(TaskFailedError):
        client.wait_result(task.task_id, 60)
    run = client.runs(task.task_id)[0]
    assert run["failure_reason"] == "timeout"


def test_a_child_that_keeps_dying_ends_failed(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    task = client.spawn("crash-child", {}, retry=FixedDelay(base_s=0.05))
    with pytest.raises(TaskFailedError):
        client.wait_result(task.task_id, 60)
    assert [r["failure_reason"] for r in client.runs(task.task_id)] == ["process_died", "process_died"]


def _claim(client: Client, lease_s: float, queue: str = "default") -> tuple[int, int]:
    row = client.conn.execute(queries.CLAIM, (queue, "test-worker", 1, lease_s)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_an_expired_lease_cannot_complete_or_fail(client: Client) -> None:
    client.spawn("echo", {})
    task_id, run_id = _claim(client, lease_s=0.2)
    time.sleep(0.4)
    assert client.conn.execute(queries.COMPLETE_RUNS, ([task_id], [run_id], ["{}"])).fetchall() == []
    assert client.conn.execute(queries.FAIL_RUN, (task_id, run_id, "error", None, False)).fetchone() == (
        None,
    )
    assert client.conn.execute(queries.SET_CHECKPOINT, (task_id, run_id, "s", None)).fetchone() == (False,)
    # Reaping turns it into a failed attempt and the task is claimable again.
    assert client.conn.execute(queries.REAP_EXPIRED, (10,)).fetchone() == (1,)
    run = client.runs(task_id)[0]
    assert (run["state"], run["failure_reason"]) == ("failed", "lease_expired")
    client.conn.execute("UPDATE absurd.tasks SET available_at = now()")
    new_task, new_run = _claim(client, lease_s=30)
    assert new_task == task_id and new_run != run_id
    # The old holder still cannot complete; the new one can, exactly once.
    assert client.conn.execute(queries.COMPLETE_RUNS, ([task_id], [run_id], ["{}"])).fetchall() == []
    assert client.conn.execute(queries.COMPLETE_RUNS, ([task_id], [new_run], ['{"ok": 1}'])).fetchall() == [
        (task_id,)
    ]
    assert client.conn.execute(queries.COMPLETE_RUNS, ([task_id], [new_run], ["{}"])).fetchall() == []
    assert client.get_task(task_id)["result"] == {"ok": 1}


def test_heartbeats_keep_a_long_task_alive(client: Client, start_worker: StartWorker) -> None:
    # A lease of 2 s and a task of 6 s: only heartbeats can carry it through.
    start_worker(lease_s=2.0)
    task = client.spawn("sleep", {"seconds": 6})
    client.wait_result(task.task_id, 60)
    assert [r["state"] for r in client.runs(task.task_id)] == ["completed"]


def test_an_abandoned_thread_keeps_its_slot_until_it_ends(
    client: Client, start_worker: StartWorker, effects
) -> None:
    start_worker(concurrency=1)
    stuck = client.spawn("block", {"seconds": 3}, timeout_s=0.5, max_attempts=1)
    with pytest.raises(TaskFailedError):
        client.wait_result(stuck.task_id, 30)
    assert client.runs(stuck.task_id)[0]["failure_reason"] == "timeout"
    after = client.spawn("echo", {})
    client.wait_result(after.task_id, 30)
    # The only thread was busy until the blocked function returned: the next task started after that.
    [(_, _)] = effects("block ended")
    ended = client.conn.execute("SELECT at FROM test_effects WHERE label = 'block ended'").fetchone()
    assert ended is not None and client.runs(after.task_id)[0]["started_at"] >= ended[0]


def test_a_worker_clock_behind_the_database_does_not_loop_a_sleep(
    client: Client, start_worker: StartWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Behind(datetime):
        """The worker's clock, a minute behind the database's."""

        @classmethod
        def now(cls, tz: tzinfo | None = None) -> Behind:
            return super().now(tz) - timedelta(seconds=60)  # type: ignore[return-value]

    monkeypatch.setattr(absurd.context, "datetime", Behind)
    start_worker()
    task = client.spawn("nap", {"seconds": 1})
    # The wake time (a minute before the database's now) has passed: the first run carries on.
    assert client.wait_result(task.task_id, 30) == {"attempt": 1}
