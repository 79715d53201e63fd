"""Spawning: options, batches, idempotency keys (also under concurrent spawners), queues."""

from __future__ import annotations

import threading

import pytest

from absurd.client import Client
from absurd.errors import NotFoundError
from absurd.options import FixedDelay, SpawnOptions


def test_spawn_stores_every_option(client: Client) -> None:
    opts = SpawnOptions(
        queue="imaging",
        priority=5,
        max_attempts=7,
        retry=FixedDelay(base_s=2),
        timeout_s=60,
        idempotency_key="k-1",
        headers={"traceparent": "00-abc-01"},
    )
    spawned = client.spawn("create-image", {"ms": "/data/a.ms"}, opts)
    task = client.get_task(spawned.task_id)
    assert spawned.created
    assert (task["queue"], task["name"], task["state"]) == ("imaging", "create-image", "pending")
    assert task["params"] == {"ms": "/data/a.ms"}
    assert (task["priority"], task["max_attempts"], task["timeout_s"]) == (5, 7, 60.0)
    assert task["retry"] == {"kind": "fixed", "base_s": 2.0}
    assert task["headers"] == {"traceparent": "00-abc-01"}
    assert [q["name"] for q in client.queue_stats()] == ["imaging"]


def test_batch_spawn_keeps_input_order(client: Client) -> None:
    spawned = client.spawn_many("echo", [{"i": i} for i in range(1000)])
    assert len(spawned) == 1000 and all(s.created for s in spawned)
    params = [client.get_task(s.task_id)["params"]["i"] for s in spawned[::100]]
    assert params == list(range(0, 1000, 100))


def test_same_key_returns_the_existing_task(client: Client) -> None:
    first = client.spawn("echo", {"a": 1}, idempotency_key="obs-2026-11-22T01:00")
    again = client.spawn("echo", {"a": 2}, idempotency_key="obs-2026-11-22T01:00")
    assert first.created and not again.created
    assert again.task_id == first.task_id
    assert client.get_task(first.task_id)["params"] == {"a": 1}


def test_duplicate_keys_inside_one_batch(client: Client) -> None:
    spawned = client.spawn_many("echo", [{}, {}, {}], keys=["x", "x", None])
    assert spawned[0].task_id == spawned[1].task_id
    assert [s.created for s in spawned] == [True, False, True]


def test_idempotency_keys_under_concurrent_spawns(dsn: str) -> None:
    keys = [f"key-{i}" for i in range(50)]
    results: list[list[int]] = []
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def spawner() -> None:
        try:
            with Client(dsn) as c:
                c.conn.execute("SELECT 1")
                barrier.wait()
                results.append([c.spawn("echo", {}, idempotency_key=k).task_id for k in keys])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=spawner) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(r == results[0] for r in results), "every spawner must see the same task ids"
    with Client(dsn) as c:
        count = c.conn.execute("SELECT count(*) FROM absurd.tasks").fetchone()
    assert count is not None and count[0] == 50


def test_bad_options_are_rejected_before_anything_is_written(client: Client) -> None:
    with pytest.raises(ValueError, match="queue"):
        client.spawn("echo", {}, queue="bad queue name!")
    with pytest.raises(ValueError, match="max_attempts"):
        client.spawn("echo", {}, max_attempts=0)
    assert client.list_tasks() == []


def test_unknown_task_id_is_reported(client: Client) -> None:
    with pytest.raises(NotFoundError, match="no task with id 424242"):
        client.get_task(424242)
    with pytest.raises(NotFoundError):
        client.cancel(424242)
