"""``absurd schedule``: validate schedule files, sync them into Postgres, and inspect or fire schedules."""

from __future__ import annotations

import getpass
import json
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import psycopg
import typer
from rich.markup import escape

from absurd.cli.toolkit import (
    NO_WORKERS,
    App,
    Dsn,
    JsonOut,
    RegistryOpt,
    client,
    console,
    emit_json,
    err_console,
    fail,
    known_task_names,
    one_line,
    parse_json,
    print_rows,
    registry_or_none,
    shown_dsn,
    table,
    warn,
    warn_without_registry,
)
from absurd.database import connect, resolve_dsn
from absurd.errors import AbsurdError, ConfigurationError
from absurd.schedules import LoadedSchedule, load_paths, store
from absurd.schedules.sync import from_row, sync
from absurd.workflow_spec import inherited_options

SERVED = "the tasks workers serve on this database (give --registry or ABSURD_REGISTRY to use a registry)"
NO_DATABASE = "no database (--dsn or ABSURD_DSN) to read the tasks workers serve from"

app = App(help="Schedules: workflows started by cron, by interval or by events.")


def _served(dsn: str) -> set[str] | None:
    """The task names live workers serve on ``dsn``; None (with a warning) when it cannot be read."""
    try:
        with client(dsn) as c:
            return known_task_names(c, None)[0]
    except (ConfigurationError, psycopg.OperationalError) as exc:
        warn(f"cannot read the tasks workers serve from {shown_dsn(dsn)}: {one_line(exc)}")
        return None


def _load_or_exit(
    paths: list[Path], registry: list[str] | None, dsn: str | None, outcome: str
) -> list[LoadedSchedule]:
    """The schedules of ``paths``, their task types checked against the registry, else against the
    tasks workers serve on ``dsn``; print every problem, then ``outcome``, and exit 1 if there is any."""
    tasks = registry_or_none(registry)
    known = _served(dsn) if tasks is None and dsn else None
    loaded, problems = load_paths(paths, tasks, known)
    for problem in problems:
        err_console.print(str(problem), markup=False, soft_wrap=True)
    if problems:
        against = "" if known is None else f"; task types were checked against {SERVED}"
        raise fail(f"{len(problems)} problem(s){outcome}{against}")
    if tasks is None:
        inherits = any(inherited_options(item.schedule.workflow) for item in loaded)
        unchecked = None if known is not None else NO_WORKERS if dsn else NO_DATABASE
        warn_without_registry(unchecked, "step options left out" if inherits else None, "task types")
    return loaded


@app.command("validate")
def validate(
    paths: Annotated[list[Path], typer.Argument(help="Schedule files or directories of them.")],
    registry: RegistryOpt = None,
    dsn: Dsn = None,
) -> None:
    """Check schedule files; print every problem as FILE:LINE: PROBLEM and exit 1 if there is any.

    Task types are checked against --registry (or ABSURD_REGISTRY), else against the tasks live
    workers serve on --dsn (or ABSURD_DSN), else not at all (a warning says so).
    """
    loaded = _load_or_exit(paths, registry, dsn, "")
    names = ", ".join(escape(i.schedule.name) for i in loaded)
    console.print(f"{len(loaded)} schedule(s) valid: {names}")


@app.command("sync")
def sync_command(
    paths: Annotated[list[Path], typer.Argument(help="Schedule files or directories of them.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the changes without making them.")] = False,
    registry: RegistryOpt = None,
    dsn: Dsn = None,
    json_out: JsonOut = False,
) -> None:
    """Make the stored schedules those of the files (add, update, remove) and show the diff."""
    loaded = _load_or_exit(paths, registry, resolve_dsn(dsn), "; nothing was changed")
    with connect(resolve_dsn(dsn)) as conn:
        changes = sync(conn, loaded, dry_run=dry_run)
    if json_out:
        emit_json([{"action": c.action, "name": c.name, "diff": c.diff} for c in changes])
        return
    for change in changes:
        console.print(f"[bold]{change.action} {escape(change.name)}[/bold]")
        for line in change.diff:
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else None
            console.print(line, style=style, markup=False, highlight=False)
    verb = "would change" if dry_run else "changed"
    console.print(f"{len(changes)} schedule(s) {verb}; {len(loaded)} declared" if changes else "no changes")


@app.command("list")
def list_command(dsn: Dsn = None, json_out: JsonOut = False) -> None:
    """Stored schedules with their trigger, next and last fire."""
    with connect(resolve_dsn(dsn)) as conn:
        rows = store.list_schedules(conn)
    print_rows(
        rows,
        json_out,
        "schedules",
        ["name", "enabled", "trigger", "catch-up", "next fire (UTC)", "last fire (UTC)", "source"],
        lambda r: [
            r["name"],
            "yes" if r["enabled"] else "no",
            from_row(r).trigger.describe(),
            r["catch_up"],
            r["next_fire_at"],
            r["last_fired_at"],
            f"{r['source_file']}:{r['source_line']}" if r["source_file"] else None,
        ],
    )


@app.command("show")
def show(
    name: str,
    fires: Annotated[int, typer.Option(min=0, help="How many recent fires to list.")] = 10,
    dsn: Dsn = None,
    json_out: JsonOut = False,
) -> None:
    """One schedule: its trigger, policy, workflow template and recent fires."""
    with connect(resolve_dsn(dsn)) as conn:
        row = store.get_schedule(conn, name, fires)
    if json_out:
        emit_json(row)
        return
    schedule = from_row(row)
    state = "enabled" if row["enabled"] else "disabled"
    console.print(f"[bold]{escape(name)}[/bold] ({state}) {escape(row['description'])}")
    console.print(
        f"trigger: {escape(schedule.trigger.describe())}; catch-up: {row['catch_up']} "
        f"(limit {row['catch_up_limit']})"
    )
    console.print(f"next fire: {row['next_fire_at'] or '-'}; last fire: {row['last_fired_at'] or '-'}")
    console.print(f"source: {escape(str(row['source_file']))}:{row['source_line']}")
    console.print_json(json.dumps(row["template"]))
    table(
        "recent fires",
        ["fire", "fire time", "kind", "event", "workflow", "scheduler", "error"],
        [
            [
                f["id"],
                f["fire_time"],
                f["kind"],
                f["event_id"],
                f["workflow_id"],
                f["scheduler_id"],
                f["error"],
            ]
            for f in row["recent_fires"]
        ],
    )


def _set_enabled(name: str, enabled: bool, dsn: str | None) -> None:
    with connect(resolve_dsn(dsn)) as conn:
        store.set_enabled(conn, name, enabled)
    note = " (until the next sync, if its file says otherwise)"
    console.print(f"schedule {escape(name)} {'enabled' if enabled else 'disabled'}{note}")


@app.command("enable")
def enable(name: str, dsn: Dsn = None) -> None:
    """Enable a schedule; it fires from its next time on (nothing missed while disabled)."""
    _set_enabled(name, True, dsn)


@app.command("disable")
def disable(name: str, dsn: Dsn = None) -> None:
    """Disable a schedule; schedulers skip it until it is enabled."""
    _set_enabled(name, False, dsn)


@app.command("trigger")
def trigger(
    name: str,
    payload: Annotated[
        str | None, typer.Option(help="JSON event payload, for a schedule that reads ${event.*}.")
    ] = None,
    dsn: Dsn = None,
) -> None:
    """Fire a schedule now, whatever its trigger."""
    event = parse_json(payload, "--payload") if payload is not None else None
    actor = f"cli:{getpass.getuser()}@{socket.gethostname()}"
    with connect(resolve_dsn(dsn)) as conn:
        fired, workflow = store.trigger_now(conn, name, actor, event)
    if fired.error:
        raise AbsurdError(f"schedule {name} fired (fire {fired.fire_id}) but {fired.error}")
    console.print(f"schedule {escape(name)} fired: fire {fired.fire_id}, workflow {workflow}")


@app.command("next")
def next_command(
    name: str,
    count: Annotated[int, typer.Option("-n", "--count", min=1, max=1000, help="How many.")] = 5,
    dsn: Dsn = None,
    json_out: JsonOut = False,
) -> None:
    """The next fire times of a schedule, in its time zone and in UTC."""
    with connect(resolve_dsn(dsn)) as conn:
        row = store.get_schedule(conn, name)
    schedule = from_row(row)
    if schedule.trigger.kind == "event":
        console.print(
            f"{escape(name)} fires once per {escape(repr(schedule.trigger.event))} event; "
            "it has no fire times"
        )
        return
    times = schedule.trigger.next_times(datetime.now(UTC), count)
    zone = ZoneInfo(schedule.trigger.timezone or "UTC")
    if json_out:
        emit_json([t.astimezone(UTC).isoformat() for t in times])
        return
    table(
        f"next fires of {name}" + ("" if row["enabled"] else " (disabled)"),
        [f"local ({zone.key})", "UTC"],
        [[t.astimezone(zone).isoformat(), t.astimezone(UTC).isoformat()] for t in times],
    )
