"""Both command lines, `absurd` and `contimg`, fail the same way: one line on stderr that says what
was wrong, where, and what to do, and the exit code absurd.cli.toolkit documents."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from absurd.cli import app as absurd_app
from absurd.cli.toolkit import EXIT_CODES, EXIT_DATABASE, EXIT_FAILED, EXIT_NOT_FOUND, EXIT_USAGE
from absurd.client import Client
from contimg.cli import app as contimg_app

runner = CliRunner()
APPS = {"absurd": absurd_app, "contimg": contimg_app}
# A command of each CLI that needs the database and nothing else.
NEEDS_DB = {"absurd": ["queue", "stats"], "contimg": ["products", "list", "ms"]}


def flat(text: str) -> str:
    """``text`` with typer's box drawing removed and white space folded, so wrapped lines still match."""
    return " ".join(text.translate({ord(c): " " for c in "│╭╮╰╯─"}).split())


def run(app: typer.Typer, *args: str, **env: str) -> Result:
    return runner.invoke(app, list(args), env=env or None)


def one_line_error(result: Result, code: int) -> str:
    """The result's stderr, which must be one line (no traceback) starting with its label."""
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(("error: ", "not found: ")), result.stderr
    return lines[0]


@pytest.mark.parametrize("cli", APPS)
@pytest.mark.parametrize(
    ("dsn", "shown", "problem"),
    [
        ("postgresql://u:s3cret@localhost:5432/x?badopt=1", "postgresql://u:***@localhost", "badopt"),
        ("host=h password=s3cret port=5432 dbname", "password=***", 'missing "=" after "dbname"'),
        ("nonsense ==", "nonsense ==", 'invalid connection option "nonsense"'),
    ],
)
def test_a_malformed_dsn_is_one_line_naming_it_without_its_password(
    cli: str, dsn: str, shown: str, problem: str
) -> None:
    line = one_line_error(run(APPS[cli], *NEEDS_DB[cli], "--dsn", dsn), EXIT_USAGE)
    assert line.startswith("error: malformed DSN") and shown in line and problem in line
    assert "postgresql://USER@HOST:PORT/DBNAME" in line and "s3cret" not in line


@pytest.mark.parametrize("cli", APPS)
def test_a_malformed_dsn_in_the_environment_is_caught_too(cli: str) -> None:
    result = run(APPS[cli], *NEEDS_DB[cli], ABSURD_DSN="postgresql://u:s3cret@h/x?nope=1")
    line = one_line_error(result, EXIT_USAGE)
    assert "(--dsn or ABSURD_DSN)" in line and "s3cret" not in line


@pytest.mark.parametrize("cli", APPS)
def test_an_unreachable_database_exits_4_without_its_password(cli: str) -> None:
    dsn = "postgresql://nobody:s3cret@127.0.0.1:1/none?connect_timeout=2"
    line = one_line_error(run(APPS[cli], *NEEDS_DB[cli], "--dsn", dsn), EXIT_DATABASE)
    assert "cannot connect to Postgres at" in line and "port=1" in line and "password=***" in line
    assert "check --dsn or ABSURD_DSN and that the server is running" in line and "s3cret" not in line


@pytest.mark.parametrize(
    ("cli", "args", "code", "expected"),
    [
        ("absurd", ["queue", "pause", "[/x]"], EXIT_NOT_FOUND, "not found: no queue named '[/x]'"),
        ("absurd", ["task", "list", "--state", "[/x]"], EXIT_USAGE, "unknown state '[/x]'"),
        ("absurd", ["breaker", "show", "[bold]k[/x]"], EXIT_NOT_FOUND, "key '[bold]k[/x]'"),
        ("contimg", ["products", "list", "[/x]"], EXIT_USAGE, "unknown product kind '[/x]'"),
        ("contimg", ["lightcurve", "show", "[red]S[/x]"], EXIT_NOT_FOUND, "no source named '[red]S[/x]'"),
    ],
)
def test_text_that_looks_like_markup_is_printed_as_it_is(
    dsn: str, cli: str, args: list[str], code: int, expected: str
) -> None:
    line = one_line_error(run(APPS[cli], *args, "--dsn", dsn), code)
    assert expected in line


def test_markup_in_data_is_printed_as_it_is(dsn: str) -> None:
    result = run(absurd_app, "task", "spawn", "[/x]", "--queue", "q", "--dsn", dsn)
    assert result.exit_code == 0, result.output
    listed = run(absurd_app, "task", "list", "--dsn", dsn)
    assert listed.exit_code == 0 and "[/x]" in listed.stdout
    shown = run(absurd_app, "task", "show", "1", "--dsn", dsn)
    assert shown.exit_code == 0 and "task 1 [/x] on q" in shown.stdout


def test_an_unknown_task_is_refused_at_spawn_with_the_registry(dsn: str, client: Client) -> None:
    registry = "absurd.builtin_tasks:builtin"
    line = one_line_error(
        run(absurd_app, "task", "spawn", "ehco", "--dsn", dsn, ABSURD_REGISTRY=registry), EXIT_USAGE
    )
    known = "echo, cleanup, fail, fan-out, noop, sleep"
    assert line == f"error: unknown task 'ehco'; registered tasks, closest first: {known}"
    assert client.list_tasks() == []


def test_an_unknown_task_is_refused_at_spawn_by_the_tasks_workers_serve(dsn: str, client: Client) -> None:
    client.conn.execute(
        "INSERT INTO absurd.workers (id, hostname, pid, queues, concurrency, task_names) "
        "VALUES ('w1', 'h', 1, '{default}', 1, '{echo,noop,sleep}')"
    )
    line = one_line_error(run(absurd_app, "task", "spawn", "no-such-task", "--dsn", dsn), EXIT_USAGE)
    assert "unknown task 'no-such-task'; served tasks, closest first: echo, noop, sleep" in line
    assert "start a worker that serves it, or give --registry" in line
    served = run(absurd_app, "task", "spawn", "echo", "--dsn", dsn)
    assert served.exit_code == 0 and "task 1 spawned" in served.stdout
    # The name was checked; only the options could not be the task's own.
    assert "task names not checked" not in served.stderr and "engine's defaults" in served.stderr


def test_with_no_registry_and_no_worker_a_spawn_is_accepted_with_a_warning(dsn: str) -> None:
    result = run(absurd_app, "task", "spawn", "anything", "--dsn", dsn)
    assert result.exit_code == 0 and "task 1 spawned" in result.stdout
    warning = " ".join(result.stderr.split())
    assert warning.startswith(
        "warning: no task registry: task names not checked (no worker has recorded the tasks it serves)"
    )
    assert warning.endswith("give --registry or ABSURD_REGISTRY (module:attr)")


def test_a_spawn_takes_the_tasks_own_options_from_the_registry(dsn: str, client: Client) -> None:
    registry = "tests.queue.test_cli_workflows:OWN_OPTIONS"
    own = run(absurd_app, "task", "spawn", "stage", "--registry", registry, "--dsn", dsn)
    assert own.exit_code == 0 and own.stderr == ""
    given = run(absurd_app, "task", "spawn", "stage", "-r", registry, "--queue", "q", "--dsn", dsn)
    assert given.exit_code == 0
    tasks = [client.get_task(i) for i in (1, 2)]
    assert [(t["queue"], t["timeout_s"], t["max_attempts"]) for t in tasks] == [
        ("imaging", 600.0, 5),
        ("q", 600.0, 5),
    ]


def test_a_yaml_error_names_the_file_and_line(dsn: str, tmp_path: Path) -> None:
    spec = tmp_path / "broken.yaml"
    spec.write_text("name: x\ntasks:\n  - name: a\n    type: echo\n    params: {x: [1, 2}\n")
    line = one_line_error(run(absurd_app, "workflow", "submit", str(spec), "--dsn", dsn), EXIT_FAILED)
    assert line.startswith(f"error: {spec}:5: not valid YAML: expected ',' or ']', but got '}}'")
    assert "<unicode string>" not in line


@pytest.mark.parametrize("cli", APPS)
def test_both_clis_document_the_same_exit_codes(cli: str) -> None:
    result = run(APPS[cli], "--help")
    assert result.exit_code == 0 and EXIT_CODES in flat(result.stdout)


@pytest.mark.parametrize(("cli", "args"), [("absurd", ["worker"]), ("contimg", ["products", "list", "ms"])])
def test_one_log_level_variable_for_both_clis(cli: str, args: list[str]) -> None:
    refused = run(APPS[cli], *args, ABSURD_LOG_LEVEL="LOUD")
    assert refused.exit_code == EXIT_USAGE and "'LOUD' is not a log level" in flat(refused.output)


def test_contimg_worker_is_an_alias_of_absurd_worker() -> None:
    result = run(contimg_app, "worker", "--help")
    assert result.exit_code == 0
    assert "absurd worker --registry contimg.tasks.registry:registry" in flat(result.stdout)
    assert "default: convert, calibrate, imaging, photometry" in flat(result.stdout)
