"""``python -m absurd worker`` starts without typer, click or rich (absurd/cli/worker_start.py) and reads
its command line exactly as the typer command does, leaving to typer everything it does not read."""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from absurd.cli import admin, worker_app
from absurd.cli.worker_run import run_worker
from absurd.cli.worker_start import OPTIONS, parse
from absurd.client import Client
from tests.support.processes import REPO, wait_until

ENV_NAMES = sorted({o.envvar for o in OPTIONS if o.envvar})
# Modules a worker must start without: the CLI's (typer, click, rich), the embedded server's (pgserver,
# platformdirs), and those only a metrics port or a process-mode task needs.
NOT_AT_START = ("typer", "click", "rich", "pgserver", "platformdirs", "prometheus_client", "pebble")


def typer_options() -> dict[str, Any]:
    """The worker command's options as typer builds them, by parameter name."""
    command: Any = get_command(worker_app.app)
    return {p.name: p for p in command.commands["worker"].params}


def typer_reads(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    """The arguments typer hands the worker's body for ``argv`` (after ``worker``) and ``env``."""
    calls: list[dict[str, Any]] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(admin, "run_worker", lambda **kwargs: calls.append(kwargs))
        full_env: dict[str, str | None] = {name: None for name in ENV_NAMES}
        result = CliRunner().invoke(worker_app.app, ["worker", *argv], env={**full_env, **env})
    assert result.exit_code == 0, result.output
    return calls[0]


def defaults() -> dict[str, Any]:
    """The defaults of ``run_worker``'s parameters."""
    return {name: p.default for name, p in inspect.signature(run_worker).parameters.items()}


def test_options_are_the_typer_commands() -> None:
    options = typer_options()
    assert [o.name for o in OPTIONS] == list(options)
    for option in OPTIONS:
        declared = options[option.name]
        element = {"str": str, "level": str, "int": int, "float": float}[option.kind]
        assert declared.type_descriptor.annotation == (list[element] if option.multiple else element)
        assert (tuple(declared.opts), declared.multiple, declared.envvar) == (
            option.flags,
            option.multiple,
            option.envvar,
        )
        assert (declared.min, declared.max) == (option.minimum, None)
        # The log level's callback upper-cases it and refuses unknown levels; no other option has one.
        assert (declared.callback is not None) == (option.kind == "level")
        assert declared.default == defaults()[option.name], option.name


READ_HERE = [
    ([], {}),
    (["--concurrency", "64", "--log-level", "WARNING", "--shutdown-grace-s", "5"], {}),
    (
        [
            *["--dsn", "postgresql://u@h/db", "-q", "a", "--queue", "b", "-c", "3", "--processes", "2"],
            *["-r", "m:a", "--registry", "n:b", "--lease-s", "12.5", "--claim-batch", "10"],
            *["--poll-s", "0.2", "--log-level", "warning", "--metrics-port", "9101"],
        ],
        {},
    ),
    (
        [],
        {
            "ABSURD_DSN": "host=/tmp dbname=x",
            "ABSURD_REGISTRY": "m:a",
            "ABSURD_LOG_LEVEL": "debug",
            "ABSURD_METRICS_PORT": "9100",
        },
    ),
    (
        ["--dsn", "host=h", "-r", "x:y", "--log-level", "error"],
        {"ABSURD_DSN": "host=env", "ABSURD_REGISTRY": "m:a"},
    ),
    ([], {"ABSURD_DSN": "", "ABSURD_LOG_LEVEL": ""}),
]


@pytest.mark.parametrize(("argv", "env"), READ_HERE)
def test_reads_the_command_line_as_typer_does(argv: list[str], env: dict[str, str]) -> None:
    given = parse(argv, env)
    assert given is not None
    assert {**defaults(), **given} == typer_reads(argv, env)


LEFT_TO_TYPER = [
    (["--help"], {}),
    (["-h"], {}),
    (["--concurrency", "0"], {}),
    (["--concurrency=4"], {}),
    (["-c4"], {}),
    (["--claim-batch", "-1"], {}),
    (["--lease-s", "1e3"], {}),
    (["--log-level", "loud"], {}),
    (["--dsn"], {}),
    (["--dsn", ""], {}),
    (["--dsn", "a", "--dsn", "b"], {}),
    (["--bogus", "1"], {}),
    (["extra"], {}),
    (["--"], {}),
    ([], {"ABSURD_REGISTRY": "a:b c:d"}),
    ([], {"ABSURD_METRICS_PORT": "+9100"}),
    ([], {"ABSURD_LOG_LEVEL": "loud"}),
    ([], {"_PYTHON -M ABSURD_COMPLETE": "bash_complete"}),
]


@pytest.mark.parametrize(("argv", "env"), LEFT_TO_TYPER)
def test_leaves_everything_else_to_typer(argv: list[str], env: dict[str, str]) -> None:
    assert parse(argv, env) is None


# ``python -m absurd worker ...`` that lists, as it exits, every module it imported.
LISTING_IMPORTS = (
    "import atexit, runpy, sys; "
    "atexit.register(lambda: print('imported:', *sorted(sys.modules), file=sys.stderr)); "
    "runpy.run_module('absurd', run_name='__main__', alter_sys=True)"
)


def worker_env() -> dict[str, str]:
    """This environment without the worker's own variables, with the repository importable."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    return {**env, "PYTHONPATH": str(REPO)}


def test_a_worker_starts_without_the_cli_modules(dsn: str, client: Client) -> None:
    task = client.spawn("noop")
    proc = subprocess.Popen(
        [sys.executable, "-c", LISTING_IMPORTS, "worker", "--dsn", dsn, "--log-level", "WARNING"],
        cwd=REPO,
        env=worker_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(
            lambda: client.get_task(task.task_id)["state"] == "completed", what="the first task to run"
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    listed = [line.split()[1:] for line in err.splitlines() if line.startswith("imported:")]
    imported = {name.split(".")[0] for name in listed[0]}
    assert {"absurd", "psycopg"} <= imported
    assert sorted(imported & set(NOT_AT_START)) == []


def test_an_error_ends_as_under_typer(dsn: str) -> None:
    args = ["--registry", "no_such_module:registry"]
    done = subprocess.run(
        [sys.executable, "-m", "absurd", "worker", "--dsn", dsn, *args],
        cwd=REPO,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    under_typer = CliRunner().invoke(worker_app.app, ["worker", "--dsn", dsn, *args])
    assert done.returncode == under_typer.exit_code == 2
    assert done.stderr == under_typer.stderr
    assert done.stderr.startswith("error: cannot load task registry 'no_such_module:registry'")
