"""``absurd queue``: create, list, stats, pause, resume."""

from __future__ import annotations

import typer

from absurd.cli.common import Dsn, JsonOut, client, console, emit_json, handle_errors, table

app = typer.Typer(help="Queues: create, list, stats, pause and resume.", no_args_is_help=True)


@app.command("create")
@handle_errors
def create(name: str, dsn: Dsn = None) -> None:
    """Create a queue (spawning into a new queue also creates it)."""
    with client(dsn) as c:
        c.create_queue(name)
    console.print(f"queue {name} exists")


@app.command("list")
@handle_errors
def list_queues(dsn: Dsn = None, json_out: JsonOut = False) -> None:
    """List queues with their ready and running counts."""
    stats(dsn, json_out)


@app.command("stats")
@handle_errors
def stats(dsn: Dsn = None, json_out: JsonOut = False) -> None:
    """Counts by state, the oldest pending task's age and completions in the last minute."""
    with client(dsn) as c:
        rows = c.queue_stats()
    if json_out:
        emit_json(rows)
        return
    cols = [
        "name",
        "paused",
        "ready",
        "delayed",
        "running",
        "sleeping",
        "completed",
        "failed",
        "cancelled",
        "oldest_pending_s",
        "completed_last_minute",
    ]
    table("queues", cols, [[r[k] for k in cols] for r in rows])


@app.command("pause")
@handle_errors
def pause(name: str, dsn: Dsn = None) -> None:
    """Stop workers claiming from a queue; running tasks carry on."""
    with client(dsn) as c:
        c.set_paused(name, True)
    console.print(f"queue {name} paused")


@app.command("resume")
@handle_errors
def resume(name: str, dsn: Dsn = None) -> None:
    """Let workers claim from a paused queue again."""
    with client(dsn) as c:
        c.set_paused(name, False)
    console.print(f"queue {name} resumed")
