"""``absurd task``: spawn, list, show, cancel, wait, retry."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape

from absurd.cli.dlq import By, actor
from absurd.cli.toolkit import (
    App,
    Dsn,
    JsonOut,
    RegistryOpt,
    check_task_names,
    client,
    console,
    emit_json,
    parse_json,
    print_rows,
    registry_or_none,
    table,
)
from absurd.errors import UsageError
from absurd.states import TASK_STATES

app = App(help="Tasks: spawn, list, show, cancel, wait and retry.")


@app.command("spawn")
def spawn(
    name: str,
    params: Annotated[str, typer.Option(help="JSON params.")] = "{}",
    queue: Annotated[str | None, typer.Option("--queue", "-q", help="Default: the task's own.")] = None,
    priority: Annotated[int | None, typer.Option(help="Default: the task's own, else 0.")] = None,
    max_attempts: Annotated[int | None, typer.Option(min=1, help="Default: the task's own, else 3.")] = None,
    timeout_s: Annotated[float | None, typer.Option(help="Default: the task's own, else none.")] = None,
    idempotency_key: Annotated[str | None, typer.Option("--key")] = None,
    count: Annotated[int, typer.Option(min=1, help="Spawn this many copies (batch).")] = 1,
    registry: RegistryOpt = None,
    dsn: Dsn = None,
    json_out: JsonOut = False,
) -> None:
    """Queue a task by name.

    The name is checked against --registry (or ABSURD_REGISTRY), else against the tasks live workers
    serve; options not given are the task's own from the registry, else the engine's defaults.
    """
    overrides: dict[str, Any] = {
        "queue": queue,
        "priority": priority,
        "max_attempts": max_attempts,
        "timeout_s": timeout_s,
        "idempotency_key": idempotency_key,
    }
    data = parse_json(params, "--params")
    tasks = registry_or_none(registry)
    with client(dsn, tasks) as c:
        check_task_names([name], c, tasks)
        spawned = (
            [c.spawn(name, data, **overrides)]
            if count == 1
            else c.spawn_many(name, [data] * count, **overrides)
        )
    if json_out:
        emit_json([{"task_id": s.task_id, "created": s.created} for s in spawned])
    elif count == 1:
        s = spawned[0]
        console.print(f"task {s.task_id} {'spawned' if s.created else 'already exists (idempotency key)'}")
    else:
        console.print(f"spawned {len(spawned)} tasks: {spawned[0].task_id}..{spawned[-1].task_id}")


@app.command("list")
def list_tasks(
    queue: Annotated[str | None, typer.Option("--queue", "-q")] = None,
    state: Annotated[str | None, typer.Option(help=f"One of {', '.join(TASK_STATES)}.")] = None,
    name: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    dsn: Dsn = None,
    json_out: JsonOut = False,
) -> None:
    """Recent tasks, newest first."""
    if state is not None and state not in TASK_STATES:
        raise UsageError(f"unknown state {state!r}; choose one of {', '.join(TASK_STATES)}")
    with client(dsn) as c:
        rows = c.list_tasks(queue, state, name, limit)
    print_rows(
        rows,
        json_out,
        "tasks",
        ["id", "queue", "name", "state", "prio", "attempts", "created", "finished", "error"],
        lambda r: [
            r["id"],
            r["queue"],
            r["name"],
            r["state"],
            r["priority"],
            r["attempts"],
            r["created_at"],
            r["finished_at"],
            (r["last_error"] or {}).get("message"),
        ],
    )


@app.command("show")
def show(
    task_id: int,
    dsn: Dsn = None,
    json_out: JsonOut = False,
    log_lines: Annotated[int, typer.Option("--log-lines", min=0, help="Log tail lines per attempt.")] = 20,
) -> None:
    """One task with its params, result and attempt history, and the end of each attempt's log."""
    with client(dsn) as c:
        task = c.get_task(task_id)
        runs = c.runs(task_id, logs=True)
    if json_out:
        emit_json({"task": task, "runs": runs})
        return
    console.print(
        f"[bold]task {task['id']}[/bold] {escape(task['name'])} on {escape(task['queue'])}: "
        f"[bold]{task['state']}[/bold]"
    )
    for key in ("params", "result", "last_error"):
        if task[key] is not None:
            console.print(f"{key}: {escape(json.dumps(task[key], default=str)[:2000])}")
    table(
        "runs",
        ["attempt", "run", "worker", "state", "started", "finished", "reason", "error"],
        [
            [
                r["attempt"],
                r["id"],
                r["worker_id"],
                r["state"],
                r["started_at"],
                r["finished_at"],
                r["failure_reason"],
                (r["error"] or {}).get("message"),
            ]
            for r in runs
        ],
    )
    for r in runs:
        if r["log"] is None or log_lines == 0:
            continue
        lines = r["log"]["lines"]
        left_out = r["log"]["dropped"] + max(0, len(lines) - log_lines)
        console.print(
            f"[bold]log of attempt {r['attempt']}[/bold]"
            + (f" ({left_out} earlier lines not shown)" if left_out else "")
        )
        for line in lines[-log_lines:]:
            console.print(f"{line['at']} {line['level'].upper():8} {escape(line['text'])}", highlight=False)


@app.command("cancel")
def cancel(task_ids: list[int], dsn: Dsn = None) -> None:
    """Cancel tasks: pending ones at once, running ones at their next step or heartbeat."""
    with client(dsn) as c:
        for task_id in task_ids:
            state = c.cancel(task_id)
            note = "cancellation requested" if state == "running" else state
            console.print(f"task {task_id}: {note}")


@app.command("wait")
def wait(task_id: int, timeout_s: float = 60.0, dsn: Dsn = None) -> None:
    """Wait for a task and print its result as JSON."""
    with client(dsn) as c:
        emit_json(c.wait_result(task_id, timeout_s))


@app.command("retry")
def retry(
    task_id: int,
    reason: Annotated[str | None, typer.Option(help="Why; kept in the DLQ entry's audit trail.")] = None,
    by: By = None,
    dsn: Dsn = None,
) -> None:
    """Retry a failed task through its dead-letter entry; its workflow resumes."""
    with client(dsn) as c:
        c.retry_task(task_id, actor(by), reason)
    console.print(f"task {task_id} queued for another attempt")
