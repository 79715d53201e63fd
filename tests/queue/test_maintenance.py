"""Lease renewal, reaping and cancel cascades when one row is slow, locked, poisoned or deep in a chain."""

from __future__ import annotations

import threading

import psycopg

from absurd.client import Client
from absurd.metrics import QueueCollector
from absurd.workflow_spec import parse_spec
from tests.support.processes import wait_until, wait_until_lock_wait


def _claim(conn: psycopg.Connection, limit: int = 100) -> list[tuple[int, int]]:
    rows = conn.execute(
        "SELECT task_id, run_id FROM absurd.claim('default', 'w', %s, 60)", (limit,)
    ).fetchall()
    return [(int(t), int(r)) for t, r in rows]


def test_lease_renewal_does_not_wait_for_a_row_another_transaction_holds(dsn: str, client: Client) -> None:
    client.spawn_many("noop", [{}, {}])
    (busy, other) = sorted(_claim(client.conn))
    with psycopg.connect(dsn) as hook:  # an outcome being written, its hook still running
        hook.execute("SELECT 1 FROM absurd.tasks WHERE id = %s FOR UPDATE", (busy[0],))
        with psycopg.connect(dsn, autocommit=True) as beat:
            # Fails at once (instead of hanging) if the renewal waits on the lock.
            beat.execute("SET lock_timeout = '2s'")
            rows = beat.execute(
                "SELECT task_id, cancel_requested FROM absurd.extend_leases(%s, %s, 600)",
                ([busy[0], other[0]], [busy[1], other[1]]),
            ).fetchall()
        hook.rollback()
    # Both still held; the free one was renewed.
    assert sorted(rows) == [(busy[0], False), (other[0], False)]
    row = client.conn.execute(
        "SELECT lease_expires_at > now() + interval '300 s' FROM absurd.tasks WHERE id = %s", (other[0],)
    ).fetchone()
    assert row == (True,)


def test_a_run_whose_failure_cannot_be_recorded_does_not_block_the_reaper(client: Client) -> None:
    tasks = client.spawn_many("noop", [{}] * 3)
    _claim(client.conn)
    poisoned = tasks[0].task_id
    client.conn.execute(
        f"""
        CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.task_id = {poisoned} AND NEW.state = 'failed' THEN
                RAISE EXCEPTION 'injected fault';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER test_refuse BEFORE UPDATE ON absurd.runs FOR EACH ROW EXECUTE FUNCTION test_refuse();
        UPDATE absurd.tasks SET lease_expires_at = now() - interval '1 s';
        """
    )
    row = client.conn.execute("SELECT absurd.reap_expired(1000)").fetchone()
    assert row == (2,)
    states = {t.task_id: client.get_task(t.task_id)["state"] for t in tasks}
    assert states == {tasks[0].task_id: "running", tasks[1].task_id: "pending", tasks[2].task_id: "pending"}


def test_a_retry_forever_task_past_a_thousand_failures_is_still_retried(client: Client) -> None:
    task = client.spawn("noop", {}, max_attempts=1_000_000)
    client.conn.execute(
        "UPDATE absurd.tasks SET failures = 2000, lease_expiries = 2000, max_lease_expiries = 1000000"
    )
    ((task_id, run_id),) = _claim(client.conn)
    # Both backoffs (failures, crashes) once overflowed power(2, n) before the cap applied.
    assert client.conn.execute(
        "SELECT absurd.fail_run(%s, %s, 'error', '{}', false)", (task_id, run_id)
    ).fetchone() == ("pending",)
    client.conn.execute("UPDATE absurd.tasks SET available_at = now()")
    _claim(client.conn)
    client.conn.execute("UPDATE absurd.tasks SET lease_expires_at = now() - interval '1 s'")
    assert client.conn.execute("SELECT absurd.reap_expired(1000)").fetchone() == (1,)
    assert client.get_task(task.task_id)["state"] == "pending"


def test_cancelling_the_head_of_a_chain_of_a_thousand_cancels_them_all(client: Client) -> None:
    steps = [{"name": "s0", "type": "noop"}]
    steps += [{"name": f"s{i}", "type": "noop", "depends_on": [f"s{i - 1}"]} for i in range(1, 1000)]
    wf = client.submit_workflow(parse_spec({"name": "chain", "tasks": steps}))
    head = client.conn.execute(
        "SELECT id FROM absurd.tasks WHERE workflow_id = %s AND step_name = 's0'", (wf,)
    ).fetchone()
    assert head is not None
    assert client.cancel(head[0]) == "cancelled"
    row = client.conn.execute(
        "SELECT count(*) FILTER (WHERE state = 'cancelled'), count(*) FROM absurd.tasks "
        "WHERE workflow_id = %s",
        (wf,),
    ).fetchone()
    assert row == (1000, 1000)


def test_an_optional_edge_from_a_cancelled_chain_releases_its_dependent(client: Client) -> None:
    spec = parse_spec(
        {
            "name": "optional",
            "tasks": [
                {"name": "a", "type": "noop"},
                {"name": "b", "type": "noop", "depends_on": ["a"]},
                {"name": "c", "type": "noop", "depends_on": [{"task": "b", "optional": True}]},
            ],
        }
    )
    wf = client.submit_workflow(spec)
    steps = {t["step_name"]: t["id"] for t in client.workflow(wf)["task_rows"]}
    client.cancel(steps["a"])
    assert [client.get_task(steps[s])["state"] for s in "abc"] == ["cancelled", "cancelled", "pending"]


def test_children_spawned_after_cancel_workflow_never_run(client: Client) -> None:
    wf = client.submit_workflow(parse_spec({"name": "fan", "tasks": [{"name": "fan", "type": "noop"}]}))
    ((task_id, run_id),) = _claim(client.conn)
    client.cancel_workflow(wf)
    rows = client.conn.execute(
        "SELECT task_id FROM absurd.spawn_children(%s, %s, 'parts', %s, %s, %s::jsonb[], 'default')",
        (task_id, run_id, ["noop"] * 3, ["p0", "p1", "p2"], ["{}"] * 3),
    ).fetchall()
    assert len(rows) == 3
    assert {client.get_task(r[0])["state"] for r in rows} == {"cancelled"}
    assert _claim(client.conn) == []


def _crash(client: Client) -> None:
    """The worker holding the run dies: its lease lapses and the reaper takes the run back."""
    client.conn.execute("UPDATE absurd.tasks SET available_at = now() WHERE state = 'pending'")
    assert len(_claim(client.conn)) == 1
    client.conn.execute(
        "UPDATE absurd.tasks SET lease_expires_at = now() - interval '1 s' WHERE state = 'running'"
    )
    assert client.conn.execute("SELECT absurd.reap_expired(10)").fetchone() == (1,)


def test_worker_crashes_are_counted_apart_from_failures(dsn: str, client: Client) -> None:
    task = client.spawn("noop", {}, max_attempts=3)
    for _ in range(3):
        _crash(client)
    row = client.get_task(task.task_id)
    # Three crashes of unrelated workers do not send a healthy task with max_attempts=3 to the DLQ.
    assert (row["state"], row["failures"], row["lease_expiries"]) == ("pending", 0, 3)
    client.conn.execute("UPDATE absurd.tasks SET max_lease_expiries = 4")
    _crash(client)
    row = client.get_task(task.task_id)
    assert (row["state"], row["failures"], row["lease_expiries"]) == ("failed", 0, 4)
    (entry,) = client.dlq()
    assert (entry["reason"], entry["failures"], entry["lease_expiries"]) == ("lease_expired", 0, 4)
    # The dashboard's gauge tells crashes from failures.
    families = {f.name: f for f in QueueCollector(dsn).collect()}
    samples = [(s.labels, s.value) for s in families["absurd_dlq_open"].samples]
    assert samples == [({"queue": "default", "reason": "lease_expired"}, 1.0)]


def test_a_stalled_checkpoint_of_an_old_run_cannot_overwrite_the_new_runs(dsn: str, client: Client) -> None:
    task = client.spawn("noop", {})
    ((task_id, old_run),) = _claim(client.conn)
    with psycopg.connect(dsn) as new, psycopg.connect(dsn, autocommit=True) as old:
        # The task is given back and claimed again; the new run writes its checkpoint (not yet committed).
        new.execute("SELECT absurd.release_runs(%s, %s)", ([task_id], [old_run]))
        row = new.execute("SELECT run_id FROM absurd.claim('default', 'w2', 1, 60)").fetchone()
        assert row is not None
        new_run = row[0]
        new.execute("SELECT absurd.set_checkpoint(%s, %s, 'step', '\"new\"')", (task_id, new_run))
        result: list[object] = []
        pid = old.info.backend_pid
        thread = threading.Thread(
            target=lambda: result.append(
                old.execute(
                    "SELECT absurd.set_checkpoint(%s, %s, 'step', '\"old\"')", (task_id, old_run)
                ).fetchone()
            )
        )
        thread.start()
        wait_until_lock_wait(client.conn, pid, "the old run's checkpoint to wait")
        new.commit()
        thread.join(30)
    assert result == [(False,)]
    row = client.conn.execute(
        "SELECT value, run_id FROM absurd.checkpoints WHERE task_id = %s AND name = 'step'", (task.task_id,)
    ).fetchone()
    assert row == ("new", new_run)


def test_a_worker_reclaims_expired_runs_as_soon_as_it_starts(client: Client, start_worker) -> None:
    """A worker restarted after a crash must not wait a reap interval: killed every few seconds, a pool
    of two such workers never reclaimed anything (the 2-worker chaos run stalled with 426 tasks held)."""
    (task,) = client.spawn_many("noop", [{}])
    _claim(client.conn)  # a worker that then died
    client.conn.execute("UPDATE absurd.tasks SET lease_expires_at = now() - interval '1 s'")
    # The interval is far longer than the deadline: only a pass at start can reclaim the run in time.
    start_worker(reap_every_s=3600.0)
    wait_until(
        lambda: (
            client.conn.execute("SELECT state FROM absurd.tasks WHERE id = %s", (task.task_id,)).fetchone()
            == ("completed",)
        ),
        timeout=120,
        what="the expired run reclaimed and the task completed",
    )
