"""The completer never holds healthy outcomes behind a poisoned one, and never drops them with it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from absurd.client import Client
from absurd.worker.completer import Completer, Finished
from absurd.worker.execution import Claimed, Outcome
from tests.support.tasks import EFFECTS_DDL, record_effect


class Recorder:
    """Collects what the completer reports for each run."""

    def __init__(self, expected: int) -> None:
        self.accepted: dict[int, bool] = {}
        self._expected = expected
        self._lock = threading.Lock()
        self.done = threading.Event()

    def __call__(self, finished: Finished, accepted: bool) -> None:
        with self._lock:
            self.accepted[finished.claimed.task_id] = accepted
            if len(self.accepted) == self._expected:
                self.done.set()


@pytest.fixture
def pool(dsn: str) -> Iterator[ConnectionPool]:
    with ConnectionPool(dsn, min_size=1, max_size=2, kwargs={"autocommit": True}) as p:
        yield p


def _claim(client: Client, n: int) -> list[Claimed]:
    client.spawn_many("noop", [{}] * n)
    rows = client.conn.execute("SELECT * FROM absurd.claim('default', 'w', %s, 600)", (n,)).fetchall()
    return sorted((Claimed(*row) for row in rows), key=lambda c: c.task_id)


def _past_statement_timeout(conn: psycopg.Connection, params: Any, result: Any) -> None:
    """A hook slower than the role's statement_timeout: fails the same way every time."""
    conn.execute("SET LOCAL statement_timeout = '50ms'")
    conn.execute("SELECT pg_sleep(2)")


def _run(pool: ConnectionPool, items: list[Finished]) -> Recorder:
    recorder = Recorder(len(items))
    completer = Completer(pool, recorder, max_write_attempts=2)
    for f in items:  # queued before the thread starts, so they form one batch
        completer.submit(f)
    completer.start()
    assert recorder.done.wait(60), f"recorded only {recorder.accepted}"
    completer.stop()
    return recorder


def test_an_outcome_that_always_times_out_is_failed_and_holds_nothing_back(
    client: Client, pool: ConnectionPool
) -> None:
    client.conn.execute(EFFECTS_DDL)
    poisoned, *healthy = _claim(client, 9)
    items = [Finished(poisoned, Outcome("completed", result={}), _past_statement_timeout)]
    items += [
        Finished(c, Outcome("completed", result={"task_id": c.task_id}), record_effect) for c in healthy[:4]
    ]
    items += [Finished(c, Outcome("completed", result={"i": c.task_id})) for c in healthy[4:]]
    recorder = _run(pool, items)
    assert {
        c.task_id: (recorder.accepted[c.task_id], client.get_task(c.task_id)["state"]) for c in healthy
    } == {c.task_id: (True, "completed") for c in healthy}
    assert recorder.accepted[poisoned.task_id] is False
    task = client.get_task(poisoned.task_id)
    # Its run failed (and will be retried by its policy); it is not left running with a renewed lease.
    assert task["state"] == "pending" and task["failures"] == 1
    assert task["last_error"]["type"] == "absurd.OutcomeNotRecorded"
    assert "statement timeout" in task["last_error"]["message"]


def test_a_value_postgres_rejects_costs_only_its_own_run(client: Client, pool: ConnectionPool) -> None:
    poisoned, bad_error, *healthy = _claim(client, 8)
    items = [
        Finished(poisoned, Outcome("completed", result={"header": "SIMPLE\x00\x00"})),
        Finished(bad_error, Outcome("failed", error={"type": "OSError", "message": "bad\x00name"})),
    ]
    items += [Finished(c, Outcome("completed", result={"i": c.task_id})) for c in healthy]
    recorder = _run(pool, items)
    assert all(recorder.accepted[c.task_id] for c in healthy)
    assert {client.get_task(c.task_id)["state"] for c in healthy} == {"completed"}
    assert client.get_task(poisoned.task_id)["state"] == "pending"
    # A NUL in an error message is replaced, and the failure recorded as it was.
    assert recorder.accepted[bad_error.task_id] is True
    assert client.get_task(bad_error.task_id)["last_error"]["message"] == "bad\ufffdname"


def test_a_task_returning_a_nul_character_fails_permanently_with_a_clear_error(client: Client) -> None:
    from absurd.registry import Registry
    from absurd.worker.execution import execute

    reg = Registry()

    @reg.task("nul")
    def nul(ctx: Any, params: Any) -> dict[str, str]:
        return {"header": "OBJECT  \x00"}

    outcome = execute(reg.get("nul"), None, {})  # type: ignore[arg-type]
    assert outcome.kind == "failed" and outcome.permanent
    assert "NUL" in outcome.error["message"]


def test_a_cancel_nobody_asked_for_fails_the_run_at_once(client: Client, pool: ConnectionPool) -> None:
    (claimed,) = _claim(client, 1)
    recorder = _run(pool, [Finished(claimed, Outcome("cancelled"))])
    assert recorder.accepted[claimed.task_id] is True
    task = client.get_task(claimed.task_id)
    assert task["state"] == "pending" and task["failures"] == 1


def test_a_completion_already_committed_counts_as_recorded(client: Client, pool: ConnectionPool) -> None:
    # The connection was lost after the commit of a batch: its retry is refused by fencing, but the outcomes
    # are in the database, so they are reported recorded, not as lost leases.
    client.conn.execute(EFFECTS_DDL)
    plain, hooked = _claim(client, 2)
    for c in (plain, hooked):
        client.conn.execute("SELECT absurd.complete_runs(%s, %s, '{\"{}\"}')", ([c.task_id], [c.run_id]))
    recorder = _run(
        pool,
        [
            Finished(plain, Outcome("completed", result={})),
            Finished(hooked, Outcome("completed", result={"task_id": hooked.task_id}), record_effect),
        ],
    )
    assert recorder.accepted == {plain.task_id: True, hooked.task_id: True}


def test_a_batch_stores_each_result_with_its_own_task(client: Client, pool: ConnectionPool) -> None:
    # The batch travels packed (COMPLETE_RUNS_PACKED): each result must land on its own task, in any order.
    claimed = _claim(client, 4)
    results: list[Any] = [{"n": 1, "text": "a, b"}, None, [2, "}{"], 'quote " and \\ backslash']
    items = [Finished(c, Outcome("completed", result=r)) for c, r in zip(claimed[::-1], results, strict=True)]
    recorder = _run(pool, items)
    assert all(recorder.accepted.values())
    for c, r in zip(claimed[::-1], results, strict=True):
        task = client.get_task(c.task_id)
        assert task["state"] == "completed"
        assert task["result"] == r
