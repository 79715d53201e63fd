"""Starting, completing, renewing and releasing a batch of runs must find each task by its primary key, once,
never re-scanning the batch; a task spawned alone is inserted without reading any task.

As in test_claim_plan.py, the real body of each function is read from the catalogue, prepared with the
function's parameters (or the variables its statement reads) and EXPLAINed inside a rolled-back transaction,
at each of the first six executions: the custom plans, which know the batch's size, and then the one that
may be generic. The statistics are taken while no task runs (as after a large enqueue): that is when the
planner was tempted to walk every running task, or scan the whole table, and re-scan the batch for each,
quadratic in the batch (0018_batch_plans.sql).
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg import sql

from absurd import queries
from absurd.client import Client

# The completer's largest batch among 5,000 queued tasks: a custom plan of a batch this large chose a scan of
# the table, re-scanning the batch for each running task (0018_batch_plans.sql), here as at 30,000.
BATCH = 500
TASKS = 5_000


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found.extend(_nodes(child))
    return found


def _body(client: Client, signature: str, params: list[str]) -> str:
    query = "SELECT prosrc FROM pg_proc WHERE oid = %s::regprocedure"
    row = client.conn.execute(query, (signature,)).fetchone()
    assert row is not None
    body = str(row[0])
    for i, name in enumerate(params, start=1):
        body = re.sub(rf"\b{name}\b", f"${i}", body)
    return body


def _settings(client: Client, signature: str) -> list[tuple[str, str]]:
    """The settings the function plans under (its SET clauses)."""
    query = "SELECT coalesce(proconfig, '{}') FROM pg_proc WHERE oid = %s::regprocedure"
    row = client.conn.execute(query, (signature,)).fetchone()
    assert row is not None
    return [(item.split("=", 1)[0], item.split("=", 1)[1]) for item in row[0]]


def _plans(
    client: Client, dsn: str, signature: str, types: str, statement: str, args: list[Any]
) -> list[list[dict[str, Any]]]:
    """The nodes of the statement's plan at each of its first six executions under the function's own
    settings: five custom plans, which know the batch's size, then one that may be generic."""
    values = sql.SQL(", ").join(sql.Literal(a) for a in args)
    explain = sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE hot({})").format(values)
    plans = []
    with psycopg.connect(dsn) as conn:  # not autocommit: everything is rolled back
        for name, value in _settings(client, signature):
            conn.execute("SELECT set_config(%s, %s, true)", (name, value))
        conn.execute(f"PREPARE hot({types}) AS {statement}")
        for _ in range(6):
            conn.execute("SAVEPOINT run")
            row = conn.execute(explain).fetchone()
            conn.execute("ROLLBACK TO SAVEPOINT run")
            assert row is not None
            plans.append(_nodes(row[0][0]["Plan"]))
        conn.rollback()
    return plans


def _claimed_batch(client: Client) -> tuple[list[int], list[int]]:
    client.spawn_many("noop", [{}] * TASKS)
    client.conn.execute("VACUUM ANALYZE absurd.tasks")
    rows = client.conn.execute(queries.CLAIM, ("default", "plan-test", BATCH, 60.0)).fetchall()
    assert len(rows) == BATCH
    return [int(r[0]) for r in rows], [int(r[1]) for r in rows]


def _sorted(tasks: list[int], runs: list[int]) -> tuple[list[int], list[int]]:
    """The batch as the functions sort it before their statement."""
    pairs = sorted(zip(tasks, runs, strict=True))
    return [t for t, _ in pairs], [r for _, r in pairs]


def _assert_flat(nodes: list[dict[str, Any]]) -> None:
    removed = sum(n.get("Rows Removed by Join Filter", 0) for n in nodes)
    assert removed == 0, f"a join re-scans the batch ({removed} rows removed by join filter)"
    on_tasks = [n for n in nodes if n.get("Relation Name") == "tasks" and n["Node Type"] != "ModifyTable"]
    assert on_tasks and all(n.get("Index Name") == "tasks_pkey" for n in on_tasks), (
        f"tasks must be read by primary key: {[(n['Node Type'], n.get('Index Name')) for n in on_tasks]}"
    )
    # Each read finds each task of the batch once and nothing else.
    assert all(n["Actual Rows"] * n.get("Actual Loops", 1) <= BATCH for n in on_tasks)


def test_completing_a_batch_looks_up_each_task_once(dsn: str, client: Client) -> None:
    tasks, runs = _claimed_batch(client)
    signature = "absurd.complete_runs(bigint[], bigint[], jsonb[])"
    body = _body(client, signature, ["v_ids", "v_runs", "v_results"])
    assert "WITH done" in body and "INTO v_done" in body, "complete_runs lost the statement tested here"
    statement = body[body.index("WITH done") : body.index("INTO v_done")] + " FROM done"
    types = "bigint[], bigint[], jsonb[]"
    ids, run_ids = _sorted(tasks, runs)
    for nodes in _plans(client, dsn, signature, types, statement, [ids, run_ids, [None] * len(ids)]):
        _assert_flat(nodes)
        updated = [n for n in nodes if n["Node Type"] == "ModifyTable" and n.get("Relation Name") == "tasks"]
        assert updated and updated[0]["Actual Rows"] == BATCH


def test_renewing_a_batch_of_leases_looks_up_each_task_once(dsn: str, client: Client) -> None:
    tasks, runs = _claimed_batch(client)
    signature = "absurd.extend_leases(bigint[], bigint[], double precision)"
    body = _body(client, signature, ["v_ids", "v_runs", "p_lease_s"])
    found = re.search(r"RETURN QUERY\s+(.*?);\s*END", body, re.S)
    assert found, "extend_leases lost the statement tested here"
    types = "bigint[], bigint[], double precision"
    for nodes in _plans(client, dsn, signature, types, found.group(1), [*_sorted(tasks, runs), 60.0]):
        _assert_flat(nodes)
        renewed = [n for n in nodes if n["Node Type"] == "ModifyTable" and n.get("Relation Name") == "tasks"]
        assert renewed and renewed[0]["Actual Rows"] == BATCH


def test_releasing_a_batch_of_runs_looks_up_each_task_once(dsn: str, client: Client) -> None:
    tasks, runs = _claimed_batch(client)
    signature = "absurd.release_runs(bigint[], bigint[])"
    body = _body(client, signature, ["v_ids", "v_runs"])
    assert "WITH held AS" in body and "INTO n" in body, "release_runs lost the statement tested here"
    statement = body[body.index("WITH held AS") : body.index("INTO n")] + " FROM released"
    types = "bigint[], bigint[]"
    for nodes in _plans(client, dsn, signature, types, statement, list(_sorted(tasks, runs))):
        _assert_flat(nodes)
        released = [n for n in nodes if n["Node Type"] == "ModifyTable" and n.get("Relation Name") == "tasks"]
        assert released and released[0]["Actual Rows"] == BATCH


def test_starting_a_batch_of_runs_looks_up_each_task_once(dsn: str, client: Client) -> None:
    client.spawn_many("noop", [{}] * TASKS)
    client.conn.execute("VACUUM ANALYZE absurd.tasks")
    ids = [
        int(r[0]) for r in client.conn.execute("SELECT id FROM absurd.tasks ORDER BY id LIMIT %s", (BATCH,))
    ]
    signature = "absurd.start_runs(bigint[], text, double precision)"
    body = _body(client, signature, ["p_ids", "p_worker", "p_lease_s"])
    # A PL/pgSQL body (0013_queue_hot_path.sql): the statement is what it returns.
    found = re.search(r"RETURN QUERY\s+(.*?);\s*END", body, re.S)
    assert found, "start_runs lost the statement tested here"
    types = "bigint[], text, double precision"
    for nodes in _plans(client, dsn, signature, types, found.group(1), [ids, "plan-test", 60.0]):
        # One primary-key scan over the id array: it reads the batch's rows and nothing else.
        on_tasks = [n for n in nodes if n.get("Relation Name") == "tasks" and n["Node Type"] != "ModifyTable"]
        assert on_tasks and all(n.get("Index Name") == "tasks_pkey" for n in on_tasks), (
            f"tasks must be read by primary key: {[(n['Node Type'], n.get('Index Name')) for n in on_tasks]}"
        )
        assert sum(n["Actual Rows"] * n.get("Actual Loops", 1) for n in on_tasks) == BATCH
        assert all(n.get("Rows Removed by Filter", 0) == 0 for n in on_tasks)
        started = [n for n in nodes if n["Node Type"] == "ModifyTable" and n.get("Relation Name") == "tasks"]
        assert started and started[0]["Actual Rows"] == BATCH


SPAWN_MANY = (
    "absurd.spawn_many(text, text[], jsonb[], text[], integer, timestamp with time zone, integer, jsonb, "
    "double precision, jsonb, text, integer)"
)
SPAWN_PARAMS = [
    "p_queue", "p_names", "p_params", "p_keys", "p_priority", "p_available_at", "p_max_attempts", "p_retry",
    "p_timeout_s", "p_headers", "p_gate", "p_gate_limit",
]  # fmt: skip


def test_a_single_spawn_inserts_its_row_and_reads_no_task(dsn: str, client: Client) -> None:
    client.spawn_many("noop", [{}] * 5_000)
    client.conn.execute("INSERT INTO absurd.gates (key) SELECT 'gate-' || g FROM generate_series(1, 2000) g")
    client.conn.execute("VACUUM ANALYZE absurd.tasks")
    client.conn.execute("VACUUM ANALYZE absurd.gates")
    body = _body(client, SPAWN_MANY, SPAWN_PARAMS)
    # A batch of one (0017_single_spawn.sql): a plain INSERT, planned once per session.
    found = re.search(
        r"IF cardinality\(\$2\) = 1 THEN\s+(INSERT INTO absurd\.tasks .*?RETURNING id)", body, re.S
    )
    assert found, "spawn_many lost the single-task statement tested here"
    types = (
        "text, text[], jsonb[], text[], integer, timestamptz, integer, jsonb, double precision, jsonb, "
        "text, integer"
    )
    args = ["default", ["noop"], ["{}"], [None], 0, None, 3, '{"kind": "none"}', None, "{}", None, None]
    nodes = _plans(client, dsn, SPAWN_MANY, types, found.group(1), args)[-1]
    inserted = [n for n in nodes if n["Node Type"] == "ModifyTable" and n.get("Relation Name") == "tasks"]
    assert inserted and inserted[0]["Actual Rows"] == 1
    # The only lookup is the gate named like the task, by the gates' primary key; no task row is read.
    reads = [n for n in nodes if n.get("Relation Name") and n["Node Type"] != "ModifyTable"]
    assert [(n["Relation Name"], n.get("Index Name")) for n in reads] == [("gates", "gates_pkey")], reads
