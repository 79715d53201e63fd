"""Hosts on one network, simulated with network namespaces: Postgres in one, workers in two others, over
TCP. A worker host is cut off in the middle of a task: its lease expires, the other host runs the task
to completion, and the cut-off worker's late completion is refused when its link comes back; then the
database is restarted under running work. Each time the task's product exists exactly once."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from absurd.client import Client
from absurd.migrate import migrate
from tests.multihost.netns import Hosts, NamespacedPostgres, namespaces_permitted, start_in
from tests.multihost.tasks import PRODUCTS_DDL
from tests.support.processes import REPO, stop_worker, wait_until

LEASE_S = 3.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[Hosts, NamespacedPostgres]]:
    """Three hosts: the database and two workers' (not started)."""
    reason = namespaces_permitted()
    if reason is not None:
        # CI runs as root on a machine like this one; elsewhere this says why the test cannot run.
        pytest.fail(f"the multi-host tests need network namespaces: {reason}")
    hosts = Hosts(workers=2)
    try:
        hosts.up()
        server = NamespacedPostgres(hosts)
        try:
            server.start()
            with psycopg.connect(server.dsn(0), autocommit=True) as conn:
                migrate(conn)
                conn.execute(PRODUCTS_DDL)
            yield hosts, server
        finally:
            server.remove()
    finally:
        hosts.down()


def _worker(hosts: Hosts, server: NamespacedPostgres, i: int, log: Path) -> object:
    env = {**os.environ, "PYTHONPATH": str(REPO), "ABSURD_LOG_LEVEL": "INFO"}
    return start_in(
        hosts,
        f"w{i}",
        [
            *("absurd", "worker", "--dsn", server.dsn(i), "--registry", "tests.multihost.tasks:registry"),
            *("--queue", "hosts", "--concurrency", "1", "--lease-s", str(LEASE_S), "--poll-s", "0.5"),
        ],
        log,
        env,
    )


def _runs(conn: psycopg.Connection, task_id: int) -> list[tuple[str, str, str | None]]:
    return [
        (str(w), str(s), r)
        for w, s, r in conn.execute(
            "SELECT worker_id, state, failure_reason FROM absurd.attempts WHERE task_id = %s "
            "ORDER BY attempt",
            (task_id,),
        ).fetchall()
    ]


def _products(conn: psycopg.Connection, task_id: int) -> list[tuple[int, int]]:
    rows = conn.execute("SELECT task_id, run_id FROM partition_products WHERE task_id = %s", (task_id,))
    return [(int(t), int(r)) for t, r in rows.fetchall()]


def test_a_worker_host_cut_off_mid_task(cluster: tuple[Hosts, NamespacedPostgres], tmp_path: Path) -> None:
    hosts, server = cluster
    conn = psycopg.connect(server.dsn(0), autocommit=True)
    first = _worker(hosts, server, 1, tmp_path / "w1.log")
    second = None
    try:
        with Client(server.dsn(0)) as client:
            task_id = client.spawn("work-then-record", {"seconds": 8}, queue="hosts", max_attempts=3).task_id
        wait_until(
            lambda: _runs(conn, task_id) and _runs(conn, task_id)[0][1] == "running",
            timeout=60,
            what="host 1 to start the task",
        )
        [(cut_worker, _, _)] = _runs(conn, task_id)
        hosts.cut(1)
        # Host 2 comes up after the cut, so only it can take the task over.
        second = _worker(hosts, server, 2, tmp_path / "w2.log")
        wait_until(
            lambda: (
                conn.execute("SELECT state FROM absurd.tasks WHERE id = %s", (task_id,)).fetchone()
                == ("completed",)
            ),
            timeout=90,
            interval=0.2,
            what="host 2 to complete the task",
        )
        # Host 1's task body has long finished; its completion is stuck in a dead link until now.
        hosts.restore(1)
        wait_until(
            lambda: "lease lost" in (tmp_path / "w1.log").read_text(),
            timeout=120,
            interval=0.5,
            what="host 1 to come back and be refused",
        )
        runs = _runs(conn, task_id)
        assert [(w == cut_worker, s, r) for w, s, r in runs] == [
            (True, "failed", "lease_expired"),
            (False, "completed", None),
        ]
        [(_, product_run)] = _products(conn, task_id)
        completed_run = conn.execute(
            "SELECT id FROM absurd.runs WHERE task_id = %s AND state = 'completed'", (task_id,)
        ).fetchone()
        assert completed_run == (product_run,)
        # Host 1 carries on serving once it is back: it takes and finishes new work.
        time.sleep(LEASE_S)
        stop_worker(second)  # type: ignore[arg-type]
        second = None
        with Client(server.dsn(0)) as client:
            again = client.spawn("work-then-record", {"seconds": 0.1}, queue="hosts").task_id
            client.wait_result(again, 60)
        assert [w for w, _, _ in _runs(conn, again)] == [cut_worker]
    finally:
        for proc in (first, second):
            if proc is not None:
                stop_worker(proc)  # type: ignore[arg-type]
        conn.close()


def test_postgres_restarted_under_running_work(
    cluster: tuple[Hosts, NamespacedPostgres], tmp_path: Path
) -> None:
    hosts, server = cluster
    workers = [_worker(hosts, server, i, tmp_path / f"w{i}.log") for i in (1, 2)]
    try:
        with Client(server.dsn(0)) as client:
            ids = [
                s.task_id for s in client.spawn_many("work-then-record", [{"seconds": 4}] * 4, queue="hosts")
            ]
        with psycopg.connect(server.dsn(0), autocommit=True) as conn:
            wait_until(
                lambda: (
                    conn.execute("SELECT count(*) FROM absurd.tasks WHERE state = 'running'").fetchone()
                    == (2,)
                ),
                timeout=60,
                what="both hosts to be running a task",
            )
        server.stop()
        time.sleep(2)
        server.start()
        with psycopg.connect(server.dsn(0), autocommit=True) as conn:
            wait_until(
                lambda: (
                    conn.execute(
                        "SELECT count(*) FROM absurd.tasks WHERE id = ANY(%s) AND state = 'completed'", (ids,)
                    ).fetchone()
                    == (len(ids),)
                ),
                timeout=120,
                interval=0.5,
                what="every task to complete after the restart",
            )
            for task_id in ids:
                [(_, product_run)] = _products(conn, task_id)
                completed = conn.execute(
                    "SELECT id FROM absurd.runs WHERE task_id = %s AND state = 'completed'", (task_id,)
                ).fetchall()
                assert completed == [(product_run,)]
    finally:
        for proc in workers:
            stop_worker(proc)  # type: ignore[arg-type]
