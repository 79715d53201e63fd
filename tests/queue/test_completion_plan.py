"""Starting, completing and renewing a batch of runs must find each task by its primary key, never re-scan
the batch; a task spawned alone is inserted without reading any task.

As in test_claim_plan.py, the real body of each function is read from the catalogue, prepared with the
function's parameters and EXPLAINed inside a rolled-back transaction. The statistics are taken while no task
runs (as after a large enqueue): that is when the planner was tempted to walk every running task through
tasks_leases and re-scan the whole batch for each, quadratic in the batch.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg import sql

from absurd import queries
from absurd.client import Client

BATCH = 200


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


def _plan(dsn: str, types: str, statement: str, args: list[Any]) -> list[dict[str, Any]]:
    """The nodes of the statement's plan, as executed the sixth time (when a generic plan may be used)."""
    values = sql.SQL(", ").join(sql.Literal(a) for a in args)
    explain = sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE hot({})").format(values)
    with psycopg.connect(dsn) as conn:  # not autocommit: everything is rolled back
        conn.execute(f"PREPARE hot({types}) AS {statement}")
        for _ in range(6):
            conn.execute("SAVEPOINT run")
            row = conn.execute(explain).fetchone()
            conn.execute("ROLLBACK TO SAVEPOINT run")
        conn.rollback()
    assert row is not None
    return _nodes(row[0][0]["Plan"])


def _claimed_batch(client: Client) -> tuple[list[int], list[int]]:
    client.spawn_many("noop", [{}] * 5_000)
    client.conn.execute("VACUUM ANALYZE absurd.tasks")
    rows = client.conn.execute(queries.CLAIM, ("default", "plan-test", BATCH, 60.0)).fetchall()
    assert len(rows) == BATCH
    return [int(r[0]) for r in rows], [int(r[1]) for r in rows]


def _assert_flat(nodes: list[dict[str, Any]]) -> None:
    removed = sum(n.get("Rows Removed by Join Filter", 0) for n in nodes)
    assert removed == 0, f"a join re-scans the batch ({removed} rows removed by join filter)"
    on_tasks = [n for n in nodes if n.get("Relation Name") == "tasks" and n["Node Type"] != "ModifyTable"]
    assert on_tasks and all(n.get("Index Name") == "tasks_pkey" for n in on_tasks), (
        f"tasks must be read by primary key: {[(n['Node Type'], n.get('Index Name')) for n in on_tasks]}"
    )
    # Each task is looked up once: no lookup returns more than its own row.
    assert all(n["Actual Rows"] <= 1 for n in on_tasks)


def test_completing_a_batch_looks_up_each_task_once(dsn: str, client: Client) -> None:
    tasks, runs = _claimed_batch(client)
    signature = "absurd.complete_runs(bigint[], bigint[], jsonb[])"
    body = _body(client, signature, ["p_task_ids", "p_run_ids", "p_results"])
    assert "WITH input" in body and "INTO v_done" in body, "complete_runs lost the statement tested here"
    statement = body[body.index("WITH input") : body.index("INTO v_done")] + " FROM done"
    nodes = _plan(dsn, "bigint[], bigint[], jsonb[]", statement, [tasks, runs, [None] * len(tasks)])
    _assert_flat(nodes)
    updated = [n for n in nodes if n["Node Type"] == "ModifyTable" and n.get("Relation Name") == "tasks"]
    assert updated and updated[0]["Actual Rows"] == BATCH


def test_renewing_a_batch_of_leases_looks_up_each_task_once(dsn: str, client: Client) -> None:
    tasks, runs = _claimed_batch(client)
    body = _body(
        client,
        "absurd.extend_leases(bigint[], bigint[], double precision)",
        ["p_task_ids", "p_run_ids", "p_lease_s"],
    )
    nodes = _plan(dsn, "bigint[], bigint[], double precision", body, [tasks, runs, 60.0])
    _assert_flat(nodes)
    renewed = [n for n in nodes if n["Node Type"] == "ModifyTable" and n.get("Relation Name") == "tasks"]
    assert renewed and renewed[0]["Actual Rows"] == BATCH


def test_starting_a_batch_of_runs_looks_up_each_task_once(dsn: str, client: Client) -> None:
    client.spawn_many("noop", [{}] * 5_000)
    client.conn.execute("VACUUM ANALYZE absurd.tasks")
    ids = [
        int(r[0]) for r in client.conn.execute("SELECT id FROM absurd.tasks ORDER BY id LIMIT %s", (BATCH,))
    ]
    body = _body(
        client,
        "absurd.start_runs(bigint[], text, double precision)",
        ["p_ids", "p_worker", "p_lease_s"],
    )
    # A PL/pgSQL body (0013_queue_hot_path.sql): the statement is what it returns.
    found = re.search(r"RETURN QUERY\s+(.*?);\s*END", body, re.S)
    assert found, "start_runs lost the statement tested here"
    nodes = _plan(dsn, "bigint[], text, double precision", found.group(1), [ids, "plan-test", 60.0])
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
    nodes = _plan(dsn, types, found.group(1), args)
    inserted = [n for n in nodes if n["Node Type"] == "ModifyTable" and n.get("Relation Name") == "tasks"]
    assert inserted and inserted[0]["Actual Rows"] == 1
    # The only lookup is the gate named like the task, by the gates' primary key; no task row is read.
    reads = [n for n in nodes if n.get("Relation Name") and n["Node Type"] != "ModifyTable"]
    assert [(n["Relation Name"], n.get("Index Name")) for n in reads] == [("gates", "gates_pkey")], reads
