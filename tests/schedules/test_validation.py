"""Schedule files: every problem is reported with its file, its line and what is wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import yaml

from absurd.builtin_tasks import builtin
from absurd.schedules import load_paths
from tests.support.processes import REPO

GOOD_TASKS = """
    workflow:
      tasks:
        - name: a
          type: echo
"""

# name: (file text, line of the problem, words the message must hold)
BROKEN: dict[str, tuple[str, int, str]] = {
    "yaml syntax": ("schedules:\n  - name: x\n    trigger: {cron: '0 * * * *'\n", 4, "YAML syntax"),
    "tab indentation": ("schedules:\n\t- name: x\n", 2, "YAML syntax"),
    "empty file": ("", 1, "empty"),
    "no schedules key": ("jobs: []\n", 1, "unknown key 'jobs'"),
    "unknown schedule key": (
        "schedules:\n  - name: x\n    trigger: {every: 1h}\n    colour: blue\n" + GOOD_TASKS,
        4,
        "unknown key 'colour'",
    ),
    "unknown task key": (
        "schedules:\n  - name: x\n    trigger: {every: 1h}\n    workflow:\n      tasks:\n"
        "        - name: a\n          type: echo\n          retries: 3\n",
        8,
        "unknown key 'retries'",
    ),
    "bad cron": (
        "schedules:\n  - name: x\n    trigger:\n      cron: '0 25 * * *'\n" + GOOD_TASKS,
        4,
        "not valid",
    ),
    "six cron fields": (
        "schedules:\n  - name: x\n    trigger:\n      cron: '0 0 * * * *'\n" + GOOD_TASKS,
        4,
        "expected 5",
    ),
    "unknown time zone": (
        "schedules:\n  - name: x\n    trigger:\n      cron: '0 0 * * *'\n      timezone: Mars/Olympus\n"
        + GOOD_TASKS,
        5,
        "unknown time zone",
    ),
    "two triggers": (
        "schedules:\n  - name: x\n    trigger:\n      every: 1h\n      event: e\n" + GOOD_TASKS,
        4,
        "exactly one of",
    ),
    "bad duration": (
        "schedules:\n  - name: x\n    trigger: {every: soon}\n" + GOOD_TASKS,
        3,
        "not a duration",
    ),
    "bad catch-up policy": (
        "schedules:\n  - name: x\n    trigger: {every: 1h}\n    catch_up: always\n" + GOOD_TASKS,
        4,
        "catch_up.policy",
    ),
    "unknown task type": (
        "schedules:\n  - name: x\n    trigger: {every: 1h}\n    workflow:\n      tasks:\n"
        "        - name: a\n          type: echo\n        - name: b\n          type: teleport\n",
        8,
        "unknown type 'teleport'",
    ),
    "cycle": (
        "schedules:\n  - name: x\n    trigger: {every: 1h}\n    workflow:\n      tasks:\n"
        "        - name: a\n          type: echo\n          depends_on: [b]\n"
        "        - name: b\n          type: echo\n          depends_on: [a]\n",
        6,
        "cycle: a → b → a",
    ),
    "unknown dependency": (
        "schedules:\n  - name: x\n    trigger: {every: 1h}\n    workflow:\n      tasks:\n"
        "        - name: a\n          type: echo\n        - name: b\n          type: echo\n"
        "          depends_on: [c]\n",
        8,
        "unknown task 'c'",
    ),
    "result of a non-ancestor": (
        "schedules:\n  - name: x\n    trigger: {every: 1h}\n    workflow:\n      tasks:\n"
        "        - name: a\n          type: echo\n        - name: b\n          type: echo\n"
        "          params: {v: '${a.result.x}'}\n",
        8,
        "does not depend on 'a'",
    ),
    "event reference without an event trigger": (
        "schedules:\n  - name: x\n    trigger: {every: 1h}\n    workflow:\n      tasks:\n"
        "        - name: a\n          type: echo\n          params: {p: '${event.ms_path}'}\n",
        6,
        "not triggered by an event",
    ),
    "missing workflow param": (
        "schedules:\n  - name: x\n    trigger: {event: new_ms}\n    workflow:\n      tasks:\n"
        "        - name: a\n          type: echo\n          params: {p: '${params.out_dir}'}\n",
        6,
        "no 'out_dir'",
    ),
    "bad params for the task type": (
        "schedules:\n  - name: x\n    trigger: {every: 1h}\n    workflow:\n      tasks:\n"
        "        - name: a\n          type: sleep\n          params: {seconds: -1}\n",
        6,
        "params.seconds",
    ),
    "duplicate key": (
        "schedules:\n  - name: x\n    name: y\n    trigger: {every: 1h}\n" + GOOD_TASKS,
        3,
        "duplicate key 'name'",
    ),
    "missing trigger": ("schedules:\n  - name: x\n" + GOOD_TASKS, 2, "trigger: Field required"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_each_broken_file_names_file_line_and_problem(case: str, tmp_path: Path) -> None:
    text, line, words = BROKEN[case]
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    loaded, problems = load_paths([path], builtin)
    assert loaded == []
    rendered = [str(p) for p in problems]
    assert any(p.startswith(f"{path}:{line}: ") and words in p for p in rendered), rendered


def test_every_problem_in_a_directory_is_reported_at_once(tmp_path: Path) -> None:
    for i, case in enumerate(("bad cron", "cycle", "unknown task type", "yaml syntax")):
        (tmp_path / f"{i}.yaml").write_text(BROKEN[case][0])
    (tmp_path / "fine.yaml").write_text("schedules:\n  - name: fine\n    trigger: {every: 1h}\n" + GOOD_TASKS)
    loaded, problems = load_paths([tmp_path], builtin)
    assert [item.schedule.name for item in loaded] == ["fine"]
    assert sorted({p.file.name for p in problems}) == ["0.yaml", "1.yaml", "2.yaml", "3.yaml"]


def test_the_same_name_in_two_files_is_a_problem(tmp_path: Path) -> None:
    text = "schedules:\n  - name: twin\n    trigger: {every: 1h}\n" + GOOD_TASKS
    (tmp_path / "a.yaml").write_text(text)
    (tmp_path / "b.yaml").write_text(text)
    loaded, problems = load_paths([tmp_path], builtin)
    assert len(loaded) == 1
    assert [str(p) for p in problems] == [
        f"{tmp_path / 'b.yaml'}:2: schedule 'twin' is also defined at {tmp_path / 'a.yaml'}:2"
    ]


def test_shipped_schedules_are_valid_against_the_science_registry() -> None:
    from contimg.tasks.registry import registry

    loaded, problems = load_paths([REPO / "schedules"], registry)
    assert problems == []
    by_name = {item.schedule.name: item.schedule for item in loaded}
    stream = by_name["stream-imaging"]
    assert stream.trigger.event == "new_ms"
    assert [t.type for t in stream.workflow.tasks] == [
        "solve-calibration",
        "apply-calibration",
        "create-image",
        "run-photometry",
        "find-sources",
        "update-lightcurves",
    ]
    # No step retypes its task's options: each inherits its queue and timeout from the registry.
    assert [t.queue for t in stream.workflow.tasks] == [
        "calibrate",
        "calibrate",
        "imaging",
        "photometry",
        "photometry",
        "photometry",
    ]
    raw = yaml.safe_load((REPO / "schedules" / "streaming.yaml").read_text())
    steps = raw["schedules"][0]["workflow"]["tasks"]
    assert not any({"queue", "timeout_s", "max_attempts"} & set(step) for step in steps)
    assert by_name["nightly-mosaic"].trigger.cron == "0 13 * * *"
    assert by_name["nightly-mosaic"].trigger.timezone == "UTC"
    assert by_name["queue-cleanup"].workflow.tasks[0].type == "cleanup"
    assert by_name["storage-prune"].workflow.tasks[0].type == "prune-storage"


def validate(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``absurd schedule validate ARGS`` with only ``env`` of the ABSURD_* settings."""
    clean = {k: v for k, v in os.environ.items() if k not in ("ABSURD_DSN", "ABSURD_REGISTRY")}
    return subprocess.run(
        [sys.executable, "-m", "absurd", "schedule", "validate", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**clean, **env},
    )


def test_cli_validate_prints_file_line_problem_and_exits_1(
    tmp_path: Path, write: Callable[[str, str], Path]
) -> None:
    bad = write("bad.yaml", BROKEN["unknown task type"][0])
    result = validate(str(bad.parent), "--registry", "absurd.builtin_tasks:builtin")
    assert result.returncode == 1
    assert f"{bad}:8: task 'b' has unknown type 'teleport'; registered tasks, closest first:" in result.stderr
    assert result.stderr.endswith("error: 1 problem(s)\n")
    good = tmp_path / "good.yaml"
    good.write_text("schedules:\n  - name: fine\n    trigger: {every: 1h}\n" + GOOD_TASKS)
    ok = validate(str(good), ABSURD_REGISTRY="absurd.builtin_tasks:builtin")
    assert ok.returncode == 0, ok.stderr
    assert "1 schedule(s) valid: fine" in ok.stdout


def test_the_shipped_schedules_validate_as_the_readme_gives_it() -> None:
    """`absurd schedule validate schedules/`: with ABSURD_REGISTRY (as deploy/contimg.env sets it) the
    science task types are checked; without it they are not, and it says so instead of calling them
    unknown."""
    checked = validate("schedules/", ABSURD_REGISTRY="contimg.tasks.registry:registry")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("4 schedule(s) valid:") and checked.stderr == ""
    unchecked = validate("schedules/")
    assert unchecked.returncode == 0, unchecked.stderr
    assert "unknown" not in unchecked.stderr
    assert " ".join(unchecked.stderr.split()).startswith(
        "warning: no task registry: task types not checked (no database (--dsn or ABSURD_DSN) to read "
        "the tasks workers serve from)"
    )


def test_validate_checks_task_types_against_the_tasks_workers_serve(
    dsn: str, write: Callable[[str, str], Path]
) -> None:
    bad = write("bad.yaml", BROKEN["unknown task type"][0])
    none_yet = validate(str(bad), ABSURD_DSN=dsn)
    assert none_yet.returncode == 0 and "(no worker has recorded the tasks it serves)" in none_yet.stderr
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO absurd.workers (id, hostname, pid, queues, concurrency, task_names) "
            "VALUES ('w1', 'h', 1, '{default}', 1, '{echo,noop}')"
        )
    served = validate(str(bad), "--dsn", dsn)
    assert served.returncode == 1
    assert f"{bad}:8: task 'b' has unknown type 'teleport'; served tasks, closest first: echo, noop" in (
        served.stderr
    )
