"""The dashboard hears ``contimg_web`` when tasks change state: once per statement (0013_queue_hot_path.sql),
however many tasks a batch finishes, and never for a lease renewal."""

from __future__ import annotations

import psycopg

from absurd import queries
from absurd.client import Client


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
        client.conn.execute(queries.COMPLETE_RUNS, (tasks, runs, [None] * len(tasks))).fetchall()
        assert _notes(listener) == ["absurd.tasks"]
