"""``absurd dlq``: list, show, retry, skip and requeue dead-lettered tasks."""

from __future__ import annotations

import getpass
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.markup import escape

from absurd.cli.toolkit import (
    EXIT_NOT_FOUND,
    App,
    Dsn,
    JsonOut,
    cell,
    client,
    console,
    emit_json,
    first_line,
    print_error,
    print_rows,
    table,
)
from absurd.client import Client
from absurd.errors import NotFoundError

app = App(help="The dead-letter queue: tasks that failed for good, and what to do with them.")

RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str) -> datetime:
    """A point in time given as an age (``90s``, ``15m``, ``2h``, ``3d``, ``1w``) or an ISO 8601 time.

    An ISO time without a zone is taken as UTC.
    """
    match = RELATIVE.match(text)
    if match:
        return datetime.now(UTC) - timedelta(**{UNITS[match.group(2)]: float(match.group(1))})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither an age such as 2h or 3d nor an ISO time such as 2026-11-22T06:00"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def parse_json_value(text: str) -> Any:
    """A JSON option value; anything else is a usage error."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not valid JSON: {exc}") from None


def actor(by: str | None) -> str:
    """Who acts: ``--by`` if given, else the OS user."""
    if by:
        return by
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


Queue = Annotated[str | None, typer.Option("--queue", "-q", help="Only entries from this queue.")]
Name = Annotated[str | None, typer.Option("--name", help="Only entries of this task name.")]
Since = Annotated[
    datetime | None,
    typer.Option(
        parser=parse_since, metavar="AGE|ISO", help="Only entries since then: an age (2h, 3d) or an ISO time."
    ),
]
ErrorText = Annotated[
    str | None, typer.Option("--error", help="Only entries whose error contains this text (any case).")
]
Reason = Annotated[str | None, typer.Option(help="Why; kept in the entry's audit trail.")]
By = Annotated[str | None, typer.Option("--by", help="Who acts, for the audit trail; default: the OS user.")]
Ids = Annotated[list[int] | None, typer.Argument(help="DLQ entry ids.", show_default=False)]


@app.command("list")
def list_entries(
    queue: Queue = None,
    name: Name = None,
    since: Since = None,
    error: ErrorText = None,
    limit: Annotated[int, typer.Option(min=1)] = 100,
    dsn: Dsn = None,
    json_out: JsonOut = False,
) -> None:
    """Open DLQ entries, oldest first, with why each task ended up here."""
    with client(dsn) as c:
        rows = c.dlq(queue, name, since, error, limit)
    print_rows(
        rows,
        json_out,
        "dead-letter queue",
        ["id", "task", "name", "queue", "reason", "entered", "workflow", "error"],
        lambda r: [
            r["id"],
            r["task_id"],
            r["task_name"],
            r["queue"],
            r["reason"],
            _short_time(r["entered_at"]),
            f"{r['workflow_id']}:{r['step_name']}" if r["workflow_id"] else None,
            first_line(r["error_message"], 40),
        ],
    )


def _short_time(value: datetime | None) -> str | None:
    return value.strftime("%m-%d %H:%M:%S") if value else None


@app.command("show")
def show(dlq_id: int, dsn: Dsn = None, json_out: JsonOut = False) -> None:
    """One entry: its attempt history, the traceback of the last attempt and the actions taken."""
    with client(dsn) as c:
        entry = c.dlq_entry(dlq_id)
    if json_out:
        emit_json(entry)
        return
    status = (
        f"{entry['resolution']} by {entry['resolved_by']} at {cell(entry['resolved_at'])}"
        if entry["resolved_at"]
        else "open"
    )
    console.print(
        f"[bold]DLQ entry {entry['id']}[/bold]: task {entry['task_id']} {escape(entry['task_name'])} "
        f"on {escape(entry['queue'])}, reason [bold]{entry['reason']}[/bold] "
        f"({entry['failures']} failed runs, {entry['lease_expiries']} worker crashes), "
        f"entered {cell(entry['entered_at'])}; {escape(status)}",
        highlight=False,
    )
    if entry["requeued_task_id"]:
        console.print(f"requeued as task {entry['requeued_task_id']}")
    runs = entry["runs"]
    table(
        "attempts",
        ["attempt", "worker", "started", "took", "reason", "error type", "message"],
        [
            [
                r["attempt"],
                r["worker_id"],
                _short_time(r["started_at"]),
                f"{(r['finished_at'] - r['started_at']).total_seconds():.1f}s" if r["finished_at"] else None,
                r["failure_reason"],
                str((r["error"] or {}).get("type", "")).removeprefix("builtins.") or None,
                first_line((r["error"] or {}).get("message"), 40),
            ]
            for r in runs
        ],
    )
    last_error = next((r["error"] for r in reversed(runs) if r["error"]), None) or entry["error"] or {}
    if last_error.get("traceback"):
        console.print("[bold]traceback of the last attempt[/bold]")
        console.print(escape(last_error["traceback"].rstrip()), highlight=False, soft_wrap=True)
    if entry["actions"]:
        table(
            "actions",
            ["at", "action", "by", "reason", "details"],
            [
                [a["at"], a["action"], a["actor"], a["reason"], _details(a["details"])]
                for a in entry["actions"]
            ],
        )
    else:
        console.print("no actions taken yet")


def _details(details: dict[str, Any] | None) -> str | None:
    """What an action changed (new params, the new task's id), as compact JSON."""
    kept = {k: v for k, v in (details or {}).items() if v is not None}
    return json.dumps(kept) if kept else None


def _act_on_each(ids: list[int], act: Callable[[int], dict[str, Any]], json_out: bool) -> None:
    """Apply ``act`` to every id; report each outcome, and exit 3 at the end if any id was not open."""
    outcomes: list[dict[str, Any]] = []
    for dlq_id in ids:
        try:
            outcome = {"dlq_id": dlq_id, **act(dlq_id)}
        except NotFoundError as exc:
            outcome = {"dlq_id": dlq_id, "error": str(exc)}
            if not json_out:
                print_error(f"{exc} (already resolved, or never existed)", EXIT_NOT_FOUND)
        else:
            if not json_out:
                console.print(f"entry {dlq_id}: {escape(outcome['message'])}")
        outcomes.append(outcome)
    if json_out:
        emit_json(outcomes)
    if any("error" in o for o in outcomes):
        raise typer.Exit(EXIT_NOT_FOUND)


def _selected(
    c: Client,
    ids: list[int],
    select_all: bool,
    filters: dict[str, Any],
    limit: int,
) -> list[int]:
    """The ids to act on: those given, or with --all every open entry matching the filters."""
    if select_all and ids:
        raise typer.BadParameter("give entry ids or --all, not both", param_hint="'--all'")
    if not select_all:
        if not ids:
            raise typer.BadParameter("give one or more entry ids, or --all", param_hint="'IDS...'")
        used = [f"--{k}" for k, v in filters.items() if v is not None]
        if used:
            raise typer.BadParameter(f"{', '.join(used)} select entries for --all; add --all or drop them")
        return ids
    return [r["id"] for r in c.dlq(limit=limit, **filters)]


@app.command("retry")
def retry(
    ids: Ids = None,
    select_all: Annotated[
        bool, typer.Option("--all", help="Retry every open entry matching the filters (all, without any).")
    ] = False,
    queue: Queue = None,
    name: Name = None,
    since: Since = None,
    error: ErrorText = None,
    limit: Annotated[int, typer.Option(min=1, help="With --all, act on at most this many entries.")] = 1000,
    params: Annotated[
        Any,
        typer.Option(parser=parse_json_value, metavar="JSON", help="Replace the task's params with this."),
    ] = None,
    reason: Reason = None,
    by: By = None,
    dsn: Dsn = None,
    json_out: JsonOut = False,
) -> None:
    """Give dead tasks new attempts (optionally with new params); their workflows resume.

    Name entries by id, or use --all with optional filters (--queue, --name, --since, --error).
    """
    who = actor(by)
    with client(dsn) as c:
        chosen = _selected(
            c, ids or [], select_all, {"queue": queue, "name": name, "since": since, "text": error}, limit
        )
        if select_all and not chosen:
            console.print("no open DLQ entries match")
            return

        def act(dlq_id: int) -> dict[str, Any]:
            task_id = c.dlq_retry(dlq_id, who, reason, params)
            return {"task_id": task_id, "message": f"task {task_id} queued for another attempt"}

        _act_on_each(chosen, act, json_out)


@app.command("skip")
def skip(
    ids: Annotated[list[int], typer.Argument(help="DLQ entry ids.", show_default=False)],
    reason: Annotated[str, typer.Option(help="Why the loss is accepted (required).", show_default=False)],
    by: By = None,
    dsn: Dsn = None,
    json_out: JsonOut = False,
) -> None:
    """Accept the failure: the task stays failed and leaves the DLQ.

    In a workflow, dependents on required edges are cancelled and those on optional edges run.
    """
    who = actor(by)
    with client(dsn) as c:

        def act(dlq_id: int) -> dict[str, Any]:
            task_id = c.dlq_skip(dlq_id, who, reason)
            return {"task_id": task_id, "message": f"task {task_id} skipped"}

        _act_on_each(ids, act, json_out)


@app.command("requeue")
def requeue(
    ids: Annotated[list[int], typer.Argument(help="DLQ entry ids.", show_default=False)],
    reason: Reason = None,
    by: By = None,
    dsn: Dsn = None,
    json_out: JsonOut = False,
) -> None:
    """Spawn a fresh copy of each dead task (attempts start over); its workflow continues from the copy."""
    who = actor(by)
    with client(dsn) as c:

        def act(dlq_id: int) -> dict[str, Any]:
            new_id = c.dlq_requeue(dlq_id, who, reason)
            return {"task_id": new_id, "message": f"requeued as task {new_id}"}

        _act_on_each(ids, act, json_out)
