"""The alert rules under promtool: they load, every rule fires on its series and stays quiet on the others,
and a rule made wrong on purpose fails its unit test. The Alertmanager example is checked by amtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.alerting.prometheus import ALERTMANAGER, PROMETHEUS_DIR, RULE_TESTS, RULES, rule_files, rules


def tool(name: str) -> str:
    """The path of a Prometheus tool; `make system-deps` installs it (prometheus, prometheus-alertmanager)."""
    path = shutil.which(name)
    assert path, f"{name} is not installed: run `make system-deps` (it installs the Debian package)"
    return path


def run(*args: str, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_promtool_loads_every_rule() -> None:
    done = run(tool("promtool"), "check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules())} rules found" in done.stdout


def test_promtool_unit_tests_pass() -> None:
    assert RULE_TESTS, "no promtool tests in deploy/prometheus/tests/"
    done = run(tool("promtool"), "test", "rules", *(str(p) for p in RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SUCCESS") == len(RULE_TESTS)


def test_every_rule_has_a_summary_a_runbook_and_tests_that_fire_and_stay_quiet() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        assert rule_files(path) == ["../contimg-rules.yml"], f"{path}: tests must load the shipped rules"
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case["alert_rule_test"]:
                (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = [str(rule["alert"]) for rule in rules()]
    assert len(names) == len(set(names)), "an alert name is used twice"
    for rule in rules():
        name = str(rule["alert"])
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        assert annotations.get("summary"), f"{name}: no summary"
        assert str(annotations.get("runbook", "")).startswith("Check"), (
            f"{name}: the runbook must say what to check"
        )
        assert name in fired, f"{name}: no promtool test where it fires"
        assert name in quiet, f"{name}: no promtool test where it stays quiet"


@pytest.mark.parametrize(
    ("original", "broken"),
    [
        ('{kind="worker"}) > 120', '{kind="worker"}) > 1200'),  # a dead worker would go unnoticed
        ("< 0.10", "< 0.01"),  # a filling disk would warn too late
        ('{band="foreground"}) > 900', ") > 900"),  # every reprocessing would raise a latency alert
    ],
)
def test_a_wrong_rule_fails_its_unit_tests(tmp_path: Path, original: str, broken: str) -> None:
    text = RULES.read_text()
    assert original in text
    (tmp_path / RULES.name).write_text(text.replace(original, broken))
    shutil.copytree(PROMETHEUS_DIR / "tests", tmp_path / "tests")
    done = run(tool("promtool"), "test", "rules", *(f"tests/{p.name}" for p in RULE_TESTS), cwd=tmp_path)
    assert done.returncode != 0
    assert "FAILED" in done.stdout + done.stderr


def test_alertmanager_example_is_valid_and_routes_pages_to_on_call() -> None:
    amtool = tool("amtool")
    done = run(amtool, "check-config", str(ALERTMANAGER))
    assert done.returncode == 0, done.stdout + done.stderr
    severities = {str(rule["labels"]["severity"]) for rule in rules()}  # type: ignore[index]
    assert severities == {"page", "warning"}
    for labels, receiver in (
        (["severity=page", "alertname=AbsurdBreakerOpen"], "on-call"),
        (["severity=page", "alertname=DiskSpaceCritical"], "on-call"),
        (["severity=warning", "alertname=ContimgNoValidCalibration"], "operators"),
        (["severity=warning", "alertname=DiskSpaceLow"], "operators"),
    ):
        routed = run(amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER}", *labels)
        assert routed.returncode == 0, routed.stdout + routed.stderr
        assert routed.stdout.strip() == receiver, (labels, routed.stdout)
