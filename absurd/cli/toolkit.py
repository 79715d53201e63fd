"""The toolkit both command lines (``absurd`` and ``contimg``) are built with.

Every command of an :class:`App` runs inside :func:`guarded`, which turns each known error into one
line on stderr and a fixed exit code (the table is in exits.py).

Text from users and from the database is escaped before rich sees it (``cell``, ``fail``), so a
value such as ``[/x]`` is printed as it is and never read as markup.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from absurd.cli.exits import (
    CHECK_SERVER,
    EXIT_CODES,
    EXIT_DATABASE,
    EXIT_FAILED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_USAGE,
    KnownErrors,
    check_dsn,
    describe,
    one_line,
    shown_dsn,
)
from absurd.database import DSN_ENV
from absurd.errors import UnknownTaskError, UsageError
from absurd.logging import LOG_LEVEL_ENV, LOG_LEVELS
from absurd.registry import REGISTRY_ENV, Registry, load_registry, unknown_task_message

if TYPE_CHECKING:
    from absurd.client import Client

# Exit codes and error messages are exits.py's; these names are imported from here by the commands.
__all__ = [
    "CHECK_SERVER",
    "EXIT_CODES",
    "EXIT_DATABASE",
    "EXIT_FAILED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_USAGE",
    "check_dsn",
    "describe",
    "one_line",
    "shown_dsn",
]
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


# Options shared by the commands of both CLIs ---------------------------------------------------


def _check_level(value: str) -> str:
    if value.upper() not in LOG_LEVELS:
        raise typer.BadParameter(f"{value!r} is not a log level; choose one of {', '.join(LOG_LEVELS)}")
    return value.upper()


Dsn = Annotated[
    str | None,
    typer.Option("--dsn", envvar=DSN_ENV, help="Postgres DSN; default: the embedded server."),
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
LogLevel = Annotated[
    str, typer.Option("--log-level", envvar=LOG_LEVEL_ENV, callback=_check_level, help="Log level.")
]
RegistryOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--registry",
        "-r",
        envvar=REGISTRY_ENV,
        help="Task registry as module:attr (repeatable): task names, params and default options "
        "are checked against and taken from it.",
    ),
]


# Printing ----------------------------------------------------------------------------------------


def print_error(message: str, code: int = EXIT_FAILED) -> None:
    """Print ``error: MESSAGE`` (``not found: MESSAGE`` for code 3) on one line of stderr."""
    label = "not found" if code == EXIT_NOT_FOUND else "error"
    err_console.print(f"[bold red]{label}:[/] {escape(one_line(message))}")


def fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    """Print the error (``print_error``); return the Exit to raise with ``code``."""
    print_error(message, code)
    return typer.Exit(code)


def warn(message: str) -> None:
    """Print ``warning: MESSAGE`` on stderr."""
    err_console.print(f"[yellow]warning:[/] {escape(one_line(message))}")


def emit_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout."""
    sys.stdout.write(json.dumps(data, default=_plain, indent=2) + "\n")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def cell(value: Any) -> str:
    """A table cell, escaped: short timestamps, '-' for nothing, lists joined by commas."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return ", ".join(cell(v) for v in value)
    return escape(str(value))


def fixed(value: float | None, scale: float = 1.0, digits: int = 3) -> str:
    """``value`` times ``scale`` with ``digits`` decimals, '-' for nothing."""
    return "-" if value is None else f"{value * scale:.{digits}f}"


def first_line(text: str | None, width: int) -> str | None:
    """The first line of ``text``, cut to ``width`` characters for a table cell."""
    line = text.strip().splitlines()[0] if text and text.strip() else ""
    if not line:
        return None
    return line if len(line) <= width else line[: width - 1] + "…"


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a rich table of escaped cells."""
    t = Table(title=escape(title) if title else None, header_style="bold")
    for col in columns:
        t.add_column(escape(col))
    for row in rows:
        t.add_row(*(cell(v) for v in row))
    console.print(t)


def parse_json(text: str, option: str) -> Any:
    """The JSON value given to ``option``; UsageError naming the option when it is not JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{option} is not valid JSON: {exc}") from None


def print_rows(
    rows: Sequence[Any],
    json_out: bool,
    title: str,
    columns: Sequence[str],
    cells: Callable[[Any], Sequence[Any]],
) -> None:
    """``rows`` as JSON (``--json``), else as a table with a row of ``cells(row)`` for each."""
    if json_out:
        emit_json(rows)
    else:
        table(title, columns, [cells(r) for r in rows])


# The database ------------------------------------------------------------------------------------


@contextmanager
def client(dsn: str | None, registry: Registry | None = None) -> Iterator[Client]:
    """A client for one command."""
    from absurd.client import Client  # not at import: a worker's command line has no use for it

    c = Client(dsn, registry=registry)
    try:
        yield c
    finally:
        c.close()


def registry_or_none(specs: list[str] | None) -> Registry | None:
    """The registry named by ``--registry``/ABSURD_REGISTRY, or None when neither is given."""
    return load_registry(specs) if specs else None


# Errors ------------------------------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])


def guarded(fn: F, known: KnownErrors | None = None) -> F:
    """Run ``fn`` so that every known error ends as one line on stderr and its exit code
    (the codes are exits.py's); ``known`` adds error types of the caller's own."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        dsn = kwargs.get("dsn")  # typer has already read ABSURD_DSN into it
        try:
            check_dsn(dsn)
            return fn(*args, **kwargs)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except Exception as exc:
            found = describe(exc, dsn, known)
            if found is None:
                raise
            code, message = found
            raise fail(message, code) from None

    return wrapper  # type: ignore[return-value]


class App(typer.Typer):
    """A typer app whose commands all run :func:`guarded`, with ``known`` errors of its own."""

    def __init__(self, *, known_errors: KnownErrors | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("no_args_is_help", True)
        kwargs.setdefault("epilog", EXIT_CODES)
        kwargs.setdefault("pretty_exceptions_show_locals", False)
        super().__init__(**kwargs)
        self.known_errors: KnownErrors = dict(known_errors or {})

    def command(self, name: str | None = None, **kwargs: Any) -> Callable[[F], F]:
        """Register a command as typer does, guarded."""
        kwargs.setdefault("epilog", EXIT_CODES)
        register = super().command(name, **kwargs)

        def guard(fn: F) -> F:
            register(guarded(fn, self.known_errors))
            return fn

        return guard


# Task names --------------------------------------------------------------------------------------


def known_task_names(c: Client, registry: Registry | None) -> tuple[set[str] | None, str]:
    """The task names to check against and whose they are: the registry's, else those live workers
    serve, else None (no registry given and no worker has recorded its tasks)."""
    if registry is not None:
        return set(registry.names()), "registered"
    served = c.served_task_names()
    return (set(served) if served is not None else None), "served"


NO_WORKERS = "no worker has recorded the tasks it serves"


def warn_without_registry(unchecked: str | None, defaulted: str | None, names: str = "task names") -> None:
    """Warn, in one line, what a command given no registry could not do: check ``names`` (for the
    reason ``unchecked``; None when the served names checked them) and give the ``defaulted``
    options their task's own values."""
    parts = [f"{names} not checked ({unchecked})"] if unchecked else []
    if defaulted:
        parts.append(
            f"{defaulted} are the engine's defaults (queue default, 3 attempts, no timeout), "
            "not the task's own"
        )
    if parts:
        warn(f"no task registry: {'; '.join(parts)}; give --registry or {REGISTRY_ENV} (module:attr)")


def check_task_names(names: Sequence[str], c: Client, registry: Registry | None) -> None:
    """Refuse a task name that is neither registered nor served; warn when nothing can be checked."""
    known, source = known_task_names(c, registry)
    if known is not None:
        for name in names:
            if name not in known:
                hint = "" if registry is not None else "; start a worker that serves it, or give --registry"
                raise UnknownTaskError(unknown_task_message(name, known, source) + hint)
    if registry is None:
        warn_without_registry(None if known is not None else NO_WORKERS, "options not given")
