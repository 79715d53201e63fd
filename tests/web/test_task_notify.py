"""The dashboard hears ``contimg_web`` when tasks change state: once per statement, however many tasks a batch
finishes, never for a lease renewal, and at most once per 100 ms from one session
(0015_task_notify_throttle.sql)."""

from __future__ import annotations

import time

import psycopg

from absurd import queries
from absurd.client import Client

# Longer than the trigger's window, so that the next change of the same session notifies again.
PAST_THE_WINDOW_S = 0.15


def _notes(listener: psycopg.Connection) -> list[str]:
    return [n.payload for n in listener.notifies(timeout=0.5, stop_after=10)]


def test_a_finished_batch_notifies_once_and_a_lease_renewal_not_at_all(dsn: str, client: Client) -> None:
    client.spawn_many("noop", [{}] * 20)
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("LISTEN contimg_web")
        rows = client.conn.execute(queries.CLAIM, ("default", "w", 20, 60.0)).fetchall()
        assert _notes(listener) == ["absurd.tasks"]  # the claim: tasks started
        tasks, runs = [r[0] for r in rows], [r[1] for r in rows]
        client.conn.execute(queries.EXTEND_LEASES, (tasks, runs, 60.0)).fetchall()
        assert _notes(listener) == []
        time.sleep(PAST_THE_WINDOW_S)
        client.conn.execute(queries.COMPLETE_RUNS, (tasks, runs, [None] * len(tasks))).fetchall()
        assert _notes(listener) == ["absurd.tasks"]


def test_a_burst_of_changes_from_one_session_notifies_fewer_times(dsn: str, client: Client) -> None:
    client.spawn_many("noop", [{}] * 40)
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("LISTEN contimg_web")
        time.sleep(PAST_THE_WINDOW_S)
        for _ in range(40):
            client.conn.execute(queries.CLAIM, ("default", "w", 1, 60.0)).fetchall()
        notes = [n.payload for n in listener.notifies(timeout=0.5, stop_after=40)]
        assert notes[0] == "absurd.tasks"
        assert len(notes) < 40
