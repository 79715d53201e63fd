"""``absurd events emit``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from absurd.cli.toolkit import App, Dsn, client, console, parse_json

app = App(help="Events that tasks await.")


@app.command("emit")
def emit(
    name: str,
    payload: Annotated[str, typer.Option(help="JSON payload.")] = "null",
    dsn: Dsn = None,
) -> None:
    """Emit an event, waking every task that awaits it."""
    data = parse_json(payload, "--payload")
    with client(dsn) as c:
        woken = c.emit_event(name, data)
    console.print(f"event {escape(name)} emitted; {woken} waiting task(s) woken")
