"""``python -m absurd worker`` without typer, click or rich, which would cost every worker's start about
0.08 s of CPU.

``main`` reads the command line itself only when every word of it is one it reads exactly as typer
would (``OPTIONS``). Anything else (``--help``, an unknown option, ``--opt=value``, a value that typer
would refuse or convert in its own way) goes to the typer app of worker_app.py, which answers as it
always has. tests/queue/test_worker_start.py holds ``OPTIONS`` to the typer command's options.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from absurd.cli.exits import check_dsn, describe
from absurd.cli.worker_run import METRICS_PORT_ENV, run_worker
from absurd.database import DSN_ENV
from absurd.logging import LOG_LEVEL_ENV, LOG_LEVELS
from absurd.registry import REGISTRY_ENV

# Exit code of a command ended by Ctrl-C before the worker handles SIGINT itself, as typer gives it.
EXIT_INTERRUPTED = 130

# Only plain digits: click would also take signs, underscores, spaces and exponents, so such values are
# left to it.
_INT = re.compile(r"[0-9]{1,9}")
_FLOAT = re.compile(r"[0-9]{1,9}(\.[0-9]{1,9})?")


@dataclass(frozen=True)
class Option:
    """One option of ``absurd worker``: the parameter of ``run_worker`` it sets and how typer reads it."""

    name: str
    flags: tuple[str, ...]
    kind: Literal["str", "int", "float", "level"]
    multiple: bool = False
    envvar: str | None = None
    minimum: int | None = None

    def read(self, text: str) -> Any:
        """The value typer would give for ``text``; None when typer may read it otherwise or refuse it."""
        if not text or text.startswith("-"):
            return None
        if self.kind == "str":
            return text
        if self.kind == "level":
            return text.upper() if text.upper() in LOG_LEVELS else None
        if self.kind == "float":
            return float(text) if _FLOAT.fullmatch(text) else None
        if not _INT.fullmatch(text) or (self.minimum is not None and int(text) < self.minimum):
            return None
        return int(text)

    def from_env(self, text: str) -> Any:
        """The value of the option's environment variable; typer splits a repeatable option's on white
        space, so only a value of one word is read here."""
        if self.multiple:
            return [text] if text.split() == [text] else None
        return self.read(text)


OPTIONS = (
    Option("dsn", ("--dsn",), "str", envvar=DSN_ENV),
    Option("queue", ("--queue", "-q"), "str", multiple=True),
    Option("concurrency", ("--concurrency", "-c"), "int", minimum=1),
    Option("processes", ("--processes",), "int"),
    Option("registry", ("--registry", "-r"), "str", multiple=True, envvar=REGISTRY_ENV),
    Option("lease_s", ("--lease-s",), "float"),
    Option("claim_batch", ("--claim-batch",), "int", minimum=1),
    Option("poll_s", ("--poll-s",), "float"),
    Option("shutdown_grace_s", ("--shutdown-grace-s",), "float"),
    Option("log_level", ("--log-level",), "level", envvar=LOG_LEVEL_ENV),
    Option("metrics_port", ("--metrics-port",), "int", envvar=METRICS_PORT_ENV),
    Option("workers", ("--workers", "-w"), "int", minimum=1),
)
_BY_FLAG = {flag: option for option in OPTIONS for flag in option.flags}


def parse(argv: Sequence[str], environ: Mapping[str, str]) -> dict[str, Any] | None:
    """The arguments of ``run_worker`` that ``argv`` (the words after ``worker``) and the environment
    give, as typer would read them; None when there is anything typer alone should answer."""
    if any(key.endswith("_COMPLETE") for key in environ):
        return None  # a shell-completion request
    given: dict[str, Any] = {}
    words = iter(argv)
    for word in words:
        option = _BY_FLAG.get(word)
        value = option.read(next(words, "")) if option is not None else None
        if option is None or value is None:
            return None
        if option.multiple:
            given.setdefault(option.name, []).append(value)
        elif option.name in given:
            return None  # typer's rule for an option given twice is its own
        else:
            given[option.name] = value
    for option in OPTIONS:
        # As typer: an empty variable counts as unset, and the command line wins.
        if option.name not in given and option.envvar and environ.get(option.envvar):
            value = option.from_env(environ[option.envvar])
            if value is None:
                return None
            given[option.name] = value
    return given


def main(argv: Sequence[str]) -> None:
    """Run ``absurd worker`` with the options in ``argv`` (the words after ``worker``); errors end as
    they do under typer: one line on stderr and the exit code of exits.py."""
    given = parse(argv, os.environ)
    if given is None:
        from absurd.cli.worker_app import app

        app()
        return
    dsn = given.get("dsn")
    try:
        check_dsn(dsn)
        run_worker(**given)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:
        found = describe(exc, dsn)
        if found is None:
            _shown_by_typer(exc)
            raise
        from absurd.cli.toolkit import print_error

        code, message = found
        print_error(message, code)
        sys.exit(code)


def _shown_by_typer(exc: Exception) -> None:
    """Have typer's hook print ``exc`` at exit, as it prints an unexpected error in one of its commands."""
    from typer.main import _typer_developer_exception_attr_name, except_hook
    from typer.models import DeveloperExceptionConfig

    from absurd.cli.worker_app import app

    sys.excepthook = except_hook
    config = DeveloperExceptionConfig(
        pretty_exceptions_enable=app.pretty_exceptions_enable,
        pretty_exceptions_show_locals=app.pretty_exceptions_show_locals,
        pretty_exceptions_short=app.pretty_exceptions_short,
    )
    setattr(exc, _typer_developer_exception_attr_name, config)
