"""``python -m bench.ceiling`` at a tiny size: both schemas drain every task, and only the split prototype's
task updates are HOT."""

from __future__ import annotations

import re

import pytest

from bench import ceiling

LINE = re.compile(
    r"(current|split), 2 connection\(s\): [\d,]+ tasks/s; CPU per task: server [\d.]+ us, "
    r"this process [\d.]+ us; HOT task updates (\d+) %"
)


def test_both_schemas_drain_and_only_the_split_one_updates_tasks_in_place(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Every claim and completion changes absurd.tasks.state, which partial indexes name: never HOT. The
    # prototype's tasks have no such index and room on each page (fillfactor 50) for the new versions.
    ceiling.main(["--n", "1000", "--connections", "2", "--rounds", "1"])
    found = {m.group(1): int(m.group(2)) for m in LINE.finditer(capsys.readouterr().out)}
    assert set(found) == {"current", "split"}
    assert found["current"] == 0
    assert found["split"] >= 50


def test_an_unknown_schema_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        ceiling.main(["--schemas", "current,sharded"])
    assert "unknown schema sharded; choose from current, split" in capsys.readouterr().err
