"""Workflows: dependency order enforced by the database, results passed down, fan-out/fan-in, DLQ."""

from __future__ import annotations

import random

import pytest

from absurd.client import Client
from absurd.options import FixedDelay, NoRetry
from absurd.workflow_spec import SpecError, parse_spec
from tests.queue.conftest import StartWorker
from tests.support.processes import wait_until
from tests.support.tasks import registry


def spec(tasks: list[dict], name: str = "wf") -> object:
    return parse_spec({"name": name, "tasks": tasks})


def settled(client: Client, workflow_id: int, states: tuple[str, ...] = ("completed",)) -> bool:
    return client.workflow(workflow_id)["state"] in states


def test_diamond_runs_in_order_and_passes_results_down(client: Client, start_worker: StartWorker) -> None:
    wf = client.submit_workflow(
        spec(
            [
                {
                    "name": "d",
                    "type": "record-order",
                    "depends_on": ["b", "c"],
                    "params": {"b": "${b.result}", "c": "${c.result.params.text}"},
                },
                {"name": "b", "type": "echo", "depends_on": ["a"], "params": {"x": "${a.result.x}"}},
                {
                    "name": "c",
                    "type": "record-order",
                    "depends_on": ["a"],
                    "params": {"text": "a said ${a.result.x}"},
                },
                {"name": "a", "type": "echo", "params": {"x": "${params.start}"}},
            ]
        ),
        params={"start": 7},
    )
    for _ in range(4):
        start_worker(concurrency=4)
    wait_until(lambda: settled(client, wf), timeout=60, what="the diamond to complete")
    tasks = {t["step_name"]: t for t in client.workflow(wf)["task_rows"]}
    d = client.get_task(tasks["d"]["id"])
    assert d["result"] == {"unfinished_parents": 0, "params": {"b": {"x": 7}, "c": "a said 7"}}
    for child, parents in {"b": ["a"], "c": ["a"], "d": ["b", "c"]}.items():
        started = tasks[child]["started_at"]
        assert all(tasks[p]["finished_at"] <= started for p in parents)
        assert sorted(tasks[child]["depends_on"]) == parents


def test_children_never_start_before_their_parents(client: Client, start_worker: StartWorker) -> None:
    rng = random.Random(11)
    ids = []
    for w in range(12):
        steps = [f"s{i}" for i in range(15)]
        tasks = []
        for i, step in enumerate(steps):
            parents = rng.sample(steps[:i], k=min(i, rng.randint(0, 3)))
            tasks.append({"name": step, "type": "record-order", "depends_on": parents})
        ids.append(client.submit_workflow(spec(tasks, name=f"random-{w}")))
    for _ in range(4):
        start_worker(concurrency=8)
    for wf in ids:
        wait_until(lambda wf=wf: settled(client, wf), timeout=120)
    rows = client.conn.execute(
        "SELECT count(*) FROM absurd.tasks c JOIN absurd.task_deps d ON d.task_id = c.id "
        "JOIN absurd.tasks p ON p.id = d.depends_on WHERE c.started_at < p.finished_at"
    ).fetchone()
    assert rows == (0,)
    bad = client.conn.execute(
        "SELECT count(*) FROM absurd.tasks WHERE (result->>'unfinished_parents')::int <> 0"
    ).fetchone()
    assert bad == (0,)


def test_fan_out_to_100_children_and_fan_in(client: Client, start_worker: StartWorker) -> None:
    wf = client.submit_workflow(
        spec(
            [
                {"name": "fan", "type": "fan-out-add", "params": {"n": 100}},
                {"name": "sum", "type": "collect", "depends_on": ["fan"]},
            ]
        )
    )
    start_worker(concurrency=8)
    start_worker(concurrency=8)
    wait_until(lambda: settled(client, wf), timeout=120)
    rows = {t["step_name"]: t for t in client.workflow(wf)["task_rows"]}
    assert len(rows) == 102
    total = client.get_task(rows["sum"]["id"])["result"]
    assert total == {"count": 100, "sum": sum(range(100))}
    last_child = max(r["finished_at"] for s, r in rows.items() if s.startswith("parts["))
    assert rows["sum"]["started_at"] >= last_child


def test_dlq_retry_resumes_a_blocked_workflow(client: Client, start_worker: StartWorker) -> None:
    wf = client.submit_workflow(
        spec(
            [
                {"name": "first", "type": "fail", "params": {"fail_attempts": 1}, "retry": {"kind": "none"}},
                {"name": "then", "type": "echo", "depends_on": ["first"]},
            ]
        )
    )
    start_worker()
    wait_until(lambda: settled(client, wf, ("blocked",)), timeout=30, what="the workflow to block")
    rows = {t["step_name"]: t for t in client.workflow(wf)["task_rows"]}
    assert rows["then"]["state"] == "waiting" and rows["first"]["in_dlq"]
    [entry] = client.dlq()
    assert entry["task_id"] == rows["first"]["id"] and entry["reason"] == "no_retry"
    client.dlq_retry(entry["id"], actor="operator", reason="transient")
    wait_until(lambda: settled(client, wf), timeout=30, what="the workflow to resume and complete")
    shown = client.dlq_entry(entry["id"])
    assert shown["resolution"] == "retried" and shown["resolved_by"] == "operator"
    assert [(a["action"], a["actor"], a["reason"]) for a in shown["actions"]] == [
        ("retry", "operator", "transient")
    ]


def test_dlq_skip_cancels_dependents_but_runs_optional_ones(
    client: Client, start_worker: StartWorker
) -> None:
    wf = client.submit_workflow(
        spec(
            [
                {"name": "bad", "type": "permanent"},
                {"name": "needs", "type": "echo", "depends_on": ["bad"]},
                {"name": "after-needs", "type": "echo", "depends_on": ["needs"]},
                {"name": "tolerant", "type": "echo", "depends_on": [{"task": "bad", "optional": True}]},
            ]
        )
    )
    start_worker()
    wait_until(lambda: settled(client, wf, ("blocked",)), timeout=30)
    [entry] = client.dlq()
    client.dlq_skip(entry["id"], actor="operator", reason="bad data, accepted loss")
    wait_until(lambda: settled(client, wf, ("finished_with_skips",)), timeout=30)
    states = {t["step_name"]: t["state"] for t in client.workflow(wf)["task_rows"]}
    assert states == {
        "bad": "failed",
        "needs": "cancelled",
        "after-needs": "cancelled",
        "tolerant": "completed",
    }
    assert client.dlq() == []


def test_dlq_requeue_continues_from_the_new_task(client: Client, start_worker: StartWorker) -> None:
    client.conn.execute("CREATE TABLE test_health (ok boolean); INSERT INTO test_health VALUES (false)")
    wf = client.submit_workflow(
        spec(
            [
                {"name": "once", "type": "flaky", "retry": {"kind": "none"}},
                {"name": "next", "type": "echo", "depends_on": ["once"]},
            ]
        )
    )
    start_worker()
    wait_until(lambda: settled(client, wf, ("blocked",)), timeout=30)
    client.conn.execute("UPDATE test_health SET ok = true")
    [entry] = client.dlq()
    new_id = client.dlq_requeue(entry["id"], actor="operator")
    assert new_id != entry["task_id"]
    wait_until(lambda: settled(client, wf, ("finished_with_skips", "completed")), timeout=30)
    states = {t["id"]: t["state"] for t in client.workflow(wf)["task_rows"]}
    assert states[new_id] == "completed" and states[entry["task_id"]] == "failed"
    nxt = next(t for t in client.workflow(wf)["task_rows"] if t["step_name"] == "next")
    assert nxt["state"] == "completed"


def test_dlq_filters(client: Client, start_worker: StartWorker) -> None:
    client.spawn("permanent", {}, queue="q1")
    client.spawn("fail", {"fail_attempts": 5, "message": "disk full"}, queue="q2", retry=NoRetry())
    start_worker(queues=["q1", "q2"])
    wait_until(lambda: len(client.dlq()) == 2, timeout=30)
    assert [e["task_name"] for e in client.dlq(queue="q2")] == ["fail"]
    assert [e["task_name"] for e in client.dlq(name="permanent")] == ["permanent"]
    assert [e["task_name"] for e in client.dlq(text="disk full")] == ["fail"]


def test_cancel_a_whole_workflow(client: Client) -> None:
    wf = client.submit_workflow(
        spec([{"name": "a", "type": "echo"}, {"name": "b", "type": "echo", "depends_on": ["a"]}])
    )
    assert client.cancel_workflow(wf) == 2
    assert client.workflow(wf)["state"] == "cancelled"
    assert {t["state"] for t in client.workflow(wf)["task_rows"]} == {"cancelled"}


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        ([{"name": "a", "type": "echo", "depends_on": ["ghost"]}], "depends on unknown task 'ghost'"),
        (
            [
                {"name": "a", "type": "echo", "depends_on": ["b"]},
                {"name": "b", "type": "echo", "depends_on": ["c"]},
                {"name": "c", "type": "echo", "depends_on": ["a"]},
            ],
            "cycle: ",
        ),
        ([{"name": "a", "type": "echo"}, {"name": "a", "type": "echo"}], "duplicate task name 'a'"),
        ([{"name": "a", "type": "no-such-type"}], "unknown type 'no-such-type'"),
        ([{"name": "a", "type": "sleep", "params": {"seconds": "long"}}], "params.seconds"),
        (
            [{"name": "a", "type": "echo", "params": {"x": "${b.result.y}"}}, {"name": "b", "type": "echo"}],
            "does not depend on 'b'",
        ),
        ([{"name": "a", "type": "echo", "params": {"x": "${nowhere.value}"}}], "unresolvable reference"),
    ],
)
def test_invalid_workflows_are_rejected_before_writing(
    client: Client, tasks: list[dict], message: str
) -> None:
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace("$", r"\$")):
        client.submit_workflow(spec(tasks))
    assert client.list_tasks() == [] and client.list_workflows() == []


def test_cycle_error_names_the_cycle(client: Client) -> None:
    with pytest.raises(SpecError) as err:
        client.submit_workflow(
            spec(
                [
                    {"name": "x", "type": "echo", "depends_on": ["y"]},
                    {"name": "y", "type": "echo", "depends_on": ["x"]},
                ]
            )
        )
    assert "x → y → x" in str(err.value) or "y → x → y" in str(err.value)


def test_structural_errors_name_the_field() -> None:
    with pytest.raises(SpecError, match=r"tasks\.0\.priority"):
        parse_spec({"name": "w", "tasks": [{"name": "a", "type": "echo", "priority": "high"}]})
    with pytest.raises(SpecError, match=r"tasks\.0\.colour"):
        parse_spec({"name": "w", "tasks": [{"name": "a", "type": "echo", "colour": "red"}]})


def test_registry_is_used_for_validation() -> None:
    assert "sleep" in registry and FixedDelay(base_s=1).kind == "fixed"


def test_builtin_fan_out_and_join(client: Client, start_worker: StartWorker) -> None:
    wf = client.submit_workflow(
        spec(
            [
                {"name": "fan", "type": "fan-out", "params": {"n": 50}},
                {"name": "join", "type": "noop", "depends_on": ["fan"]},
            ]
        )
    )
    start_worker(concurrency=8)
    wait_until(lambda: settled(client, wf), timeout=60)
    rows = client.workflow(wf)["task_rows"]
    assert len(rows) == 52 and {r["state"] for r in rows} == {"completed"}
    join = next(r for r in rows if r["step_name"] == "join")
    assert all(r["finished_at"] <= join["started_at"] for r in rows if r["step_name"].startswith("children["))


@pytest.mark.parametrize(
    ("task", "problem"),
    [
        ({"name": "a", "type": "noop", "priority": 2**40}, "priority"),
        ({"name": "a", "type": "noop", "max_attempts": 2**40}, "max_attempts"),
        ({"name": "a", "type": "noop", "depends_on": ["b", "b"]}, "depends on b more than once"),
    ],
)
def test_specs_that_would_fail_at_submission_are_refused_at_parse(task: dict, problem: str) -> None:
    with pytest.raises(SpecError) as refused:
        spec([task, {"name": "b", "type": "noop"}])
    assert problem in str(refused.value)
