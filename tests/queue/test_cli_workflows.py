"""The workflow, DLQ, breaker and limit commands of the admin CLI, on a real database, with bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from absurd.cli import app
from absurd.client import Client
from absurd.options import FixedDelay, NoRetry, SpawnOptions
from absurd.registry import Registry
from tests.queue.conftest import StartWorker
from tests.support.postgres import ServerUnderTest, fresh_database
from tests.support.processes import wait_until

runner = CliRunner()
REGISTRY = "tests.support.tasks:registry"

# A task type with options of its own, which steps and spawns that leave them out inherit.
OWN_OPTIONS = Registry()
OWN_OPTIONS_REGISTRY = "tests.queue.test_cli_workflows:OWN_OPTIONS"
STAGE_OPTIONS = SpawnOptions(queue="imaging", timeout_s=600, max_attempts=5, retry=FixedDelay(base_s=2))


@OWN_OPTIONS.task("stage", options=STAGE_OPTIONS)
def stage(ctx: object, params: Any) -> Any:
    """Return the params."""
    return params


STAGES = """
name: stages
tasks:
  - {name: a, type: stage}
  - {name: b, type: stage, queue: special, max_attempts: 1, depends_on: [a]}
"""

DIAMOND = """
name: diamond
params: {x: 1}
tasks:
  - {name: a, type: echo, params: {x: "${params.x}", label: "${params.label}"}}
  - {name: b, type: echo, depends_on: [a]}
  - {name: c, type: echo, depends_on: [a]}
  - {name: d, type: echo, depends_on: [b, c]}
"""


@pytest.fixture(scope="module")
def shared_dsn(pg_server: ServerUnderTest) -> Iterator[str]:
    """One database for the tests that only read, or are refused before writing anything."""
    with fresh_database(pg_server) as dsn:
        yield dsn


def invoke(dsn: str, *args: str) -> tuple[int, str]:
    """Exit code and output (stdout and stderr), whitespace folded so wrapped lines still match."""
    result = runner.invoke(app, [*args, "--dsn", dsn])
    return result.exit_code, " ".join(result.output.split())


def invoke_json(dsn: str, *args: str) -> Any:
    """Run a command with --json; it must succeed and print JSON."""
    result = runner.invoke(app, [*args, "--json", "--dsn", dsn])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def submit(dsn: str, path: Path, *args: str) -> int:
    return int(invoke_json(dsn, "workflow", "submit", str(path), *args)["workflow_id"])


def state_of(client: Client, workflow_id: int) -> str:
    return str(client.workflow(workflow_id)["state"])


def test_submit_show_list_and_cancel(dsn: str, client: Client, tmp_path: Path) -> None:
    spec = write(tmp_path, "diamond.yaml", DIAMOND)
    wf = submit(dsn, spec, "--param", "x=5", "--param", "label=hello=world", "--registry", REGISTRY)
    rows = {t["step_name"]: t for t in client.workflow(wf)["task_rows"]}
    assert client.get_task(rows["a"]["id"])["params"] == {"x": 5, "label": "hello=world"}

    code, out = invoke(dsn, "workflow", "show", str(wf))
    assert code == 0
    assert f"workflow {wf} diamond: running (4 tasks, 0 completed, 1 active, 3 waiting)" in out
    for step in ("a", "b", "c", "d"):
        assert f"{step} echo" in out
    assert "pending" in out and "waiting" in out
    # d has two parents: drawn in full under b, marked as shown under c.
    assert out.count("d echo waiting") == 1 and "d (shown above)" in out

    code, out = invoke(dsn, "workflow", "show", str(wf), "--format", "table")
    assert code == 0 and "b,c" in out and "after" in out
    shown = invoke_json(dsn, "workflow", "show", str(wf))
    assert shown["state"] == "running"
    assert {t["step_name"]: t["state"] for t in shown["task_rows"]} == {
        "a": "pending",
        "b": "waiting",
        "c": "waiting",
        "d": "waiting",
    }

    assert [w["id"] for w in invoke_json(dsn, "workflow", "list", "--state", "running")] == [wf]
    assert invoke_json(dsn, "workflow", "list", "--state", "completed") == []
    code, out = invoke(dsn, "workflow", "list")
    assert code == 0 and "diamond" in out

    code, out = invoke(dsn, "workflow", "cancel", str(wf))
    assert code == 0 and "4 unfinished task(s)" in out
    assert state_of(client, wf) == "cancelled"
    assert [w["id"] for w in invoke_json(dsn, "workflow", "list", "--state", "cancelled")] == [wf]


def _options(client: Client, workflow_id: int) -> dict[str, tuple[Any, ...]]:
    rows = {t["step_name"]: client.get_task(t["id"]) for t in client.workflow(workflow_id)["task_rows"]}
    return {
        step: (r["queue"], r["timeout_s"], r["max_attempts"], r["retry"]["kind"]) for step, r in rows.items()
    }


def test_steps_inherit_their_task_types_options_from_the_registry(
    dsn: str, client: Client, tmp_path: Path
) -> None:
    spec = write(tmp_path, "stages.yaml", STAGES)
    wf = submit(dsn, spec, "--registry", OWN_OPTIONS_REGISTRY)
    assert _options(client, wf) == {
        "a": ("imaging", 600.0, 5, "fixed"),
        "b": ("special", 600.0, 1, "fixed"),
    }


def test_without_a_registry_a_submit_says_where_the_options_come_from(
    dsn: str, client: Client, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["workflow", "submit", str(write(tmp_path, "s.yaml", STAGES)), "--dsn", dsn])
    assert result.exit_code == 0, result.output
    warning = " ".join(result.stderr.split())
    assert warning.startswith("warning: no task registry: task types not checked (no worker has recorded")
    assert "options left out by steps a, b are the engine's defaults (queue default, 3 attempts" in warning
    assert "give --registry or ABSURD_REGISTRY" in warning
    wf = int(result.stdout.split()[1])
    assert _options(client, wf) == {
        "a": ("default", None, 3, "exponential"),
        "b": ("special", None, 1, "exponential"),
    }


def test_submit_checks_task_types_against_the_tasks_workers_serve(
    dsn: str, client: Client, tmp_path: Path
) -> None:
    client.conn.execute(
        "INSERT INTO absurd.workers (id, hostname, pid, queues, concurrency, task_names) "
        "VALUES ('w1', 'h', 1, '{default}', 1, '{echo,noop}')"
    )
    spec = write(tmp_path, "s.yaml", STAGES)
    code, out = invoke(dsn, "workflow", "submit", str(spec))
    assert code == 1
    assert f"error: {spec}: task 'a' has unknown type 'stage'; served tasks, closest first:" in out
    assert client.list_workflows() == []


@pytest.mark.parametrize(
    ("text", "messages"),
    [
        ("name: x\ntasks: [{name: a, type: echo\n", ["bad-spec.yaml:3: not valid YAML: expected ',' or '}'"]),
        (
            "name: x\ntasks:\n  - {name: p, type: echo, depends_on: [q]}\n"
            "  - {name: q, type: echo, depends_on: [p]}\n",
            ["cycle: "],
        ),
        (
            "name: x\ntasks:\n  - {name: a, type: echo, depends_on: [ghost]}\n  - {name: a, type: echo}\n",
            ["task 'a' depends on unknown task 'ghost'", "duplicate task name 'a'"],
        ),
        (
            "name: x\ntasks:\n  - {name: a, type: ehco}\n",
            ["task 'a' has unknown type 'ehco'; registered tasks, closest first: echo,"],
        ),
        ("name: x\ntasks: []\n", ["tasks:"]),
        ("name: x\ntasks:\n  - {name: a, type: echo, params: {v: '${params.missing}'}}\n", ["has no value"]),
    ],
)
def test_a_bad_spec_file_is_refused_with_every_problem(
    shared_dsn: str, tmp_path: Path, text: str, messages: list[str]
) -> None:
    path = write(tmp_path, "bad-spec.yaml", text)
    code, out = invoke(shared_dsn, "workflow", "submit", str(path), "--registry", REGISTRY)
    assert code == 1
    assert out.startswith(f"error: {path}") and out.endswith("nothing was submitted")
    for message in messages:
        assert message in out
    with Client(shared_dsn) as c:
        assert c.list_workflows() == [] and c.list_tasks() == []


def test_a_cycle_is_named(shared_dsn: str, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "loop.json",
        json.dumps(
            {
                "name": "loop",
                "tasks": [
                    {"name": "x", "type": "echo", "depends_on": ["y"]},
                    {"name": "y", "type": "echo", "depends_on": ["x"]},
                ],
            }
        ),
    )
    code, out = invoke(shared_dsn, "workflow", "submit", str(path))
    assert code == 1 and "loop.json" in out
    assert "cycle: x → y → x" in out or "cycle: y → x → y" in out


@pytest.mark.parametrize(
    ("args", "code", "messages"),
    [
        (["workflow", "submit", "{spec}", "--param", "noequals"], 2, ["noequals", "key=value"]),
        (["workflow", "submit", "{spec}", "--param", "=5"], 2, ["'=5'", "key=value"]),
        (["workflow", "submit", "/no/such/file.yaml"], 1, ["/no/such/file.yaml", "cannot read"]),
        (
            ["workflow", "submit", "{spec}", "--registry", "nowhere:registry"],
            2,
            ["cannot load task registry"],
        ),
        (["workflow", "show", "999999"], 3, ["no workflow with id 999999"]),
        (["workflow", "show", "1", "--format", "pie"], 2, ["pie"]),
        (["workflow", "cancel", "999999"], 3, ["no workflow with id 999999"]),
        (["workflow", "list", "--state", "exploded"], 2, ["unknown workflow state 'exploded'"]),
        (["dlq", "show", "999999"], 3, ["no DLQ entry with id 999999"]),
        (["dlq", "list", "--since", "yesterday"], 2, ["yesterday", "2h or 3d"]),
        (["dlq", "retry", "999999"], 3, ["no open DLQ entry with id 999999"]),
        (["dlq", "retry", "1", "--all"], 2, ["not both"]),
        (["dlq", "retry"], 2, ["or --all"]),
        (["dlq", "retry", "1", "--queue", "q1"], 2, ["--queue select entries for --all"]),
        (["dlq", "retry", "1", "--params", "{bad"], 2, ["--params", "not valid JSON"]),
        (["dlq", "skip", "1"], 2, ["Missing option", "--reason"]),
        (["dlq", "skip", "999999", "--reason", "gone"], 3, ["no open DLQ entry with id 999999"]),
        (["dlq", "requeue", "999999"], 3, ["no open DLQ entry with id 999999"]),
        (["task", "retry", "999999"], 3, ["no task with id 999999"]),
        (["breaker", "show", "nope"], 3, ["no gate (breaker or limit) with key 'nope'"]),
        (["breaker", "trip", "nope"], 3, ["no gate"]),
        (["breaker", "reset", "nope"], 3, ["no gate"]),
        (
            ["breaker", "configure", "k", "--failure-rate", "2"],
            2,
            ["--failure-rate", "less than or equal to 1"],
        ),
        (["breaker", "configure", "k", "--failures", "0"], 2, ["--failures"]),
        (["limit", "set", "k", "0"], 2, ["greater than or equal to 1"]),
    ],
)
def test_bad_input_gets_a_clear_error(
    shared_dsn: str, tmp_path: Path, args: list[str], code: int, messages: list[str]
) -> None:
    spec = str(write(tmp_path, "ok.yaml", DIAMOND))
    exit_code, out = invoke(shared_dsn, *(spec if a == "{spec}" else a for a in args))
    assert exit_code == code, out
    for message in messages:
        assert message in out


def test_dlq_retry_resumes_a_blocked_workflow(
    dsn: str, client: Client, start_worker: StartWorker, tmp_path: Path
) -> None:
    spec = write(
        tmp_path,
        "blocked.yaml",
        """
name: blocked
tasks:
  - {name: first, type: fail, params: {fail_attempts: 1, message: disk full}, retry: {kind: none}}
  - {name: then, type: echo, depends_on: [first]}
""",
    )
    wf = submit(dsn, spec)
    start_worker()
    wait_until(lambda: state_of(client, wf) == "blocked", timeout=30, what="the workflow to block")
    first = next(t for t in client.workflow(wf)["task_rows"] if t["step_name"] == "first")

    code, out = invoke(dsn, "workflow", "show", str(wf))
    assert code == 0 and "blocked" in out and "in DLQ" in out and "failed" in out and "disk full" in out
    stats = {q["name"]: q for q in invoke_json(dsn, "queue", "stats")}
    assert stats["default"]["blocked"] == 1 and stats["default"]["dlq"] == 1

    [entry] = invoke_json(dsn, "dlq", "list")
    assert entry["task_id"] == first["id"] and entry["reason"] == "no_retry"
    assert entry["workflow_id"] == wf and entry["step_name"] == "first"
    dlq_id = str(entry["id"])
    assert [e["id"] for e in invoke_json(dsn, "dlq", "list", "--since", "1h")] == [entry["id"]]
    assert invoke_json(dsn, "dlq", "list", "--since", "2999-01-01T00:00") == []
    assert [e["id"] for e in invoke_json(dsn, "dlq", "list", "--error", "DISK FULL")] == [entry["id"]]
    assert invoke_json(dsn, "dlq", "list", "--error", "out of memory") == []
    assert invoke_json(dsn, "dlq", "list", "--name", "echo") == []
    assert invoke_json(dsn, "dlq", "list", "--queue", "elsewhere") == []
    code, out = invoke(dsn, "dlq", "list")
    assert code == 0 and "no_retry" in out and f"{wf}:first" in out

    code, out = invoke(dsn, "dlq", "show", dlq_id)
    assert code == 0
    assert "reason no_retry" in out and "open" in out and "RuntimeError" in out
    assert "traceback of the last attempt" in out and "Traceback (most recent call last)" in out
    assert "no actions taken yet" in out

    code, out = invoke(dsn, "dlq", "retry", dlq_id, "--reason", "disk cleaned", "--by", "alice")
    assert code == 0 and f"entry {dlq_id}: task {first['id']} queued for another attempt" in out
    wait_until(lambda: state_of(client, wf) == "completed", timeout=30, what="the workflow to complete")

    shown = invoke_json(dsn, "dlq", "show", dlq_id)
    assert shown["resolution"] == "retried" and shown["resolved_by"] == "alice"
    assert [(a["action"], a["actor"], a["reason"]) for a in shown["actions"]] == [
        ("retry", "alice", "disk cleaned")
    ]
    assert [r["attempt"] for r in shown["runs"]] == [1, 2]
    code, out = invoke(dsn, "dlq", "show", dlq_id)
    assert "retried by alice" in out and "alice" in out and "disk cleaned" in out
    # The entry is closed now: acting on it again is refused.
    code, out = invoke(dsn, "dlq", "retry", dlq_id)
    assert code == 3 and f"no open DLQ entry with id {dlq_id}" in out


def test_dlq_skip_and_requeue(dsn: str, client: Client, start_worker: StartWorker, tmp_path: Path) -> None:
    two_of = """
name: {name}
tasks:
  - {{name: bad, type: permanent}}
  - {{name: needs, type: echo, depends_on: [bad]}}
"""
    skipped = submit(dsn, write(tmp_path, "skip.yaml", two_of.format(name="skipped")))
    requeued = submit(dsn, write(tmp_path, "requeue.yaml", two_of.format(name="requeued")))
    start_worker()
    wait_until(lambda: len(client.dlq()) == 2, timeout=30, what="both tasks to reach the DLQ")
    entry = {e["workflow_id"]: e for e in client.dlq()}
    skip_id, requeue_id = str(entry[skipped]["id"]), str(entry[requeued]["id"])

    code, out = invoke(dsn, "dlq", "skip", skip_id)
    assert code == 2 and "--reason" in out
    code, out = invoke(dsn, "dlq", "skip", skip_id, "424242", "--reason", "bad data, accepted", "--by", "bob")
    assert code == 3 and f"entry {skip_id}: task {entry[skipped]['task_id']} skipped" in out
    assert "no open DLQ entry with id 424242" in out
    wait_until(lambda: state_of(client, skipped) == "finished_with_skips", timeout=30)
    states = {
        t["step_name"]: t["state"] for t in invoke_json(dsn, "workflow", "show", str(skipped))["task_rows"]
    }
    assert states == {"bad": "failed", "needs": "cancelled"}
    actions = invoke_json(dsn, "dlq", "show", skip_id)["actions"]
    assert [(a["action"], a["actor"], a["reason"]) for a in actions] == [
        ("skip", "bob", "bad data, accepted")
    ]

    [outcome] = invoke_json(dsn, "dlq", "requeue", requeue_id, "--by", "carol", "--reason", "try a copy")
    new_id = outcome["task_id"]
    assert outcome["dlq_id"] == int(requeue_id) and new_id != entry[requeued]["task_id"]
    shown = invoke_json(dsn, "dlq", "show", requeue_id)
    assert shown["resolution"] == "requeued" and shown["requeued_task_id"] == new_id
    assert [(a["action"], a["actor"], a["reason"]) for a in shown["actions"]] == [
        ("requeue", "carol", "try a copy")
    ]
    # The copy fails again (permanent) and files its own entry; the tree shows both tasks of the step.
    wait_until(lambda: any(e["task_id"] == new_id for e in client.dlq()), timeout=30)
    code, out = invoke(dsn, "workflow", "show", str(requeued))
    assert code == 0 and f"(requeued as #{new_id})" in out and "needs echo waiting" in out


def test_dlq_retry_all_with_filters(dsn: str, client: Client, start_worker: StartWorker) -> None:
    client.spawn_many("permanent", [{}, {}], queue="q1")
    client.spawn("fail", {"fail_attempts": 5}, queue="q2", retry=NoRetry())
    start_worker(queues=["q1", "q2"])
    wait_until(lambda: len(client.dlq()) == 3, timeout=30, what="three DLQ entries")
    q1 = [e["id"] for e in client.dlq(queue="q1")]
    q2 = [e["id"] for e in client.dlq(queue="q2")]

    code, out = invoke(dsn, "dlq", "retry", "--all", "--name", "nothing-by-this-name")
    assert code == 0 and "no open DLQ entries match" in out
    outcomes = invoke_json(
        dsn, "dlq", "retry", "--all", "--queue", "q1", "--since", "10m", "--params", '{"fixed": true}'
    )
    assert sorted(o["dlq_id"] for o in outcomes) == sorted(q1)
    for o in outcomes:
        assert client.get_task(o["task_id"])["params"] == {"fixed": True}
        assert client.dlq_entry(o["dlq_id"])["resolution"] == "retried"
    # The q2 entry was not selected; it is still open.
    assert [e["id"] for e in client.dlq(queue="q2")] == q2


def test_task_retry(dsn: str, client: Client, start_worker: StartWorker) -> None:
    failing = client.spawn("fail", {"fail_attempts": 1}, retry=NoRetry())
    done = client.spawn("echo", {})
    start_worker()
    wait_until(lambda: client.get_task(failing.task_id)["state"] == "failed", timeout=30)
    code, out = invoke(dsn, "task", "retry", str(failing.task_id), "--reason", "flake", "--by", "dave")
    assert code == 0 and "queued for another attempt" in out
    assert client.wait_result(failing.task_id, 30) == {"succeeded_on_attempt": 2}
    [action] = client.conn.execute("SELECT actor, reason FROM absurd.dlq_actions").fetchall()
    assert action == ("dave", "flake")
    client.wait_result(done.task_id, 30)
    code, out = invoke(dsn, "task", "retry", str(done.task_id))
    assert code == 3 and "is not in the dead-letter queue" in out


def test_breakers_and_limits(dsn: str, client: Client) -> None:
    assert invoke(dsn, "limit", "set", "casa", "2")[0] == 0
    code, out = invoke(dsn, "breaker", "configure", "casa", "--failures", "3", "--cooldown-s", "10")
    assert code == 0 and "opens at 3 failures" in out
    gate = client.gate("casa")
    assert gate["max_running"] == 2 and gate["breaker_enabled"] and gate["failure_threshold"] == 3
    assert invoke(dsn, "limit", "set", "casa", "4")[0] == 0
    gate = client.gate("casa")
    assert gate["max_running"] == 4 and gate["failure_threshold"] == 3 and gate["base_cooldown_s"] == 10
    assert invoke(dsn, "limit", "set", "plain", "1")[0] == 0

    assert [(g["key"], g["breaker_state"]) for g in invoke_json(dsn, "breaker", "list")] == [
        ("casa", "closed")
    ]
    assert [(g["key"], g["max_running"]) for g in invoke_json(dsn, "limit", "list")] == [
        ("casa", 4),
        ("plain", 1),
    ]
    code, out = invoke(dsn, "limit", "list")
    assert code == 0 and "plain" in out and "casa" in out

    client.spawn("noop", {}, gate="casa")
    code, out = invoke(dsn, "breaker", "trip", "casa", "--reason", "disk full on /stage")
    assert code == 0 and "breaker casa tripped: closed → open" in out
    code, out = invoke(dsn, "breaker", "trip", "casa")
    assert code == 0 and "already open" in out
    shown = invoke_json(dsn, "breaker", "show", "casa")
    assert shown["breaker_state"] == "open" and shown["waiting"] == 1 and shown["running"] == 0
    assert [(t["to_state"], t["reason"]) for t in shown["transitions"]] == [("open", "disk full on /stage")]
    code, out = invoke(dsn, "breaker", "show", "casa")
    assert code == 0 and "gate casa: open" in out and "cooldown until" in out and "disk full on /stage" in out
    assert "waiting 1" in out and "concurrency limit: 4" in out
    code, out = invoke(dsn, "breaker", "list")
    assert code == 0 and "casa" in out and "open" in out

    code, out = invoke(dsn, "breaker", "reset", "casa")
    assert code == 0 and "breaker casa reset: open → closed" in out
    assert client.gate("casa")["transitions"][0]["reason"].startswith("reset by hand by ")

    code, out = invoke(dsn, "breaker", "trip", "plain")
    assert code == 1 and "gate 'plain' has no circuit breaker" in out
    assert client.gate("plain")["breaker_state"] == "closed"


def test_queue_stats_show_blocked_and_dlq_within_80_columns(dsn: str, client: Client, tmp_path: Path) -> None:
    submit(dsn, write(tmp_path, "diamond.yaml", DIAMOND), "--param", "label=x")
    client.create_queue("calibration")
    client.set_paused("calibration", True)
    result = runner.invoke(app, ["queue", "stats", "--dsn", dsn])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    header = next(line for line in lines if line.startswith("queue"))
    assert header.split() == [
        "queue",
        "ready",
        "later",
        "run",
        "sleep",
        "block",
        "done",
        "fail",
        "cancel",
        "dlq",
        "age",
        "s",
        "/min",
    ]
    default = next(line for line in lines if line.startswith("default"))
    assert default.split()[1:7] == ["1", "0", "0", "0", "3", "0"]
    assert any(line.startswith("calibration*") for line in lines)


def test_shell_completion_is_offered() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "--install-completion" in result.output
