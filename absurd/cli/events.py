"""``absurd events emit``."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from absurd.cli.common import Dsn, client, console, handle_errors

app = typer.Typer(help="Events that tasks await.", no_args_is_help=True)


@app.command("emit")
@handle_errors
def emit(
    name: str,
    payload: Annotated[str, typer.Option(help="JSON payload.")] = "null",
    dsn: Dsn = None,
) -> None:
    """Emit an event, waking every task that awaits it."""
    try:
        data = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--payload is not valid JSON: {exc}") from exc
    with client(dsn) as c:
        woken = c.emit_event(name, data)
    console.print(f"event {name} emitted; {woken} waiting task(s) woken")
