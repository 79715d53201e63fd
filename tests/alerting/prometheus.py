"""What the alerting tests share: the shipped files, and the metric names an expression refers to."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.support.processes import REPO

PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "contimg-rules.yml"
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
ALERTMANAGER = PROMETHEUS_DIR / "alertmanager.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "contimg-dashboard.json"

# An identifier not followed by "(" (a function or an aggregation) nor inside a matcher.
_IDENT = re.compile(r"(?<![\w{\"'=~!])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")


def rules() -> list[dict[str, object]]:
    """Every alerting rule in the shipped rules file."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects (not its functions, label names, label values or durations)."""
    text = re.sub(r'"[^"]*"', '""', expr)  # label values
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries' steps
    text = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text
    )  # grouping labels
    text = re.sub(r"\boffset\s+\w+", "", text)
    names = set(_IDENT.findall(text))
    return {n for n in names if n not in {"and", "or", "unless", "bool"} and not re.fullmatch(r"\d+\w*", n)}


def rule_files(path: Path) -> list[str]:
    """The rule files a promtool test file loads."""
    return list(yaml.safe_load(path.read_text())["rule_files"])
