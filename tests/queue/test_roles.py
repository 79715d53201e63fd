"""Each role, logged in alone, may do what docs/roles.md says and nothing it forbids.

The table under "As tested" in docs/roles.md is the specification: this test reads it, tries every action
as a login role that holds only that role, and fails on any cell the database disagrees with.
"""

from __future__ import annotations

import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from absurd.builtin_tasks import builtin
from absurd.client import Client
from absurd.options import NoRetry
from absurd.scheduler import Scheduler
from absurd.schedules import load_paths
from absurd.schedules.sync import sync
from absurd.worker import Worker, WorkerSettings
from tests.support.tasks import registry

DOCS = Path(__file__).resolve().parents[2] / "docs" / "roles.md"
ROLES = ("absurd_worker", "absurd_scheduler", "absurd_readonly")


def documented() -> dict[str, dict[str, bool]]:
    """{action: {role: allowed}} from the "As tested" table of docs/roles.md."""
    text = DOCS.read_text().split("## As tested", 1)[1]
    table: dict[str, dict[str, bool]] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("action", "") or set(cells[1]) <= {"-"}:
            continue
        table[cells[0]] = {role: cell == "yes" for role, cell in zip(ROLES, cells[1:], strict=True)}
    return table


class Fixture:
    """Rows the actions act on, made by the owner."""

    def __init__(self, client: Client) -> None:
        c = client.conn
        failed = client.spawn("noop", {}, retry=NoRetry())
        row = c.execute("SELECT task_id, run_id FROM absurd.claim('default', 'owner', 1, 600)").fetchone()
        assert row is not None and row[0] == failed.task_id
        c.execute("SELECT absurd.fail_run(%s, %s, 'error', '{}', true)", row)
        self.dlq_id = int(client.dlq()[0]["id"])
        client.spawn_many("noop", [{}] * 4)
        c.execute("INSERT INTO absurd.gates (key, breaker_enabled) VALUES ('casa', true)")
        c.execute("SELECT absurd.set_breaker_state('casa', 'open', 'by hand', 60)")
        c.execute("SELECT absurd.emit_event('cal-ready', '{\"dec\": 30}')")
        row = c.execute("SELECT absurd.submit_workflow('w', '{}', %s)", (WORKFLOW,)).fetchone()
        assert row is not None
        self.workflow = int(row[0])


WORKFLOW = '[{"step": "a", "name": "noop"}, {"step": "b", "name": "noop", "depends_on": [{"step": "a"}]}]'


def _claim(conn: psycopg.Connection) -> tuple[int, int]:
    row = conn.execute("SELECT task_id, run_id FROM absurd.claim('default', 'me', 1, 600)").fetchone()
    assert row is not None, "nothing to claim"
    return int(row[0]), int(row[1])


def _claim_complete_fail(conn: psycopg.Connection, fx: Fixture) -> None:
    done = _claim(conn)
    assert conn.execute(
        "SELECT * FROM absurd.complete_runs(%s, %s, '{\"{}\"}')", ([done[0]], [done[1]])
    ).fetchone()
    failed = _claim(conn)
    assert conn.execute("SELECT absurd.fail_run(%s, %s, 'error', '{}', false)", failed).fetchone() == (
        "pending",
    )


def _lease_work(conn: psycopg.Connection, fx: Fixture) -> None:
    task, run = _claim(conn)
    assert conn.execute("SELECT * FROM absurd.extend_leases(%s, %s, 60)", ([task], [run])).fetchall()
    assert conn.execute("SELECT absurd.set_checkpoint(%s, %s, 'step', '1')", (task, run)).fetchone() == (
        True,
    )
    conn.execute("SELECT absurd.emit_event('x', '{}')")


def _save_log(conn: psycopg.Connection, fx: Fixture) -> None:
    task, run = _claim(conn)
    lines = '[{"at": "2026-01-01T00:00:00Z", "level": "info", "text": "hello"}]'
    assert conn.execute("SELECT absurd.save_run_log(%s, %s, %s, 0)", (task, run, lines)).fetchone() == (True,)


def _fire(conn: psycopg.Connection, fx: Fixture) -> None:
    row = conn.execute(
        "SELECT absurd.fire_schedule('s', now(), 'manual', NULL, 'me', '{}', %s, NULL)", (WORKFLOW,)
    ).fetchone()
    assert row is not None and row[0] is not None


def _sync(conn: psycopg.Connection, fx: Fixture) -> None:
    conn.execute(
        "INSERT INTO absurd.schedules (name, trigger_kind, interval_s, template, checksum) "
        "VALUES ('probe', 'interval', 60, '{}', 'x')"
    )
    conn.execute("UPDATE absurd.schedules SET enabled = false WHERE name = 'probe'")
    conn.execute("DELETE FROM absurd.schedules WHERE name = 'probe'")


Step = Callable[[psycopg.Connection, Fixture], None]


def _sql(*statements: str) -> list[Step]:
    """One step per statement, each tried on its own, so a role allowed one of them and not another shows."""

    def step(statement: str) -> Step:
        def run(conn: psycopg.Connection, fx: Fixture) -> None:
            conn.execute(statement.format(fx=fx))

        return run

    return [step(s) for s in statements]


ACTIONS: dict[str, list[Step]] = {
    "spawn tasks (`spawn_many`)": _sql(
        "SELECT * FROM absurd.spawn_many('default', ARRAY['noop'], ARRAY['{{}}'::jsonb], "
        "ARRAY[NULL::text], 0, NULL, 3, '{{\"kind\": \"none\"}}', NULL, '{{}}', NULL, NULL)"
    ),
    "claim, complete and fail runs": [_claim_complete_fail],
    "renew leases, checkpoint, emit events": [_lease_work],
    "store a run's log tail (`save_run_log`)": [_save_log],
    "reap expired runs, clean up": _sql(
        "SELECT absurd.reap_expired(10)", "SELECT absurd.cleanup('7 days', 10)"
    ),
    "mark stopped the daemons replaced on their host (`retire_replaced_daemons`)": _sql(
        "SELECT * FROM absurd.retire_replaced_daemons(120)"
    ),
    "register in `workers`": _sql(
        "INSERT INTO absurd.workers (id, hostname, pid, queues, concurrency) "
        "VALUES ('me', 'h', 1, '{{q}}', 1)",
        "UPDATE absurd.workers SET heartbeat_at = now() WHERE id = 'me'",
    ),
    "fire a schedule (`fire_schedule` submits its workflow)": [_fire],
    "sync `schedules`": [_sync],
    "register in `schedulers`": _sql(
        "INSERT INTO absurd.schedulers (id, hostname, pid) VALUES ('me', 'h', 1)",
        "UPDATE absurd.schedulers SET heartbeat_at = now() WHERE id = 'me'",
    ),
    "read the queue tables": _sql(
        "SELECT count(*) FROM absurd.tasks",
        "SELECT count(*) FROM absurd.runs",
        "SELECT count(*) FROM absurd.dlq",
        "SELECT count(*) FROM absurd.gates",
        "SELECT count(*) FROM absurd.workflow_status",
        "SELECT count(*) FROM absurd.run_logs",
    ),
    "read the task names workers serve (`workers.task_names`)": _sql("SELECT task_names FROM absurd.workers"),
    "read `schedules`": _sql("SELECT count(*) FROM absurd.schedules"),
    "`UPDATE` tasks (mark one completed)": _sql("UPDATE absurd.tasks SET state = 'completed' WHERE id = 3"),
    "`DELETE` tasks": _sql("DELETE FROM absurd.tasks WHERE id = 3"),
    "`UPDATE` gates (lift a limit, reset a breaker)": _sql("UPDATE absurd.gates SET max_running = 1000"),
    "set a breaker's state (`set_breaker_state`)": _sql(
        "SELECT absurd.set_breaker_state('casa', 'closed', 'me', 1)"
    ),
    "act on the DLQ (`dlq_retry`, `dlq_skip`, `dlq_requeue`)": _sql(
        "SELECT absurd.dlq_retry({fx.dlq_id}, 'me', 'r', NULL)",
        "SELECT absurd.dlq_skip({fx.dlq_id}, 'me', 'r')",
        "SELECT absurd.dlq_requeue({fx.dlq_id}, 'me', 'r')",
    ),
    "erase the audit trails (`dlq_actions`, `gate_transitions`)": _sql(
        "DELETE FROM absurd.dlq_actions", "DELETE FROM absurd.gate_transitions"
    ),
    "cancel tasks or workflows": _sql(
        "SELECT absurd.cancel_task(3)", "SELECT absurd.cancel_workflow({fx.workflow})"
    ),
    "change or delete event payloads (`events`)": _sql(
        "UPDATE absurd.events SET payload = '{{}}'", "DELETE FROM absurd.events"
    ),
    "submit a workflow directly (`submit_workflow`)": _sql(
        'SELECT absurd.submit_workflow(\'w\', \'{{}}\', \'[{{"step": "a", "name": "noop"}}]\')'
    ),
}


@pytest.fixture
def login_as(dsn: str, client: Client) -> Iterator[Callable[[str], str]]:
    """A DSN for a new login role that holds one queue role and nothing else."""
    made: list[str] = []

    def make(role: str) -> str:
        name = f"t_{role}_{uuid.uuid4().hex[:8]}"
        client.conn.execute(f"CREATE ROLE {name} LOGIN IN ROLE {role}")
        made.append(name)
        return make_conninfo(dsn, user=name)

    yield make
    for name in made:
        client.conn.execute(f"DROP OWNED BY {name}")
        client.conn.execute(f"DROP ROLE {name}")


def _allowed(role_dsn: str, step: Step, fx: Fixture) -> bool:
    """True when the step succeeds, False when it is refused for want of a privilege; rolled back."""
    with psycopg.connect(role_dsn) as conn:
        try:
            step(conn, fx)
            return True
        except psycopg.errors.InsufficientPrivilege:
            return False
        finally:
            conn.rollback()


def _attempt(role_dsn: str, steps: list[Step], fx: Fixture) -> bool | str:
    results = {_allowed(role_dsn, step, fx) for step in steps}
    return results.pop() if len(results) == 1 else "some steps allowed, some refused"


def test_the_documented_table_covers_every_tested_action() -> None:
    assert set(documented()) == set(ACTIONS)


@pytest.mark.parametrize("role", ROLES)
def test_a_role_alone_may_do_what_the_docs_say_and_nothing_else(
    role: str, client: Client, login_as: Callable[[str], str]
) -> None:
    fx = Fixture(client)
    role_dsn = login_as(role)
    observed = {action: _attempt(role_dsn, fn, fx) for action, fn in ACTIONS.items()}
    expected = {action: allowed[role] for action, allowed in documented().items()}
    assert observed == expected


def test_no_queue_function_is_public_and_each_runs_as_its_owner(client: Client) -> None:
    rows = client.conn.execute(
        "SELECT p.oid::regprocedure::text, p.prosecdef, p.proconfig, "
        "       has_function_privilege('public', p.oid, 'EXECUTE') "
        "FROM pg_proc p WHERE p.pronamespace = 'absurd'::regnamespace"
    ).fetchall()
    assert rows
    assert [r[0] for r in rows if r[3]] == [], "executable by PUBLIC"
    assert [r[0] for r in rows if not r[1]] == [], "not SECURITY DEFINER"
    assert [r[0] for r in rows if not r[2] or "search_path=pg_catalog, pg_temp" not in r[2]] == []


def test_functions_a_later_migration_adds_are_not_public(client: Client) -> None:
    client.conn.execute("CREATE FUNCTION absurd.later_migration() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    row = client.conn.execute(
        "SELECT has_function_privilege('public', 'absurd.later_migration()', 'EXECUTE')"
    ).fetchone()
    assert row == (False,)


def test_a_worker_records_the_task_names_it_serves_and_spawning_roles_read_them(
    client: Client, login_as: Callable[[str], str]
) -> None:
    assert client.served_task_names() is None, "no worker has registered: unknown"
    worker_dsn = login_as("absurd_worker")
    worker = Worker(registry, WorkerSettings(poll_s=0.2), worker_dsn)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not client.workers() and time.monotonic() < deadline:
            time.sleep(0.05)
        with Client(worker_dsn) as as_worker:
            assert as_worker.served_task_names() == set(registry.names())
    finally:
        worker.stop()
        thread.join(timeout=30)
    assert client.served_task_names(within_days=0) == set()


def test_the_scheduler_role_alone_fires_an_ungated_workflow(
    dsn: str, client: Client, login_as: Callable[[str], str], tmp_path: Path
) -> None:
    (tmp_path / "s.yaml").write_text(
        textwrap.dedent(
            """
            schedules:
              - name: every-minute
                trigger: {every: 60s}
                workflow:
                  tasks: [{name: a, type: noop}]
            """
        )
    )
    loaded, problems = load_paths([tmp_path], builtin)
    assert not problems, [str(p) for p in problems]
    start = datetime(2026, 11, 30, tzinfo=UTC)
    role_dsn = login_as("absurd_scheduler")
    with psycopg.connect(role_dsn, autocommit=True) as conn:
        sync(conn, loaded, now=start)
    scheduler = Scheduler(dsn=role_dsn)
    try:
        assert scheduler.tick(start.replace(minute=5)) >= 1
    finally:
        scheduler.conn.close()
    assert client.list_workflows()[0]["name"] == "every-minute"
