"""Circuit breakers and concurrency limits, shared through Postgres by every worker."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import timedelta

import psycopg

from absurd.client import Client
from absurd.options import FixedDelay, GateConfig
from tests.queue.conftest import StartWorker
from tests.support.processes import start_worker as start_worker_process
from tests.support.processes import stop_worker, wait_until, wait_until_lock_wait


def _running(client: Client, name: str) -> int:
    row = client.conn.execute(
        "SELECT count(*) FROM absurd.tasks WHERE name = %s AND state = 'running'", (name,)
    ).fetchone()
    return int(row[0]) if row else 0


def _breaker(client: Client, key: str) -> str:
    return str(client.gate(key, transitions=0)["breaker_state"])


def test_breaker_opens_holds_half_opens_and_closes(dsn: str, client: Client) -> None:
    # Behaviour only: which process ran what, and how fast, is up to the scheduler. The cooldown is an hour,
    # and the test ends it by hand, so a slow machine cannot let the breaker half-open early.
    client.conn.execute("CREATE TABLE test_health (ok boolean); INSERT INTO test_health VALUES (false)")
    client.configure_gate(
        GateConfig(
            key="flaky", breaker_enabled=True, failure_threshold=3, window_s=3600, base_cooldown_s=3600
        )
    )
    workers = [start_worker_process(dsn, "--concurrency", "1") for _ in range(2)]
    tasks = client.spawn_many("flaky", [{}] * 6, max_attempts=20, retry=FixedDelay(base_s=0.1))
    try:
        wait_until(lambda: _breaker(client, "flaky") == "open", timeout=120, what="the breaker to open")
        # Outcomes already in flight when it opened are recorded in batches; let them land first.
        wait_until(
            lambda: _running(client, "flaky") == 0, timeout=60, what="in-flight flaky runs to be recorded"
        )
        failures_at_open = sum(client.get_task(t.task_id)["failures"] for t in tasks)
        assert failures_at_open >= 3
        # The breaker guards its key only: other work flows, and by the time it has, a claim has passed the
        # open gate by. Held, not burning attempts: no flaky run started, no failure was added.
        other = client.spawn("echo", {"still": "flowing"})
        assert client.wait_result(other.task_id, 60) == {"still": "flowing"}
        assert _breaker(client, "flaky") == "open"
        assert _running(client, "flaky") == 0
        assert sum(client.get_task(t.task_id)["failures"] for t in tasks) == failures_at_open
        assert client.dlq() == []
        client.conn.execute("UPDATE test_health SET ok = true")
        client.conn.execute("UPDATE absurd.gates SET cooldown_until = now() WHERE key = 'flaky'")
        wait_until(lambda: _breaker(client, "flaky") == "closed", timeout=120, what="the breaker to close")
        for t in tasks:
            client.wait_result(t.task_id, 120)
    finally:
        for w in workers:
            stop_worker(w)
    history = [(t["from_state"], t["to_state"]) for t in reversed(client.gate("flaky")["transitions"])]
    assert history == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_gated_work_is_not_starved_by_ungated_work(client: Client) -> None:
    client.configure_gate(GateConfig(key="casa", max_running=4))
    urgent = client.spawn("noop", {}, gate="casa", priority=10)
    older = client.spawn("noop", {}, gate="casa")
    client.spawn_many("noop", [{}] * 20)
    claimed = {r[0] for r in client.conn.execute("SELECT task_id FROM absurd.claim('default', 'w', 5, 60)")}
    assert len(claimed) == 5
    # Priority first, then age, whether a task is gated or not.
    assert {urgent.task_id, older.task_id} <= claimed


def test_an_open_breaker_half_opens_while_ungated_work_fills_every_claim(client: Client) -> None:
    client.configure_gate(GateConfig(key="k", breaker_enabled=True, failure_threshold=1, base_cooldown_s=10))
    client.conn.execute("SELECT absurd.record_gate_outcome('k', false)")
    client.conn.execute("UPDATE absurd.gates SET cooldown_until = now() WHERE key = 'k'")
    trial = client.spawn("noop", {}, gate="k")
    client.spawn_many("noop", [{}] * 20)
    claimed = {r[0] for r in client.conn.execute("SELECT task_id FROM absurd.claim('default', 'w', 5, 60)")}
    assert _breaker(client, "k") == "half_open"
    assert trial.task_id in claimed


def test_failed_trial_reopens_with_a_longer_cooldown(client: Client) -> None:
    client.configure_gate(GateConfig(key="k", breaker_enabled=True, failure_threshold=1, base_cooldown_s=10))
    client.conn.execute("SELECT absurd.record_gate_outcome('k', false)")
    gate = client.gate("k")
    assert gate["breaker_state"] == "open" and gate["cooldown_s"] == 10
    client.conn.execute("UPDATE absurd.gates SET cooldown_until = now() WHERE key = 'k'")
    client.spawn("noop", {}, gate="k")
    client.conn.execute("SELECT * FROM absurd.claim('default', 'w', 10, 30)")  # promotes to half-open
    assert _breaker(client, "k") == "half_open"
    client.conn.execute("SELECT absurd.record_gate_outcome('k', false)")
    gate = client.gate("k")
    assert gate["breaker_state"] == "open" and gate["cooldown_s"] == 20


def test_failure_rate_trips_the_breaker(client: Client) -> None:
    client.configure_gate(
        GateConfig(key="r", breaker_enabled=True, failure_threshold=1000, failure_rate=0.5, min_calls=4)
    )
    for ok in (True, False, True):
        client.conn.execute("SELECT absurd.record_gate_outcome('r', %s)", (ok,))
    assert _breaker(client, "r") == "closed"  # 1 of 3 calls failed, and fewer than min_calls
    client.conn.execute("SELECT absurd.record_gate_outcome('r', false)")
    assert _breaker(client, "r") == "open"  # 2 of 4


def test_trip_and_reset_by_hand(client: Client) -> None:
    client.configure_gate(GateConfig(key="casa", breaker_enabled=True))
    client.set_breaker("casa", "open", "disk full on /stage")
    assert _breaker(client, "casa") == "open"
    client.set_breaker("casa", "closed", "disk cleaned")
    assert [t["reason"] for t in client.gate("casa")["transitions"]] == [
        "disk cleaned",
        "disk full on /stage",
    ]


def test_concurrency_limit_holds_under_eight_claimers(client: Client, start_worker: StartWorker) -> None:
    client.configure_gate(GateConfig(key="create-image", max_running=2))
    tasks = client.spawn_many("sleep", [{"seconds": 0.3}] * 24, gate="create-image")
    client.spawn_many("sleep", [{"seconds": 0.3}] * 24)  # ungated work alongside
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        with Client(client.dsn) as c:
            while not stop.is_set():
                row = c.conn.execute(
                    "SELECT count(*) FROM absurd.tasks WHERE gate_key = 'create-image' AND state = 'running'"
                ).fetchone()
                samples.append(int(row[0]) if row else 0)
                time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    for _ in range(8):
        start_worker(concurrency=4, poll_s=0.05)
    try:
        for t in tasks:
            client.wait_result(t.task_id, 120)
    finally:
        stop.set()
        sampler.join()
    assert max(samples) == 2, f"limit 2, observed {max(samples)}"
    runs = sorted((client.runs(t.task_id)[0] for t in tasks), key=lambda r: r["started_at"])
    # Check the intervals too, not only the samples: never three overlapping runs. The timestamps are
    # now() of each transaction, i.e. when it began, so a claim that saw a completion can carry a time
    # a few microseconds before it: allow 50 ms.
    slack = timedelta(milliseconds=50)
    for i in range(len(runs) - 2):
        assert runs[i]["finished_at"] <= runs[i + 2]["started_at"] + slack


def test_per_key_limit_created_on_first_spawn(client: Client, start_worker: StartWorker) -> None:
    tasks = client.spawn_many("sleep", [{"seconds": 0.2}] * 4, gate="calibration:2026-11-22", gate_limit=1)
    start_worker(concurrency=4)
    for t in tasks:
        client.wait_result(t.task_id, 60)
    runs = sorted((client.runs(t.task_id)[0] for t in tasks), key=lambda r: r["started_at"])
    slack = timedelta(milliseconds=50)  # transaction start times, as above
    assert all(a["finished_at"] <= b["started_at"] + slack for a, b in itertools.pairwise(runs))
    assert client.gate("calibration:2026-11-22")["max_running"] == 1


def test_a_gate_named_at_spawn_needs_no_configuration(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    task = client.spawn("echo", {"x": 1}, gate="casa")
    assert client.wait_result(task.task_id, 30) == {"x": 1}
    assert client.gate("casa")["max_running"] is None


def test_completions_lock_gates_in_key_order(dsn: str, client: Client) -> None:
    # A completer holding g5 and wanting g3 while another holds g3 and wants g5 is a deadlock. With locks
    # taken in key order, a completion that waits for g3 holds no gate after it meanwhile.
    keys = ["g2", "g5", "g3", "g1", "g4"]
    for key in keys:
        client.configure_gate(GateConfig(key=key, breaker_enabled=True))
    runs: dict[int, int] = {}
    for key in keys:  # claimed one by one, in this (not key) order
        client.spawn("noop", {}, gate=key)
        claim = "SELECT task_id, run_id FROM absurd.claim('default', 'w', 1, 600)"
        runs.update(client.conn.execute(claim).fetchall())
    ids = list(runs)
    assert len(ids) == len(keys)
    with psycopg.connect(dsn) as holder, psycopg.connect(dsn, autocommit=True) as completer:
        holder.execute("SELECT 1 FROM absurd.gates WHERE key = 'g3' FOR UPDATE")
        pid = completer.info.backend_pid
        thread = threading.Thread(
            target=completer.execute,
            args=(
                "SELECT absurd.complete_runs(%s, %s, array_fill('{}'::jsonb, ARRAY[5]))",
                (ids, [runs[i] for i in ids]),
            ),
        )
        thread.start()
        wait_until_lock_wait(client.conn, pid, "the completion to wait for g3")
        with psycopg.connect(dsn) as other:
            other.execute("SET lock_timeout = '2s'")
            try:
                # Not held by the waiting completer.
                other.execute("SELECT 1 FROM absurd.gates WHERE key > 'g3' FOR UPDATE")
                held_after = False
            except psycopg.errors.LockNotAvailable:
                held_after = True
            other.rollback()
        holder.rollback()
        thread.join(30)
    assert not held_after, "the completer held a gate after g3 while it waited for g3"
    assert {client.get_task(i)["state"] for i in ids} == {"completed"}


def _open_then_half_open(client: Client, key: str) -> None:
    client.set_breaker(key, "open", "by hand")
    client.conn.execute("UPDATE absurd.gates SET cooldown_until = now() WHERE key = %s", (key,))


def test_a_run_claimed_before_the_breaker_opened_is_not_a_trial(client: Client) -> None:
    client.configure_gate(GateConfig(key="k", breaker_enabled=True))
    client.spawn("noop", {}, gate="k")
    ((task_id, run_id),) = client.conn.execute(
        "SELECT task_id, run_id FROM absurd.claim('default', 'w', 1, 600)"
    )
    _open_then_half_open(client, "k")
    client.spawn("noop", {}, gate="k")
    client.conn.execute("SELECT * FROM absurd.claim('default', 'w', 1, 600)")  # half-opens, admits a trial
    assert _breaker(client, "k") == "half_open"
    client.conn.execute("SELECT absurd.complete_runs(%s, %s, '{\"{}\"}')", ([task_id], [run_id]))
    assert _breaker(client, "k") == "half_open"


def test_a_trial_that_sleeps_lets_no_other_in(client: Client) -> None:
    client.configure_gate(GateConfig(key="k", breaker_enabled=True, half_open_trials=1))
    client.spawn_many("noop", [{}] * 3, gate="k")
    _open_then_half_open(client, "k")
    claim = "SELECT task_id, run_id FROM absurd.claim('default', 'w', 10, 600)"
    ((task_id, run_id),) = client.conn.execute(claim).fetchall()
    client.conn.execute(
        "SELECT absurd.suspend_run(%s, %s, now() + interval '1 hour', NULL)", (task_id, run_id)
    )
    assert client.conn.execute(claim).fetchall() == []
    # The next half-open period admits a trial again.
    _open_then_half_open(client, "k")
    assert len(client.conn.execute(claim).fetchall()) == 1
