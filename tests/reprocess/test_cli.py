"""`contimg reprocess` on the command line: its errors and exit codes, status, cancel and resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from absurd.cli.toolkit import EXIT_NOT_FOUND, EXIT_USAGE
from contimg.cli import app
from contimg.reprocess.archive import Archive, ArchiveSettings, simulate_archive

pytestmark = pytest.mark.science
runner = CliRunner()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    return simulate_archive(ArchiveSettings(observations=2), tmp_path_factory.mktemp("archive"))


def _submit(dsn: str, archive: Archive, out: Path, *extra: str) -> str:
    result = runner.invoke(
        app,
        [
            *("reprocess", "--input-dir", str(archive.directory), "--output-dir", str(out)),
            *("--catalogue", str(archive.catalogue), "--no-wait", "--dsn", dsn),
            *("--start", f"{archive.group_times[0]:%Y-%m-%dT%H:%M:%S}"),
            *("--end", f"{archive.group_times[-1]:%Y-%m-%dT%H:%M:%S}"),
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def test_usage_errors_name_what_is_wrong(dsn: str, archive: Archive, tmp_path: Path) -> None:
    missing = runner.invoke(app, ["reprocess", "--input-dir", str(archive.directory), "--dsn", dsn])
    assert missing.exit_code == EXIT_USAGE
    assert "give --output-dir, --start, --end" in missing.stderr
    bad_set = runner.invoke(
        app,
        [
            "reprocess",
            "--input-dir",
            "x",
            "--output-dir",
            "y",
            "--start",
            "2026-01-01",
            "--end",
            "2026-01-02",
            "--set",
            "imagesize",
        ],
    )
    assert bad_set.exit_code == EXIT_USAGE and "write STEP.PARAM=VALUE" in bad_set.output
    unknown = runner.invoke(app, ["reprocess", "status", "41", "--dsn", dsn])
    assert unknown.exit_code == EXIT_NOT_FOUND and "no reprocessing run 41" in unknown.stderr
    only = _submit_fails(dsn, archive, tmp_path, "--only", "convert,imagine")
    assert "unknown step(s) imagine" in only


def _submit_fails(dsn: str, archive: Archive, out: Path, *extra: str) -> str:
    result = runner.invoke(
        app,
        [
            *("reprocess", "--input-dir", str(archive.directory), "--output-dir", str(out), "--no-wait"),
            *("--start", f"{archive.group_times[0]:%Y-%m-%dT%H:%M:%S}", "--dsn", dsn),
            *("--end", f"{archive.group_times[-1]:%Y-%m-%dT%H:%M:%S}", *extra),
        ],
    )
    assert result.exit_code == EXIT_USAGE, result.output
    return result.stderr


def test_status_cancel_and_resume(dsn: str, archive: Archive, tmp_path: Path) -> None:
    out = _submit(dsn, archive, tmp_path, "--only", "convert,image")
    assert "run 1 started: 2 observations found, 2 submitted" in out
    status = runner.invoke(app, ["reprocess", "status", "1", "--json", "--dsn", dsn])
    data = json.loads(status.stdout)
    assert (data["observations"], data["in_flight"], data["done"], data["mosaics"]) == (2, 2, 0, 0)
    cancel = runner.invoke(app, ["reprocess", "cancel", "1", "--dsn", dsn])
    assert cancel.exit_code == 0 and "4 task(s) cancelled" in cancel.stdout
    cancelled = json.loads(runner.invoke(app, ["reprocess", "status", "1", "--json", "--dsn", dsn]).stdout)
    assert (cancelled["cancelled"], cancelled["failed"], cancelled["in_flight"]) == (True, 2, 0)
    # Cancelled steps stay recorded: a resume submits nothing again (use --force to redo them).
    resumed = runner.invoke(app, ["reprocess", "resume", "1", "--no-wait", "--dsn", dsn])
    assert resumed.exit_code == 0 and "0 submitted, 2 already submitted" in resumed.stdout
    listing = runner.invoke(app, ["reprocess", "status", "--json", "--dsn", dsn])
    assert [r["id"] for r in json.loads(listing.stdout)] == [1]
