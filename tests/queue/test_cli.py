"""The admin CLI through typer's runner, on a real database, including bad input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from absurd.cli import app
from absurd.client import Client

runner = CliRunner()


def invoke(dsn: str, *args: str) -> tuple[int, str]:
    """The exit code and stdout (warnings and errors go to stderr)."""
    result = runner.invoke(app, [*args, "--dsn", dsn])
    return result.exit_code, result.stdout


def invoke_err(dsn: str, *args: str) -> tuple[int, str]:
    """The exit code and stderr, its lines joined."""
    result = runner.invoke(app, [*args, "--dsn", dsn])
    return result.exit_code, " ".join(result.stderr.split())


def test_migrate_reports_up_to_date(dsn: str) -> None:
    code, out = invoke(dsn, "migrate")
    assert code == 0 and "up to date" in out


def test_spawn_show_list_cancel_round_trip(dsn: str, client: Client) -> None:
    code, out = invoke(dsn, "task", "spawn", "echo", "--params", '{"x": 1}', "--queue", "q1", "--json")
    assert code == 0
    task_id = json.loads(out)[0]["task_id"]
    code, out = invoke(dsn, "task", "show", str(task_id), "--json")
    assert code == 0 and json.loads(out)["task"]["params"] == {"x": 1}
    code, out = invoke(dsn, "task", "list", "--queue", "q1", "--json")
    assert code == 0 and [t["id"] for t in json.loads(out)] == [task_id]
    code, out = invoke(dsn, "task", "cancel", str(task_id))
    assert code == 0 and "cancelled" in out
    assert client.get_task(task_id)["state"] == "cancelled"


def test_batch_spawn_and_queue_stats(dsn: str) -> None:
    code, _ = invoke(dsn, "task", "spawn", "noop", "--count", "25", "--queue", "bulk")
    assert code == 0
    code, out = invoke(dsn, "queue", "stats", "--json")
    stats = {q["name"]: q for q in json.loads(out)}
    assert code == 0 and stats["bulk"]["ready"] == 25
    code, out = invoke(dsn, "queue", "list")
    assert code == 0 and "bulk" in out


def test_pause_resume_and_unknown_queue(dsn: str) -> None:
    assert invoke(dsn, "queue", "create", "q2")[0] == 0
    assert invoke(dsn, "queue", "pause", "q2")[0] == 0
    code, out = invoke(dsn, "queue", "stats", "--json")
    assert {q["name"]: q["paused"] for q in json.loads(out)}["q2"] is True
    assert invoke(dsn, "queue", "resume", "q2")[0] == 0
    code, err = invoke_err(dsn, "queue", "pause", "nope")
    assert code == 3 and "not found: no queue named 'nope'" in err


def test_events_emit(dsn: str, client: Client) -> None:
    code, out = invoke(dsn, "events", "emit", "new_ms", "--payload", '{"ms_path": "/a.ms"}')
    assert code == 0 and "0 waiting task(s) woken" in out
    row = client.conn.execute("SELECT payload FROM absurd.events WHERE name = 'new_ms'").fetchone()
    assert row == ({"ms_path": "/a.ms"},)


def test_wait_prints_the_result(dsn: str, client: Client) -> None:
    task = client.spawn("echo", {})
    client.conn.execute(
        "UPDATE absurd.tasks SET state = 'completed', result = '{\"r\": 2}' WHERE id = %s", (task.task_id,)
    )
    code, out = invoke(dsn, "task", "wait", str(task.task_id))
    assert code == 0 and json.loads(out) == {"r": 2}


def test_cleanup_and_workers(dsn: str) -> None:
    code, out = invoke(dsn, "cleanup", "--older-than-days", "0")
    assert code == 0 and "deleted 0" in out
    code, out = invoke(dsn, "workers", "--json")
    assert code == 0 and json.loads(out) == []


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["task", "show", "999999"], 3, "no task with id 999999"),
        (["task", "cancel", "999999"], 3, "no task with id 999999"),
        (["task", "spawn", "echo", "--params", "{not json"], 2, "--params is not valid JSON"),
        (["task", "spawn", "echo", "--queue", "bad queue!"], 2, "queue: String should match pattern"),
        (["task", "list", "--state", "exploded"], 2, "unknown state 'exploded'; choose one of waiting,"),
        (["events", "emit", "x", "--payload", "{"], 2, "--payload is not valid JSON"),
        (["task", "show", "not-a-number"], 2, "parse string as an integer"),
    ],
)
def test_bad_input_gets_a_clear_error(dsn: str, args: list[str], code: int, message: str) -> None:
    exit_code, err = invoke_err(dsn, *args)
    assert exit_code == code
    assert message in err


def test_list_by_the_waiting_state(dsn: str, client: Client) -> None:
    """A workflow task held by its dependency is `waiting`, and `--state waiting` lists it."""
    from absurd.workflow_spec import parse_spec

    client.submit_workflow(
        parse_spec(
            {
                "name": "w",
                "tasks": [{"name": "a", "type": "echo"}, {"name": "b", "type": "echo", "depends_on": ["a"]}],
            }
        )
    )
    code, out = invoke(dsn, "task", "list", "--state", "waiting", "--json")
    assert code == 0 and [t["name"] for t in json.loads(out)] == ["echo"]


def test_worker_with_an_unknown_registry_fails_clearly(dsn: str) -> None:
    code, err = invoke_err(dsn, "worker", "--registry", "no_such_module:registry")
    assert code == 2 and "cannot load task registry 'no_such_module:registry'" in err
