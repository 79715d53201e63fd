"""Exit codes, and the one-line message and code of each known error.

Every command of the CLIs ends with one of these codes; a known error (``describe``) is one line on stderr:

====  =======================================================================================
code  meaning
====  =======================================================================================
0     success
1     the operation failed: a task, a refused change, a file whose contents are invalid
2     bad input or usage: an option, argument, name or DSN given on the command line is wrong
      (typer's own usage errors exit 2 as well)
3     not found: an id or name that does not exist
4     the database cannot be reached: server down, wrong host or port, login refused
====  =======================================================================================

Neither typer nor rich is imported here: ``python -m absurd worker`` starts with this module alone
(worker_start.py) and loads them only to print an error or help.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping

import psycopg
import psycopg.errors
from pydantic import ValidationError

from absurd.database import DSN_ENV, redact
from absurd.errors import AbsurdError, ConfigurationError, NotFoundError, UnknownTaskError, UsageError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_DATABASE = 4
EXIT_CODES = "Exit codes: 0 ok, 1 failed, 2 bad input or usage, 3 not found, 4 database unreachable."


def one_line(text: object) -> str:
    """``text`` with its white space (newlines, tabs) folded, for a one-line message."""
    return " ".join(str(text).split())


_URI_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
_KEY_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")


def shown_dsn(dsn: str | None) -> str:
    """The DSN for a message, its password hidden, even when it does not parse."""
    if not dsn:
        return "the embedded server"
    try:
        psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return _KEY_PASSWORD.sub(r"\1***", _URI_PASSWORD.sub(r"\1***@", dsn))
    return redact(dsn)


def check_dsn(dsn: str | None) -> None:
    """Refuse a DSN that does not parse, naming it (password hidden) and the form it should take."""
    if not dsn:
        return
    try:
        psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise UsageError(
            f"malformed DSN {shown_dsn(dsn)!r} (--dsn or {DSN_ENV}): {one_line(exc)}; write it as "
            "postgresql://USER@HOST:PORT/DBNAME or 'host=HOST port=PORT dbname=DBNAME user=USER'"
        ) from None


KnownErrors = Mapping[type[BaseException], int]
CHECK_SERVER = f"check --dsn or {DSN_ENV} and that the server is running"


def _database_error(exc: psycopg.Error, dsn: str | None) -> tuple[int, str]:
    where = shown_dsn(dsn)
    if isinstance(exc, psycopg.OperationalError):
        return EXIT_DATABASE, f"cannot reach the database at {where}: {one_line(exc)}; {CHECK_SERVER}"
    if isinstance(exc, psycopg.errors.UndefinedTable | psycopg.errors.UndefinedFunction):
        return EXIT_FAILED, (
            f"the database at {where} lacks a table or function ({one_line(exc.diag.message_primary)}); "
            "apply the migrations with `absurd migrate`"
        )
    return EXIT_FAILED, f"database error at {where}: {one_line(exc)}"


def _validation(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}" for err in exc.errors()
    )


def describe(exc: BaseException, dsn: str | None, known: KnownErrors | None = None) -> tuple[int, str] | None:
    """The exit code and one-line message for a known error, or None for an unexpected one."""
    for kind, code in (known or {}).items():
        if isinstance(exc, kind):
            return code, str(exc)
    if isinstance(exc, NotFoundError):
        return EXIT_NOT_FOUND, str(exc)
    if isinstance(exc, UsageError | UnknownTaskError):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, ConfigurationError):
        if isinstance(exc.__cause__, psycopg.OperationalError):
            return EXIT_DATABASE, f"{exc}; {CHECK_SERVER}"
        return EXIT_USAGE, str(exc)
    if isinstance(exc, psycopg.Error):
        return _database_error(exc, dsn)
    # YAML and workflow files are read by the commands that need them: if their modules were never
    # imported, the error cannot come from them (and a worker starts without them).
    yaml = sys.modules.get("yaml")
    if yaml is not None and isinstance(exc, yaml.YAMLError):
        from absurd.workflow_spec import yaml_problem

        line, problem = yaml_problem(exc)
        mark = getattr(exc, "problem_mark", None)
        return EXIT_FAILED, f"{getattr(mark, 'name', 'YAML')}:{line}: {problem}"
    spec = sys.modules.get("absurd.workflow_spec")
    if spec is not None and isinstance(exc, spec.SpecError):
        return EXIT_FAILED, f"{exc}; nothing was submitted"
    if isinstance(exc, ValidationError):
        return EXIT_USAGE, _validation(exc)
    if isinstance(exc, AbsurdError):
        return EXIT_FAILED, str(exc)
    if isinstance(exc, ValueError):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, OSError):
        return EXIT_FAILED, f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)
    return None
