"""Queue maintenance, one part at a time (reaper, pruner, event pruner, the runner that drives them,
the one retention), then lease renewal, reaping and cancel cascades when one row is slow, locked,
poisoned or deep in a chain."""

from __future__ import annotations

import threading
from datetime import timedelta

import psycopg
import pytest

from absurd import queries
from absurd.builtin_tasks import CleanupParams
from absurd.client import Client, emit_event
from absurd.maintenance import (
    DEFAULT_RETENTION,
    MaintenanceRunner,
    Pruner,
    PrunerSettings,
    Reaper,
    ReaperSettings,
)
from absurd.maintenance.event_pruner import EventPruner, EventPrunerSettings
from absurd.metrics import QueueCollector
from absurd.scheduler import SchedulerSettings
from absurd.schedules import load_paths
from absurd.worker import Worker, WorkerSettings
from absurd.workflow_spec import parse_spec
from tests.queue.conftest import StartWorker
from tests.support.processes import REPO, wait_until, wait_until_lock_wait
from tests.support.tasks import registry


def _claim(conn: psycopg.Connection, limit: int = 100) -> list[tuple[int, int]]:
    rows = conn.execute(
        "SELECT task_id, run_id FROM absurd.claim('default', 'w', %s, 60)", (limit,)
    ).fetchall()
    return [(int(t), int(r)) for t, r in rows]


def _finished(client: Client, n: int, age: timedelta) -> list[int]:
    """``n`` tasks run to completion, their finish backdated by ``age``."""
    spawned = [t.task_id for t in client.spawn_many("noop", [{}] * n)]
    claimed = _claim(client.conn, n)
    client.conn.execute(
        "SELECT absurd.complete_runs(%s, %s, %s::jsonb[])",
        ([t for t, _ in claimed], [r for _, r in claimed], ["{}"] * len(claimed)),
    )
    client.conn.execute("UPDATE absurd.tasks SET finished_at = now() - %s WHERE id = ANY(%s)", (age, spawned))
    return spawned


# The reaper ------------------------------------------------------------------------------------


def test_the_reaper_reclaims_expired_runs_and_leaves_live_leases(client: Client) -> None:
    tasks = [t.task_id for t in client.spawn_many("noop", [{}] * 5)]
    _claim(client.conn)
    expired = tasks[:3]
    client.conn.execute(
        "UPDATE absurd.tasks SET lease_expires_at = now() - interval '1 s' WHERE id = ANY(%s)", (expired,)
    )
    reaper = Reaper(ReaperSettings(batch=2))
    # One pass takes at most a batch; the next takes the rest; then there is nothing to do.
    assert [reaper.run_once(client.conn) for _ in range(3)] == [2, 1, 0]
    states = {t: client.get_task(t)["state"] for t in tasks}
    assert states == {t: "pending" if t in expired else "running" for t in tasks}
    assert {r["failure_reason"] for t in expired for r in client.runs(t)} == {"lease_expired"}


# The pruner ------------------------------------------------------------------------------------


def test_the_reaper_marks_stopped_a_daemon_that_died_once_its_host_has_started_another(
    client: Client,
) -> None:
    # h1: a worker that died 10 min ago and was restarted (a new id) 5 min ago; an older worker that is
    # alive; a scheduler that died and was restarted. h2: a worker that died and whose host never came back.
    conn = client.conn
    conn.execute(
        """INSERT INTO absurd.workers (id, hostname, pid, queues, concurrency, started_at, heartbeat_at)
        VALUES ('h1:1:dead', 'h1', 1, '{default}', 1, now() - interval '1 hour', now() - interval '10 min'),
               ('h1:2:new', 'h1', 2, '{default}', 1, now() - interval '5 min', now()),
               ('h1:3:old', 'h1', 3, '{default}', 1, now() - interval '2 hours', now()),
               ('h2:1:dead', 'h2', 1, '{default}', 1, now() - interval '1 hour', now() - interval '10 min')"""
    )
    conn.execute(
        """INSERT INTO absurd.schedulers (id, hostname, pid, started_at, heartbeat_at)
        VALUES ('h1:7:dead', 'h1', 7, now() - interval '1 hour', now() - interval '10 min'),
               ('h1:8:new', 'h1', 8, now() - interval '5 min', now())"""
    )
    Reaper(ReaperSettings()).run_once(conn)
    stopped = dict(
        conn.execute("SELECT id, stopped_at = heartbeat_at FROM absurd.workers WHERE stopped_at IS NOT NULL")
    )
    assert stopped == {"h1:1:dead": True}  # stopped as of its last heartbeat; h2's stays, and is paged for
    [scheduler] = conn.execute("SELECT id FROM absurd.schedulers WHERE stopped_at IS NOT NULL").fetchall()
    assert scheduler == ("h1:7:dead",)
    # It was stalled, not dead: its next beat makes it live again. One that stopped itself stays stopped.
    conn.execute(queries.WORKER_STOPPED, ("h1:3:old",))
    for worker_id in ("h1:1:dead", "h1:3:old"):
        conn.execute(queries.WORKER_HEARTBEAT, (worker_id,))
    live = {r[0] for r in conn.execute("SELECT id FROM absurd.workers WHERE stopped_at IS NULL")}
    assert live == {"h1:1:dead", "h1:2:new", "h2:1:dead"}


def test_the_pruner_deletes_finished_tasks_past_retention_only(client: Client) -> None:
    old = _finished(client, 3, timedelta(days=8))
    recent = _finished(client, 2, timedelta(days=6))
    pending = client.spawn("noop", {}).task_id
    assert Pruner().run_once(client.conn) == 3  # the default retention: 7 days
    left = {r[0] for r in client.conn.execute("SELECT id FROM absurd.tasks").fetchall()}
    assert left == {*recent, pending}
    assert client.conn.execute(
        "SELECT count(*) FROM absurd.runs WHERE task_id = ANY(%s)", (old,)
    ).fetchone() == (0,)


def test_the_pruner_keeps_dead_letters_and_bounds_a_pass(client: Client) -> None:
    dead = client.spawn("noop", {}, max_attempts=1).task_id
    ((task_id, run_id),) = _claim(client.conn)
    client.conn.execute("SELECT absurd.fail_run(%s, %s, 'error', '{}', false)", (task_id, run_id))
    client.conn.execute("UPDATE absurd.tasks SET finished_at = now() - interval '30 days'")
    _finished(client, 7, timedelta(days=30))
    pruner = Pruner(PrunerSettings(retention_s=86400, batch=2, max_batches=2))
    # Two statements of two rows per pass: a large backlog is worked off over several passes.
    assert [pruner.run_once(client.conn) for _ in range(3)] == [4, 3, 0]
    assert [r[0] for r in client.conn.execute("SELECT id FROM absurd.tasks").fetchall()] == [dead]


# The event pruner ------------------------------------------------------------------------------


def test_the_event_pruner_deletes_event_log_rows_past_retention(client: Client) -> None:
    for i in range(4):
        emit_event(client.conn, "new_ms", {"i": i})
    client.conn.execute(
        "UPDATE absurd.event_log SET emitted_at = now() - interval '8 days' WHERE payload->>'i' IN ('0', '1')"
    )
    assert EventPruner().run_once(client.conn) == 2
    kept = client.conn.execute("SELECT payload->>'i' FROM absurd.event_log ORDER BY id").fetchall()
    assert kept == [("2",), ("3",)]
    assert EventPruner(EventPrunerSettings(retention_s=0.001)).run_once(client.conn) == 2


# The runner ------------------------------------------------------------------------------------


class _Duty:
    """A duty that counts its passes, and fails while ``failing``."""

    def __init__(self, name: str, interval_s: float, first_run_s: float = 0.0) -> None:
        self.name, self.interval_s, self.first_run_s = name, interval_s, first_run_s
        self.passes = 0
        self.failing: Exception | None = None

    def run_once(self, conn: psycopg.Connection) -> int:
        if self.failing is not None:
            raise self.failing
        self.passes += 1
        return self.passes


def test_the_runner_runs_each_duty_when_due_and_outlives_failures(client: Client) -> None:
    now = [0.0]
    fast, slow = _Duty("fast", 5.0), _Duty("slow", 3600.0, first_run_s=60.0)
    runner = MaintenanceRunner([fast, slow], retry_s=1.0, clock=lambda: now[0])
    assert runner.run_due(client.conn) == {"fast": 1}  # at start: only a duty with no first delay
    assert runner.seconds_to_next() == 5.0
    now[0] = 60.0
    assert runner.run_due(client.conn) == {"fast": 2, "slow": 1}
    fast.failing = RuntimeError("a bad row")
    now[0] = 65.0
    assert runner.run_due(client.conn) == {}  # logged, not raised
    assert runner.seconds_to_next() == 1.0  # a failed duty is retried soon, not at its interval
    fast.failing = psycopg.OperationalError("server closed the connection")
    now[0] = 66.0
    assert runner.run_due(client.conn) == {}
    fast.failing = None
    now[0] = 67.0
    assert runner.run_due(client.conn) == {"fast": 3}
    assert slow.passes == 1


def test_run_forever_passes_at_once_and_ends_when_stopped(dsn: str, client: Client) -> None:
    (task,) = client.spawn_many("noop", [{}])
    _claim(client.conn)
    client.conn.execute("UPDATE absurd.tasks SET lease_expires_at = now() - interval '1 s'")
    stop = threading.Event()

    def connection() -> psycopg.Connection:
        return psycopg.connect(dsn, autocommit=True)

    runner = MaintenanceRunner([Reaper(ReaperSettings(interval_s=3600))])
    thread = threading.Thread(target=runner.run_forever, args=(connection, stop))
    thread.start()
    wait_until(lambda: client.get_task(task.task_id)["state"] == "pending", timeout=30, what="the reap")
    stop.set()
    thread.join(10)
    assert not thread.is_alive()


def test_a_worker_runs_a_reaper_and_a_pruner_unless_told_not_to(dsn: str) -> None:
    names = [d.name for d in Worker(registry, WorkerSettings(), dsn).maintenance.duties]
    assert names == ["reaper", "pruner"]
    worker = Worker(registry, WorkerSettings(pruner=None, reaper=ReaperSettings(interval_s=0.5)), dsn)
    (reaper,) = worker.maintenance.duties
    assert (reaper.name, reaper.interval_s) == ("reaper", 0.5)


# The one retention -----------------------------------------------------------------------------


def test_every_retention_default_is_the_one_setting() -> None:
    days = DEFAULT_RETENTION / timedelta(days=1)
    pruner = WorkerSettings().pruner
    assert pruner is not None and pruner.retention_s == DEFAULT_RETENTION.total_seconds()
    assert SchedulerSettings().event_pruner.retention_s == DEFAULT_RETENTION.total_seconds()
    assert CleanupParams().older_than_days == days
    # The shipped daily cleanup does not retype a number: it runs with the default.
    loaded, problems = load_paths([REPO / "schedules" / "maintenance.yaml"], registry)
    assert problems == []
    (cleanup,) = loaded[0].schedule.workflow.tasks
    assert cleanup.type == "cleanup" and "older_than_days" not in cleanup.params


@pytest.mark.parametrize("older_than_days", [None, 1.0])
def test_the_cleanup_task_deletes_past_its_retention(
    client: Client, start_worker: StartWorker, older_than_days: float | None
) -> None:
    _finished(client, 2, timedelta(days=8))
    _finished(client, 2, timedelta(days=2))
    params = {} if older_than_days is None else {"older_than_days": older_than_days}
    start_worker()
    task = client.spawn("cleanup", params)
    assert client.wait_result(task.task_id, 60) == {"deleted": 2 if older_than_days is None else 4}


# Leases, reaping and cascades at the edges ---------------------------------------------------------


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
        CREATE TRIGGER test_refuse BEFORE INSERT OR UPDATE ON absurd.runs
            FOR EACH ROW EXECUTE FUNCTION test_refuse();
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
    start_worker(reaper=ReaperSettings(interval_s=3600.0))
    wait_until(
        lambda: (
            client.conn.execute("SELECT state FROM absurd.tasks WHERE id = %s", (task.task_id,)).fetchone()
            == ("completed",)
        ),
        timeout=120,
        what="the expired run reclaimed and the task completed",
    )
