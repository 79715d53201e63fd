"""Workflow references (``${step.result...}``): resolved against every completed parent, whatever the
interleaving of their completions, in one pass, and never against a parent that cleanup removed."""

from __future__ import annotations

import threading
from typing import Any

import psycopg

from absurd.client import Client
from absurd.workflow_spec import parse_spec
from tests.queue.conftest import StartWorker
from tests.support.processes import start_worker, stop_worker, wait_until, wait_until_lock_wait


def _diamond(client: Client, n: int) -> list[int]:
    spec = parse_spec(
        {
            "name": "diamond",
            "tasks": [
                {"name": "a", "type": "echo", "params": {"v": "A"}},
                {"name": "b", "type": "echo", "params": {"v": "B"}},
                {
                    "name": "join",
                    "type": "echo",
                    "depends_on": ["a", "b"],
                    "params": {
                        "from_a": "${a.result.v}",
                        "from_b": "${b.result.v}",
                        "text": "${a.result.v}+${b.result.v}",
                    },
                },
            ],
        }
    )
    return [client.submit_workflow(spec) for _ in range(n)]


def _claim(conn: psycopg.Connection, limit: int) -> dict[str, tuple[int, int]]:
    rows = conn.execute(
        "SELECT c.task_id, c.run_id, t.step_name FROM absurd.claim('default', 'test', %s, 60) c "
        "JOIN absurd.tasks t ON t.id = c.task_id",
        (limit,),
    ).fetchall()
    return {step: (task_id, run_id) for task_id, run_id, step in rows}


def _complete(conn: psycopg.Connection, run: tuple[int, int], result: Any) -> None:
    conn.execute(
        "SELECT absurd.complete_runs(%s, %s, %s::jsonb[])",
        ([run[0]], [run[1]], [psycopg.types.json.Jsonb(result)]),
    )


def test_a_join_sees_both_parents_when_they_complete_at_the_same_moment(dsn: str, client: Client) -> None:
    # The review's interleaving, made deterministic: A's completion holds the join's row lock, B's completion
    # waits for it, then A commits. B's transaction must resolve ${a...} against A's committed result.
    (wf,) = _diamond(client, 1)
    with psycopg.connect(dsn, autocommit=True) as first, psycopg.connect(dsn, autocommit=True) as second:
        runs = _claim(first, 10)
        assert set(runs) == {"a", "b"}
        first.execute("BEGIN")
        _complete(first, runs["a"], {"v": "A"})
        second_pid = second.info.backend_pid
        done = threading.Event()

        def complete_b() -> None:
            _complete(second, runs["b"], {"v": "B"})
            done.set()

        thread = threading.Thread(target=complete_b)
        thread.start()
        wait_until_lock_wait(client.conn, second_pid, "B to wait for the join")
        first.execute("COMMIT")
        thread.join(30)
        assert done.is_set()
    join = next(t for t in client.workflow(wf)["task_rows"] if t["step_name"] == "join")
    task = client.get_task(join["id"])
    assert task["state"] == "pending"
    assert task["params"] == {"from_a": "A", "from_b": "B", "text": "A+B"}


def test_no_join_starts_with_a_null_reference_under_two_worker_processes(dsn: str, client: Client) -> None:
    workflows = _diamond(client, 300)
    # One slot each: the two parents of a diamond go to the two workers and complete at about the same time.
    workers = [start_worker(dsn, "--concurrency", "1") for _ in range(2)]
    try:
        wait_until(
            lambda: (
                client.conn.execute("SELECT count(*) FROM absurd.tasks WHERE state <> 'completed'").fetchone()
                == (0,)
            ),
            timeout=300,
            interval=0.5,
            what="every diamond to complete",
        )
    finally:
        for w in workers:
            stop_worker(w)
    rows = client.conn.execute(
        "SELECT result FROM absurd.tasks WHERE step_name = 'join' AND workflow_id = ANY(%s)", (workflows,)
    ).fetchall()
    assert len(rows) == len(workflows)
    bad = [r[0] for r in rows if r[0] != {"from_a": "A", "from_b": "B", "text": "A+B"}]
    assert bad == []


def test_a_result_that_contains_a_reference_is_inserted_once(
    client: Client, start_worker: StartWorker
) -> None:
    spec = parse_spec(
        {
            "name": "self-referencing-text",
            "tasks": [
                {"name": "a", "type": "echo", "params": {"v": "${params.text}"}},
                {"name": "b", "type": "echo", "depends_on": ["a"], "params": {"t": "got ${a.result.v}!"}},
            ],
        }
    )
    # The workflow parameter is substituted at submission, so a's result holds reference-like text.
    wf = client.submit_workflow(spec, params={"text": "literal ${a.result.v} and ${b.result}"})
    start_worker()
    wait_until(
        lambda: client.workflow(wf)["state"] == "completed", timeout=30, what="the workflow to complete"
    )
    b = next(t for t in client.workflow(wf)["task_rows"] if t["step_name"] == "b")
    assert client.get_task(b["id"])["result"] == {"t": "got literal ${a.result.v} and ${b.result}!"}


def test_cleanup_keeps_the_parents_of_a_blocked_join(client: Client) -> None:
    spec = parse_spec(
        {
            "name": "blocked-join",
            "tasks": [
                {"name": "cal", "type": "echo", "params": {"caltable": "/cal/x.tbl"}},
                {"name": "other", "type": "echo", "params": {}},
                {
                    "name": "join",
                    "type": "echo",
                    "depends_on": ["cal", "other"],
                    "params": {"caltable": "${cal.result.caltable}"},
                },
            ],
        }
    )
    wf = client.submit_workflow(spec)
    runs = _claim(client.conn, 10)
    _complete(client.conn, runs["cal"], {"caltable": "/cal/x.tbl"})
    client.conn.execute(
        "SELECT absurd.fail_run(%s, %s, 'error', '{\"message\": \"down\"}', true)", runs["other"]
    )
    # Long past retention: cleanup must still keep the completed parent the join will read.
    client.conn.execute(
        "UPDATE absurd.tasks SET finished_at = now() - interval '30 days' WHERE finished_at IS NOT NULL"
    )
    client.cleanup(older_than_s=7 * 86400)
    (entry,) = client.dlq()
    client.dlq_retry(entry["id"], "operator", "back from holiday")
    runs = _claim(client.conn, 10)
    _complete(client.conn, runs["other"], {})
    join = next(t for t in client.workflow(wf)["task_rows"] if t["step_name"] == "join")
    assert client.get_task(join["id"])["params"] == {"caltable": "/cal/x.tbl"}
    # Once the workflow has finished, its tasks go like any other.
    runs = _claim(client.conn, 10)
    _complete(client.conn, runs["join"], {})
    client.conn.execute("UPDATE absurd.tasks SET finished_at = now() - interval '30 days'")
    assert client.cleanup(older_than_s=7 * 86400) == 3
