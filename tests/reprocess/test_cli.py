"""`contimg reprocess` on the command line: its errors and exit codes, status, cancel and resume, and
steps run after the earlier steps they need failed or were pruned."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from absurd.cli.toolkit import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_USAGE
from absurd.maintenance.pruner import delete_finished
from absurd.maintenance.retention import DEFAULT_RETENTION_S
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


def _units(dsn: str, run_id: int) -> list[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT unit FROM products.reprocess_units WHERE run_id = %s AND kind = 'observation' "
            "ORDER BY unit",
            (run_id,),
        ).fetchall()
    return [r[0] for r in rows]


def _record_products(dsn: str, unit: str, out: Path, image: bool) -> Path:
    """The MS of ``unit`` (version 1) in the MS index and, with ``image``, its image, as the steps record
    them."""
    ms = out / "ms" / f"{unit}.ms"
    path = out / "images" / f"{unit}-image.fits"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO products.ms_index (path, group_id, start_mjd, end_mjd, mid_mjd, mid_time, ra_deg,
                   dec_deg, n_antennas, n_channels, status)
               VALUES (%s, %s, 60000, 60000, 60000, now(), 10, 40, 24, 16, 'complete')""",
            (str(ms), unit),
        )
        if image:
            conn.execute(
                """INSERT INTO products.images (path, ms_path, imager, residual_path, psf_path, preview_path,
                       noise_jy, peak_jy, bmaj_arcsec, bmin_arcsec, bpa_deg, center_ra_deg, center_dec_deg,
                       freq_hz, mid_mjd, mid_time, params, task_id)
                   VALUES (%s, %s, 'wsclean', 'r.fits', 'p.fits', 'i.png', 1e-3, 1, 30, 20, 0, 10, 40, 1.4e9,
                       60000, now(), '{}', 41)""",
                (str(path), str(ms)),
            )
    return path


def test_later_steps_need_earlier_ones_completed_or_their_products_recorded(
    dsn: str, archive: Archive, tmp_path: Path
) -> None:
    _submit(dsn, archive, tmp_path, "--only", "convert,solve,calibrate,image")
    assert runner.invoke(app, ["reprocess", "cancel", "1", "--dsn", dsn]).exit_code == 0
    first, second = _units(dsn, 1)
    photometry = [
        *("reprocess", "--input-dir", str(archive.directory), "--output-dir", str(tmp_path)),
        *("--catalogue", str(archive.catalogue), "--no-wait", "--dsn", dsn, "--only", "photometry"),
        *("--start", f"{archive.group_times[0]:%Y-%m-%dT%H:%M:%S}"),
        *("--end", f"{archive.group_times[-1]:%Y-%m-%dT%H:%M:%S}"),
    ]
    # Their images were cancelled: there is nothing to measure, and the command says so.
    cancelled = runner.invoke(app, photometry)
    assert cancelled.exit_code == EXIT_FAILED, cancelled.output
    said = " ".join(cancelled.stdout.split())  # as one line: the console wraps at its width
    assert "0 submitted" in said and "2 missing earlier steps" in said
    assert f"{first}: convert cancelled; image cancelled" in said
    assert "2 observation(s) not submitted" in cancelled.stderr

    # A week on, the pruner has deleted those tasks. One observation's image is recorded in the product
    # store (as when its task completed); the other's is not.
    image = _record_products(dsn, first, tmp_path, image=True)
    _record_products(dsn, second, tmp_path, image=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE absurd.tasks SET finished_at = now() - interval '8 days'")
        assert delete_finished(conn, DEFAULT_RETENTION_S, 1000) >= 8
    pruned = runner.invoke(app, photometry)
    assert pruned.exit_code == EXIT_FAILED, pruned.output
    said = " ".join(pruned.stdout.split())
    assert "1 submitted" in said and "1 missing earlier steps" in said
    assert f"{second}: image pruned from the queue, and no product of it is recorded" in said
    with psycopg.connect(dsn) as conn:
        params = conn.execute(
            "SELECT params FROM absurd.tasks WHERE name = 'run-photometry' AND state = 'pending'"
        ).fetchall()
    assert [p[0]["image_path"] for p in params] == [str(image)]
