"""``absurd workflow``: submit a spec file, show the DAG, list and cancel workflows."""

from __future__ import annotations

import json
from collections import defaultdict
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.tree import Tree

from absurd.cli.toolkit import (
    NO_WORKERS,
    App,
    Dsn,
    JsonOut,
    RegistryOpt,
    client,
    console,
    emit_json,
    first_line,
    known_task_names,
    print_rows,
    registry_or_none,
    table,
    warn_without_registry,
)
from absurd.errors import UsageError
from absurd.states import WORKFLOW_STATES
from absurd.workflow_spec import (
    SpecError,
    WorkflowSpec,
    check_spec,
    inherited_options,
    load_spec,
    resolve_options,
)

app = App(help="Workflows (DAGs of tasks): submit, show, list and cancel.")

# Task states (absurd.states.TASK_STATES) and workflow states, as drawn.
STATE_STYLE = {
    "waiting": "dim",
    "pending": "blue",
    "sleeping": "blue",
    "running": "cyan",
    "completed": "green",
    "failed": "bold red",
    "cancelled": "magenta",
    "blocked": "bold red",
    "finished_with_skips": "yellow",
}


class Layout(StrEnum):
    """How ``workflow show`` draws the tasks."""

    tree = "tree"
    table = "table"


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs as a dict; a value that parses as JSON is taken as JSON, else as a string."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param {pair!r} is not key=value")
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = value
    return params


def _without_registry(spec: WorkflowSpec, known: set[str] | None) -> None:
    """Check task types against the served names; say what could not be checked or resolved."""
    problems = check_spec(spec, known=known)
    if problems:
        raise SpecError(problems, spec.name)
    inherited = inherited_options(spec)
    steps = ", ".join(inherited)
    warn_without_registry(
        None if known is not None else NO_WORKERS,
        f"options left out by steps {steps}" if inherited else None,
        "task types",
    )


@app.command("submit")
def submit(
    file: Annotated[Path, typer.Argument(help="Workflow spec, YAML or JSON.")],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Workflow param as key=value (repeatable); JSON values allowed."),
    ] = None,
    registry: RegistryOpt = None,
    dsn: Dsn = None,
    json_out: JsonOut = False,
) -> None:
    """Validate a workflow spec file and submit it; prints the new workflow's id.

    Nothing is written unless the whole spec is valid; every problem found is listed. Task types are
    checked against --registry (or ABSURD_REGISTRY), which also checks params and gives each step
    the options it leaves out; without one, against the tasks live workers serve.
    """
    params = parse_params(param or [])
    tasks = registry_or_none(registry)
    try:
        spec = load_spec(file)
        with client(dsn, tasks) as c:
            if tasks is not None:
                spec = resolve_options(spec, tasks)
            else:
                _without_registry(spec, known_task_names(c, None)[0])
            workflow_id = c.submit_workflow(spec, params)
    except SpecError as exc:
        if exc.source.startswith(str(file)):
            raise
        raise SpecError(exc.problems, str(file)) from None
    if json_out:
        emit_json({"workflow_id": workflow_id, "name": spec.name, "tasks": len(spec.tasks)})
    else:
        console.print(f"workflow {workflow_id} submitted ({escape(spec.name)}, {len(spec.tasks)} tasks)")


def _styled(state: str) -> str:
    return f"[{STATE_STYLE.get(state, 'white')}]{state}[/]"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def _short_error(error: dict[str, Any] | None, width: int = 60) -> str | None:
    return first_line(str(error.get("message") or error.get("type") or ""), width) if error else None


def _header(wf: dict[str, Any]) -> str:
    counts = [f"{wf['tasks']} tasks", f"{wf['completed']} completed"]
    for key, label in (
        ("active", "active"),
        ("waiting", "waiting"),
        ("failed", "failed"),
        ("cancelled", "cancelled"),
        ("in_dlq", "in DLQ"),
    ):
        if wf[key]:
            counts.append(f"{wf[key]} {label}")
    return (
        f"[bold]workflow {wf['id']}[/bold] {escape(wf['name'])}: [bold]{_styled(wf['state'])}[/bold]"
        f" ({', '.join(counts)})"
    )


def _label(row: dict[str, Any], superseded_by: int | None) -> str:
    parts = [f"[bold]{escape(row['step_name'] or row['name'])}[/bold]", f"[dim]{escape(row['name'])}[/dim]"]
    parts.append(_styled(row["state"]))
    if row["in_dlq"]:
        parts.append("[bold red]in DLQ[/]")
    parts.append(f"#{row['id']}")
    if row["attempts"]:
        parts.append(f"attempts {row['attempts']}")
    if row["duration_s"] is not None:
        parts.append(_duration(row["duration_s"]))
    if superseded_by is not None:
        parts.append(f"[dim](requeued as #{superseded_by})[/dim]")
    error = _short_error(row["last_error"]) if row["state"] in ("failed", "pending") else None
    if error:
        parts.append(f"[red]{escape(error)}[/red]")
    return " ".join(parts)


def _tree(wf: dict[str, Any]) -> Tree:
    """The DAG as a tree: roots are tasks without dependencies; a task with several parents appears
    under each, in full the first time and marked as shown after that."""
    rows = wf["task_rows"]
    # A requeued step has several tasks; dependents wait on the newest one.
    current: dict[str, dict[str, Any]] = {}
    for row in rows:
        current[row["step_name"]] = row
    children: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        for parent in row["depends_on"]:
            if parent in current:
                children[current[parent]["id"]].append(row)
    root = Tree(_header(wf), guide_style="dim")
    shown: set[int] = set()

    def add(branch: Tree, row: dict[str, Any]) -> None:
        newest = current[row["step_name"]]["id"]
        superseded_by = newest if newest != row["id"] else None
        if row["id"] in shown:
            branch.add(f"{escape(row['step_name'])} [dim](shown above)[/dim]")
            return
        shown.add(row["id"])
        node = branch.add(_label(row, superseded_by))
        for child in children.get(row["id"], []):
            add(node, child)

    for row in rows:
        if not row["depends_on"]:
            add(root, row)
    for row in rows:  # anything cut off from the roots still gets drawn
        if row["id"] not in shown:
            add(root, row)
    return root


@app.command("show")
def show(
    workflow_id: int,
    layout: Annotated[Layout, typer.Option("--format", "-f", help="Draw the DAG as a tree or a table.")] = (
        Layout.tree
    ),
    dsn: Dsn = None,
    json_out: JsonOut = False,
) -> None:
    """A workflow's derived state and its tasks: step, type, state, attempts, duration and error."""
    with client(dsn) as c:
        wf = c.workflow(workflow_id)
    if json_out:
        emit_json(wf)
        return
    if layout is Layout.tree:
        console.print(_tree(wf))
        return
    console.print(_header(wf))
    table(
        "tasks",
        ["id", "step", "type", "state", "att", "took", "after", "error"],
        [
            [
                r["id"],
                r["step_name"],
                r["name"],
                r["state"] + (" (DLQ)" if r["in_dlq"] else ""),
                r["attempts"],
                _duration(r["duration_s"]),
                ",".join(r["depends_on"]) or None,
                _short_error(r["last_error"], 40),
            ]
            for r in wf["task_rows"]
        ],
    )


@app.command("list")
def list_workflows(
    state: Annotated[
        str | None, typer.Option(help=f"Only workflows in this state: {', '.join(WORKFLOW_STATES)}.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    dsn: Dsn = None,
    json_out: JsonOut = False,
) -> None:
    """Recent workflows, newest first, with their derived state and task counts."""
    if state is not None and state not in WORKFLOW_STATES:
        raise UsageError(f"unknown workflow state {state!r}; choose one of {', '.join(WORKFLOW_STATES)}")
    with client(dsn) as c:
        rows = c.list_workflows(state, limit)
    print_rows(
        rows,
        json_out,
        "workflows",
        ["id", "name", "state", "done", "dlq", "created"],
        lambda r: [
            r["id"],
            r["name"],
            r["state"],
            f"{r['completed']}/{r['tasks']}",
            r["in_dlq"],
            r["created_at"],
        ],
    )


@app.command("cancel")
def cancel(workflow_id: int, dsn: Dsn = None) -> None:
    """Cancel a workflow: waiting and pending tasks at once, running ones at their next step or heartbeat."""
    with client(dsn) as c:
        n = c.cancel_workflow(workflow_id)
    console.print(f"workflow {workflow_id} cancelled; {n} unfinished task(s) cancelled or asked to stop")
