"""Separate worker processes: exactly-once completion at volume, SIGKILL, SIGTERM, Postgres restarts."""

from __future__ import annotations

import signal
import time

import psycopg

from absurd.client import Client
from absurd.options import FixedDelay
from tests.support.postgres import ServerUnderTest
from tests.support.processes import start_worker, stop_worker, wait_until
from tests.support.tasks import EFFECTS_DDL


def _count(client: Client, sql: str) -> int:
    row = client.conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def test_four_workers_complete_20000_tasks_exactly_once(dsn: str, client: Client) -> None:
    client.conn.execute(EFFECTS_DDL)
    spawned = client.spawn_many("effect", [{}] * 20_000)
    workers = [start_worker(dsn, "--concurrency", "16") for _ in range(4)]
    try:
        wait_until(
            lambda: _count(client, "SELECT count(*) FROM absurd.tasks WHERE state <> 'completed'") == 0,
            timeout=600,
            interval=0.5,
            what="all 20,000 tasks to complete",
        )
    finally:
        for w in workers:
            stop_worker(w)
    # Count effects, not states: one product row per task, none twice, none missing.
    assert _count(client, "SELECT count(*) FROM test_effects") == 20_000
    assert _count(client, "SELECT count(DISTINCT task_id) FROM test_effects") == 20_000
    assert (
        _count(
            client,
            "SELECT count(*) FROM test_effects e LEFT JOIN absurd.tasks t ON t.id = e.task_id "
            "WHERE t.id IS NULL",
        )
        == 0
    )
    assert _count(client, "SELECT count(*) FROM absurd.runs WHERE state = 'completed'") == 20_000
    assert {s.task_id for s in spawned} == {
        r[0] for r in client.conn.execute("SELECT task_id FROM test_effects")
    }
    # Work was shared between the processes.
    assert _count(client, "SELECT count(DISTINCT worker_id) FROM absurd.runs") == 4


def test_sigkilled_worker_task_is_finished_by_another(dsn: str, client: Client) -> None:
    first = start_worker(dsn, "--lease-s", "2")
    task = client.spawn("sleep", {"seconds": 3})
    wait_until(lambda: client.get_task(task.task_id)["state"] == "running", what="the task to start")
    first.send_signal(signal.SIGKILL)
    first.wait()
    second = start_worker(dsn, "--lease-s", "2")
    try:
        assert client.wait_result(task.task_id, 120) == {"slept_s": 3.0}
    finally:
        stop_worker(second)
    runs = client.runs(task.task_id)
    assert [(r["state"], r["failure_reason"]) for r in runs] == [
        ("failed", "lease_expired"),
        ("completed", None),
    ]
    assert runs[0]["worker_id"] != runs[1]["worker_id"]


def test_a_task_that_keeps_killing_its_worker_ends_failed(dsn: str, client: Client) -> None:
    task = client.spawn("kill-worker", {}, retry=FixedDelay(base_s=0.1))
    # Crashes have their own limit (default 10), apart from max_attempts; an operator lowers it here.
    client.conn.execute("UPDATE absurd.tasks SET max_lease_expiries = 2 WHERE id = %s", (task.task_id,))
    for _ in range(2):
        worker = start_worker(dsn, "--lease-s", "1")
        worker.wait(timeout=60)  # the task kills it
    # Nobody is left to reap; do it as a surviving worker would.
    wait_until(
        lambda: (
            _count(client, "SELECT absurd.reap_expired(10)") == 0
            and client.get_task(task.task_id)["state"] == "failed"
        ),
        timeout=30,
    )
    assert [r["failure_reason"] for r in client.runs(task.task_id)] == ["lease_expired", "lease_expired"]
    row = client.get_task(task.task_id)
    assert (row["failures"], client.dlq()[0]["reason"]) == (0, "lease_expired")


def test_sigterm_lets_running_tasks_finish(dsn: str, client: Client) -> None:
    worker = start_worker(dsn, "--shutdown-grace-s", "30")
    task = client.spawn("sleep", {"seconds": 2})
    wait_until(lambda: client.get_task(task.task_id)["state"] == "running")
    assert stop_worker(worker) == 0
    assert client.get_task(task.task_id)["state"] == "completed"


def test_a_worker_with_child_processes_stops_without_waiting_out_their_grace(
    dsn: str, client: Client
) -> None:
    # The children ignore SIGTERM (their parent drains first). Left to pebble's exit hook, each took its 3 s
    # grace before SIGKILL, one after another: four children held a worker's stop for 12 s.
    worker = start_worker(dsn, "--processes", "4", "--concurrency", "4")
    try:
        task_id = client.spawn("chatty-process", {"lines": 1}).task_id
        client.wait_result(task_id, 60)  # the pool and its four children are up
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(8) == 0  # well short of 12 s, with room for a loaded machine
    finally:
        stop_worker(worker)


def test_sigterm_past_the_grace_releases_the_run_at_once(dsn: str, client: Client) -> None:
    worker = start_worker(dsn, "--shutdown-grace-s", "0.5", "--lease-s", "600")
    task = client.spawn("sleep", {"seconds": 5})
    wait_until(lambda: client.get_task(task.task_id)["state"] == "running")
    stop_worker(worker)
    # Released, not left to a ten-minute lease: pending again and takeable now.
    released = client.get_task(task.task_id)
    assert released["state"] == "pending" and released["failures"] == 0
    assert client.runs(task.task_id)[0]["state"] == "released"
    other = start_worker(dsn)
    try:
        client.wait_result(task.task_id, 60)
    finally:
        stop_worker(other)


def test_workers_survive_a_postgres_restart(pg_server: ServerUnderTest, dsn: str) -> None:
    with Client(dsn) as c:
        tasks = c.spawn_many("sleep", [{"seconds": 0.02}] * 1500)
    workers = [start_worker(dsn, "--concurrency", "4", "--lease-s", "30") for _ in range(2)]
    try:
        with Client(dsn) as c:
            wait_until(lambda: _count(c, "SELECT count(*) FROM absurd.tasks WHERE state = 'completed'") > 100)
        if pg_server.restart is not None:
            pg_server.restart()
        else:
            pg_server.drop_connections()
        time.sleep(1.0)
        assert all(w.poll() is None for w in workers), "workers must not crash when the database goes away"

        def remaining() -> int | None:
            try:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    row = conn.execute(
                        "SELECT count(*) FROM absurd.tasks WHERE state <> 'completed'"
                    ).fetchone()
                    return row[0] if row else None
            except psycopg.OperationalError:
                return None

        wait_until(lambda: remaining() == 0, timeout=300, interval=0.5, what="every task to complete")
    finally:
        for w in workers:
            stop_worker(w)
    with Client(dsn) as c:
        assert _count(c, "SELECT count(*) FROM absurd.tasks WHERE state = 'completed'") == len(tasks)


def test_leases_hold_through_a_long_graceful_drain(dsn: str, client: Client) -> None:
    # A 2 s lease and a 6 s task: only heartbeats during the drain can keep the run.
    worker = start_worker(dsn, "--lease-s", "2", "--shutdown-grace-s", "30")
    task = client.spawn("sleep", {"seconds": 6})
    wait_until(lambda: client.get_task(task.task_id)["state"] == "running")
    assert stop_worker(worker) == 0
    assert client.get_task(task.task_id)["state"] == "completed"
    assert [r["state"] for r in client.runs(task.task_id)] == ["completed"]
