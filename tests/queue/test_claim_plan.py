"""The claim query must use its partial index and never walk finished tasks.

pgserver has no auto_explain, so the test reads the real body of ``absurd.ready_tasks`` (the
picker ``absurd.claim`` calls) from the catalogue, prepares the statement it returns with the function's
parameters and EXPLAINs it inside a rolled-back transaction: the plan tested is the plan of the code that
runs. ``start_runs``, which starts the picked runs, is tested in test_completion_plan.py.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg

from absurd.client import Client

PARAMS = ["p_queue", "p_limit"]


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found.extend(_nodes(child))
    return found


def test_claim_uses_the_claim_index_and_skips_finished_tasks(dsn: str, client: Client) -> None:
    client.spawn_many("noop", [{}] * 50_000)
    client.conn.execute("UPDATE absurd.tasks SET state = 'completed', finished_at = now()")
    client.spawn_many("noop", [{}] * 20)
    client.conn.execute("VACUUM ANALYZE absurd.tasks")

    body = client.conn.execute(
        "SELECT prosrc FROM pg_proc WHERE oid = 'absurd.ready_tasks(text, integer)'::regprocedure"
    ).fetchone()
    assert body is not None
    # A PL/pgSQL body (0013_queue_hot_path.sql): the statement is what it returns.
    sql = re.search(r"RETURN QUERY\s+(.*?);\s*END", body[0], re.S).group(1)  # type: ignore[union-attr]
    for i, name in enumerate(PARAMS, start=1):
        sql = re.sub(rf"\b{name}\b", f"${i}", sql)

    with psycopg.connect(dsn) as conn:  # not autocommit: everything is rolled back
        conn.execute(f"PREPARE claim_plan(text, integer) AS {sql}")
        row = conn.execute(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE claim_plan('default', 10)"
        ).fetchone()
        conn.rollback()
    assert row is not None
    plan = row[0][0]["Plan"]
    nodes = _nodes(plan)
    on_tasks = [n for n in nodes if n.get("Relation Name") == "tasks"]
    assert on_tasks, "the plan must read absurd.tasks"
    assert not [n for n in on_tasks if n["Node Type"] == "Seq Scan"], "no sequential scan of tasks"
    picked = [n for n in on_tasks if n.get("Index Name") == "tasks_claim"]
    assert picked, f"claim must use tasks_claim; plan nodes: {[n['Node Type'] for n in nodes]}"
    # 50,000 finished rows exist; the claim must touch only the claimable ones.
    assert all(n.get("Rows Removed by Filter", 0) == 0 for n in picked)
    assert picked[0]["Actual Rows"] <= 20
    # And the claim itself goes through that picker.
    claim = client.conn.execute(
        "SELECT prosrc FROM pg_proc "
        "WHERE oid = 'absurd.claim(text, text, integer, double precision)'::regprocedure"
    ).fetchone()
    assert claim is not None and "absurd.ready_tasks(p_queue" in claim[0]
    assert picked[0].get("Shared Hit Blocks", 0) + picked[0].get("Shared Read Blocks", 0) < 50
