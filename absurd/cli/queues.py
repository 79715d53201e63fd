"""``absurd queue``: create, list, stats, pause, resume."""

from __future__ import annotations

from rich import box
from rich.markup import escape
from rich.table import Table

from absurd.cli.toolkit import App, Dsn, JsonOut, cell, client, console, emit_json

app = App(help="Queues: create, list, stats, pause and resume.")


@app.command("create")
def create(name: str, dsn: Dsn = None) -> None:
    """Create a queue (spawning into a new queue also creates it)."""
    with client(dsn) as c:
        c.create_queue(name)
    console.print(f"queue {escape(name)} exists")


@app.command("list")
def list_queues(dsn: Dsn = None, json_out: JsonOut = False) -> None:
    """List queues with their counts by state (the same table as ``queue stats``)."""
    stats(dsn, json_out)


@app.command("stats")
def stats(dsn: Dsn = None, json_out: JsonOut = False) -> None:
    """Counts by state (blocked: waiting on dependencies; dlq: open dead letters), the oldest pending
    task's age and completions in the last minute. Paused queues are marked with *."""
    with client(dsn) as c:
        rows = c.queue_stats()
    if json_out:
        emit_json(rows)
        return
    # Short headers and one-space gaps keep all twelve columns inside 80 characters.
    columns = {
        "queue": "name",
        "ready": "ready",
        "later": "delayed",
        "run": "running",
        "sleep": "sleeping",
        "block": "blocked",
        "done": "completed",
        "fail": "failed",
        "cancel": "cancelled",
        "dlq": "dlq",
        "age s": "oldest_pending_s",
        "/min": "completed_last_minute",
    }
    t = Table(
        title="queues",
        caption="* paused; block: waiting on dependencies",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 0),
    )
    for header in columns:
        t.add_column(header, justify="left" if header == "queue" else "right")
    for r in rows:
        name = cell(r["name"]) + ("*" if r["paused"] else "")
        t.add_row(name, *(cell(r[key]) for header, key in columns.items() if header != "queue"))
    console.print(t)


@app.command("pause")
def pause(name: str, dsn: Dsn = None) -> None:
    """Stop workers claiming from a queue; running tasks carry on."""
    with client(dsn) as c:
        c.set_paused(name, True)
    console.print(f"queue {escape(name)} paused")


@app.command("resume")
def resume(name: str, dsn: Dsn = None) -> None:
    """Let workers claim from a paused queue again."""
    with client(dsn) as c:
        c.set_paused(name, False)
    console.print(f"queue {escape(name)} resumed")
