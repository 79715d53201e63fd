"""Running tasks through an in-process worker: results, retries, permanent errors, concurrency."""

from __future__ import annotations

import itertools

import pytest

from absurd.client import Client
from absurd.errors import TaskFailedError
from absurd.options import ExponentialBackoff, FixedDelay, NoRetry
from tests.queue.conftest import StartWorker
from tests.support.processes import wait_until


def test_results_are_stored_and_awaitable(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    task = client.spawn("echo", {"answer": 42})
    assert client.wait_result(task.task_id, 30) == {"answer": 42}
    runs = client.runs(task.task_id)
    assert [r["state"] for r in runs] == ["completed"]


def test_retries_follow_the_policy_until_max_attempts(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    task = client.spawn(
        "fail", {"fail_attempts": 10}, max_attempts=3, retry=ExponentialBackoff(base_s=0.2, cap_s=0.4)
    )
    with pytest.raises(TaskFailedError, match="failed"):
        client.wait_result(task.task_id, 30)
    runs = client.runs(task.task_id)
    assert [r["state"] for r in runs] == ["failed"] * 3
    assert all(
        r["error"]["type"] == "builtins.RuntimeError" and "Traceback" in r["error"]["traceback"] for r in runs
    )
    # Each retry waits at most the capped backoff (plus claim slack), never less than zero.
    gaps = [(b["started_at"] - a["finished_at"]).total_seconds() for a, b in itertools.pairwise(runs)]
    assert all(0 <= g < 0.4 + 1.5 for g in gaps), gaps


def test_a_task_that_fails_then_succeeds(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    task = client.spawn("fail", {"fail_attempts": 2}, max_attempts=3, retry=FixedDelay(base_s=0.05))
    assert client.wait_result(task.task_id, 30) == {"succeeded_on_attempt": 3}
    assert [r["state"] for r in client.runs(task.task_id)] == ["failed", "failed", "completed"]


def test_backoff_delays_have_full_jitter_under_the_cap(client: Client) -> None:
    policy = '{"kind": "exponential", "base_s": 1, "cap_s": 10}'
    delays = [
        row[0]
        for row in client.conn.execute(
            "SELECT extract(epoch FROM absurd.retry_delay(%s::jsonb, 3)) FROM generate_series(1, 2000)",
            (policy,),
        ).fetchall()
    ]
    assert all(0 <= float(d) <= 4.0 for d in delays)  # base·2^(3−1) = 4 s, under the 10 s cap
    assert 1.7 < sum(float(d) for d in delays) / len(delays) < 2.3  # uniform: mean is half the bound
    capped = client.conn.execute(
        "SELECT extract(epoch FROM absurd.retry_delay(%s::jsonb, 20))", (policy,)
    ).fetchone()
    assert capped is not None and float(capped[0]) <= 10.0


def test_permanent_errors_are_not_retried(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    task = client.spawn("permanent", {}, max_attempts=5)
    with pytest.raises(TaskFailedError, match="bad input"):
        client.wait_result(task.task_id, 30)
    assert len(client.runs(task.task_id)) == 1


def test_invalid_params_fail_permanently(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    task = client.spawn("sleep", {"seconds": -1}, max_attempts=5)
    with pytest.raises(TaskFailedError, match="seconds"):
        client.wait_result(task.task_id, 30)
    assert len(client.runs(task.task_id)) == 1


def test_no_retry_policy_fails_at_once(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    task = client.spawn("fail", {"fail_attempts": 1}, max_attempts=5, retry=NoRetry())
    with pytest.raises(TaskFailedError):
        client.wait_result(task.task_id, 30)
    assert len(client.runs(task.task_id)) == 1


def test_unknown_task_names_fail_with_a_clear_error(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    task = client.spawn("no-such-task", {})
    with pytest.raises(TaskFailedError, match="unknown task 'no-such-task'"):
        client.wait_result(task.task_id, 30)


def test_concurrency_setting_is_used(client: Client, start_worker: StartWorker) -> None:
    start_worker(concurrency=6)
    tasks = client.spawn_many("sleep", [{"seconds": 1.0}] * 6)
    for t in tasks:
        client.wait_result(t.task_id, 60)
    runs = [client.runs(t.task_id)[0] for t in tasks]
    # All six ran at the same moment: the latest start precedes the earliest finish.
    assert max(r["started_at"] for r in runs) < min(r["finished_at"] for r in runs)


def test_priority_orders_claims(client: Client, start_worker: StartWorker) -> None:
    low = client.spawn_many("echo", [{}] * 20, priority=0)
    high = client.spawn_many("echo", [{}] * 20, priority=10)
    start_worker(concurrency=1, claim_batch=1)
    for t in low + high:
        client.wait_result(t.task_id, 60)
    last_high = max(client.runs(t.task_id)[0]["started_at"] for t in high)
    first_low = min(client.runs(t.task_id)[0]["started_at"] for t in low)
    assert last_high < first_low


def test_not_before_delays_the_claim(client: Client, start_worker: StartWorker) -> None:
    from datetime import UTC, datetime, timedelta

    start_worker()
    when = datetime.now(UTC) + timedelta(seconds=1.5)
    task = client.spawn("echo", {}, not_before=when)
    client.wait_result(task.task_id, 30)
    assert client.runs(task.task_id)[0]["started_at"] >= when


def test_paused_queue_holds_tasks(client: Client, start_worker: StartWorker) -> None:
    client.create_queue("held")
    client.set_paused("held", True)
    start_worker(queues=["held"])
    task = client.spawn("echo", {}, queue="held")
    with pytest.raises(TimeoutError):
        client.wait_result(task.task_id, 1.5)
    client.set_paused("held", False)
    assert client.wait_result(task.task_id, 30) == {}
    wait_until(lambda: client.get_task(task.task_id)["state"] == "completed")


def test_a_result_that_is_not_json_fails_the_task_clearly(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    bad = client.spawn("not-json", {}, max_attempts=3)
    with pytest.raises(TaskFailedError, match="returned a result that is not JSON"):
        client.wait_result(bad.task_id, 30)
    assert len(client.runs(bad.task_id)) == 1
    # The worker still records outcomes afterwards.
    assert client.wait_result(client.spawn("echo", {"after": 1}).task_id, 30) == {"after": 1}


def test_a_released_thread_run_stops_at_its_next_heartbeat(client: Client, start_worker: StartWorker) -> None:
    worker = start_worker(shutdown_grace_s=0.2)
    task = client.spawn("sleep", {"seconds": 120, "heartbeat_every_s": 0.05})
    wait_until(lambda: list(worker._executing.values()), what="the run to start")
    (running,) = list(worker._executing.values())
    worker.stop()
    # Released to other workers after the grace period: it must not go on running beside its next claimer.
    wait_until(lambda: running.thread_done, timeout=60, what="the released thread to stop")
    assert client.get_task(task.task_id)["state"] == "pending"
