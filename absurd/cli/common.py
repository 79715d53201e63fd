"""Shared pieces of the admin CLI: the --dsn option, output as tables or JSON, error exits."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, TypeVar

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from absurd.client import Client
from absurd.errors import AbsurdError, NotFoundError

console = Console()
err_console = Console(stderr=True)

# Exit codes: 0 success, 1 an error, 2 bad usage (typer's own), 3 an unknown id or name.
EXIT_ERROR = 1
EXIT_NOT_FOUND = 3

Dsn = Annotated[
    str | None,
    typer.Option("--dsn", envvar="ABSURD_DSN", help="Postgres DSN; default: the embedded server."),
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(fn: F) -> F:
    """Turn the engine's errors into one clear line on stderr and a non-zero exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NotFoundError as exc:
            err_console.print(f"[red]not found:[/red] {exc}")
            raise typer.Exit(EXIT_NOT_FOUND) from None
        except (AbsurdError, ValueError) as exc:
            err_console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(EXIT_ERROR) from None
        except psycopg.OperationalError as exc:
            err_console.print(f"[red]database error:[/red] {str(exc).strip()}")
            raise typer.Exit(EXIT_ERROR) from None

    return wrapper  # type: ignore[return-value]


@contextmanager
def client(dsn: str | None) -> Iterator[Client]:
    """A client for one command."""
    c = Client(dsn)
    try:
        yield c
    finally:
        c.close()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def emit_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout."""
    sys.stdout.write(json.dumps(data, default=_plain, indent=2) + "\n")


def cell(value: Any) -> str:
    """A table cell: short timestamps, '-' for nothing."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a rich table."""
    t = Table(title=title, header_style="bold")
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*(cell(v) for v in row))
    console.print(t)
