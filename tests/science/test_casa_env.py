"""CASA's log follows the directory each call names, so an error that points at a log finds it there."""

from __future__ import annotations

from pathlib import Path

import pytest

from science import casa_env


@pytest.mark.science
def test_the_casa_log_moves_to_each_named_directory(tmp_path: Path) -> None:
    first = casa_env.configure(tmp_path / "first")
    from casatasks import casalog

    casalog.post("one for the first log")
    second = casa_env.configure(tmp_path / "second")
    casalog.post("one for the second log")
    assert second == tmp_path / "second" / "casa.log"
    assert "one for the second log" in second.read_text()
    if first.exists():
        assert "one for the second log" not in first.read_text()
