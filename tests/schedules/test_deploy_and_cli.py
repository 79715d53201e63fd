"""The shipped units pass systemd-analyze (or a static check), and the schedule and health commands."""

from __future__ import annotations

import configparser
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.processes import REPO

DEPLOY = REPO / "deploy"
UNITS = [
    "absurd-worker@.service",
    "absurd-scheduler.service",
    "contimg-stream.service",
    "contimg-storage-guard.service",
]


def read_unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


@pytest.mark.parametrize("unit", UNITS)
def test_unit_declares_what_the_deployment_relies_on(unit: str) -> None:
    service = read_unit(DEPLOY / unit)["Service"]
    assert service["User"] == "contimg"
    assert service["Restart"] == "on-failure"
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["KillMode"] == "mixed"
    assert service["EnvironmentFile"].startswith("/etc/contimg/")
    assert int(service["TimeoutStopSec"]) > 0
    # Every daemon speaks sd_notify (absurd/daemon.py), the streaming converter included.
    assert service["Type"] == "notify"
    assert int(service["WatchdogSec"]) >= 10
    if unit.startswith("absurd-worker"):
        # Stopping waits for the worker's shutdown grace, with room to release what is left.
        env = dict(
            line.split("=", 1) for line in (DEPLOY / "contimg.env").read_text().splitlines() if "=" in line
        )
        assert int(service["TimeoutStopSec"]) > float(env["WORKER_SHUTDOWN_GRACE_S"])
        assert "/etc/contimg/worker-%i.env" in (DEPLOY / unit).read_text()
        assert "/data/dsa110" in service["ReadWritePaths"]
    for name in ("convert", "calibrate", "imaging", "default"):
        assert "WORKER_QUEUES=" in (DEPLOY / "profiles" / f"worker-{name}.env").read_text()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_passes(tmp_path: Path) -> None:
    # verify checks that ExecStart binaries exist: point the units at this checkout's venv.
    bin_dir = str(Path(sys.executable).parent)
    for unit in UNITS:
        text = (DEPLOY / unit).read_text().replace("/opt/contimg/.venv/bin", bin_dir)
        name = "absurd-worker@imaging.service" if unit.endswith("@.service") else unit
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *sorted(str(p) for p in tmp_path.glob("*.service"))],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "Unknown" not in result.stderr and "Invalid" not in result.stderr, result.stderr


def absurd_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "absurd", *args], cwd=REPO, capture_output=True, text=True)


HOURLY = """
schedules:
  - name: hourly
    description: {description}
    trigger: {{cron: "0 * * * *", timezone: America/Los_Angeles}}
    workflow:
      tasks: [{{name: a, type: echo, params: {{at: "${{params.fire_time}}"}}}}]
"""


def test_sync_shows_a_diff_and_dry_run_changes_nothing(dsn: str, write: Callable[[str, str], Path]) -> None:
    path = write("h.yaml", HOURLY.format(description="first"))
    added = absurd_cli("schedule", "sync", str(path.parent), "--dsn", dsn)
    assert added.returncode == 0, added.stderr
    assert "add hourly" in added.stdout and "+description: first" in added.stdout
    write("h.yaml", HOURLY.format(description="second"))
    dry = absurd_cli("schedule", "sync", str(path.parent), "--dsn", dsn, "--dry-run", "--json")
    assert json.loads(dry.stdout)[0]["action"] == "update"
    assert "-description: first" in json.loads(dry.stdout)[0]["diff"]
    shown = json.loads(absurd_cli("schedule", "show", "hourly", "--dsn", dsn, "--json").stdout)
    assert shown["description"] == "first"  # the dry run changed nothing
    assert absurd_cli("schedule", "sync", str(path.parent), "--dsn", dsn).returncode == 0
    again = absurd_cli("schedule", "sync", str(path.parent), "--dsn", dsn)
    assert "no changes" in again.stdout
    path.unlink()
    write("other.yaml", HOURLY.replace("hourly", "other").format(description="x"))
    removed = absurd_cli("schedule", "sync", str(path.parent), "--dsn", dsn, "--json")
    assert sorted((c["action"], c["name"]) for c in json.loads(removed.stdout)) == [
        ("add", "other"),
        ("remove", "hourly"),
    ]
    broken = write("broken.yaml", "schedules: [oops\n")
    refused = absurd_cli("schedule", "sync", str(broken.parent), "--dsn", dsn)
    assert refused.returncode == 1 and f"{broken}:2:" in refused.stderr


def test_list_show_next_enable_disable_trigger(dsn: str, write: Callable[[str, str], Path]) -> None:
    path = write("h.yaml", HOURLY.format(description="d"))
    assert absurd_cli("schedule", "sync", str(path), "--dsn", dsn).returncode == 0
    listed = json.loads(absurd_cli("schedule", "list", "--dsn", dsn, "--json").stdout)
    assert [r["name"] for r in listed] == ["hourly"] and listed[0]["enabled"]
    upcoming = json.loads(absurd_cli("schedule", "next", "hourly", "-n", "3", "--dsn", dsn, "--json").stdout)
    assert len(upcoming) == 3 and all(t.endswith(":00:00+00:00") for t in upcoming)
    assert absurd_cli("schedule", "disable", "hourly", "--dsn", dsn).returncode == 0
    assert not json.loads(absurd_cli("schedule", "show", "hourly", "--dsn", dsn, "--json").stdout)["enabled"]
    assert absurd_cli("schedule", "enable", "hourly", "--dsn", dsn).returncode == 0
    fired = absurd_cli("schedule", "trigger", "hourly", "--dsn", dsn)
    assert fired.returncode == 0, fired.stderr
    shown = json.loads(absurd_cli("schedule", "show", "hourly", "--dsn", dsn, "--json").stdout)
    assert shown["enabled"] and [f["kind"] for f in shown["recent_fires"]] == ["manual"]
    assert shown["recent_fires"][0]["workflow_id"] is not None
    missing = absurd_cli("schedule", "show", "nope", "--dsn", dsn)
    assert missing.returncode == 3 and "no schedule named 'nope'" in missing.stderr


def test_health_reports_workers_and_schedulers(dsn: str) -> None:
    unhealthy = absurd_cli("health", "--dsn", dsn, "--json")
    assert unhealthy.returncode == 1
    report = json.loads(unhealthy.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["database"]["ok"] and checks["migrations"]["ok"]
    assert not checks["workers"]["ok"] and not checks["schedulers"]["ok"]
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO absurd.workers (id, hostname, pid, queues, concurrency, heartbeat_at) VALUES "
            "('alive', 'h', 1, '{default}', 1, now()), "
            "('dead', 'h', 2, '{default}', 1, now() - interval '1 hour')"
        )
        conn.execute("INSERT INTO absurd.schedulers (id, hostname, pid) VALUES ('sched', 'h', 3)")
    healthy = absurd_cli("health", "--dsn", dsn)
    assert healthy.returncode == 0, healthy.stdout
    assert "healthy" in healthy.stdout and "dead" in healthy.stdout and "stale" in healthy.stdout
    down = absurd_cli("health", "--dsn", "postgresql://nobody@127.0.0.1:1/none", "--json")
    assert down.returncode == 1 and not json.loads(down.stdout)["checks"][0]["ok"]


STAGED = """
schedules:
  - name: staged
    trigger: {every: 1h}
    workflow:
      tasks:
        - {name: a, type: stage}
        - {name: b, type: stage, queue: special, depends_on: [a]}
"""


def test_sync_with_a_registry_stores_each_steps_inherited_options(
    dsn: str, write: Callable[[str, str], Path]
) -> None:
    path = write("staged.yaml", STAGED)
    synced = absurd_cli(
        "schedule", "sync", str(path), "--dsn", dsn, "-r", "tests.queue.test_cli_workflows:OWN_OPTIONS"
    )
    assert synced.returncode == 0 and synced.stderr == "", synced.stderr
    tasks = json.loads(absurd_cli("schedule", "show", "staged", "--dsn", dsn, "--json").stdout)["template"][
        "tasks"
    ]
    assert [(t["queue"], t["timeout_s"], t["max_attempts"], t["retry"]["kind"]) for t in tasks] == [
        ("imaging", 600.0, 5, "fixed"),
        ("special", 600.0, 5, "fixed"),
    ]


def test_sync_without_a_registry_says_where_step_options_come_from(
    dsn: str, write: Callable[[str, str], Path]
) -> None:
    path = write("staged.yaml", STAGED)
    synced = absurd_cli("schedule", "sync", str(path), "--dsn", dsn)
    assert synced.returncode == 0, synced.stderr
    assert (
        "step options left out are the engine's defaults (queue default, 3 attempts, no timeout)"
        in " ".join(synced.stderr.split())
    )
