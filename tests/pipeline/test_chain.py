"""The science chain through the queue: convert, solve, apply, image, photometry, mosaic.

The apply task is spawned before any caltable exists: it must suspend (state 'sleeping', holding no
worker) and complete once solve-calibration records its caltables and emits ``caltable-ready:1``.
Every product is then checked in the products database against the simulator's truth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from contimg.cli import app
from contimg.store.products import mjd_to_datetime
from contimg.tasks.params import ApplyOutcome, ImageOutcome, MosaicOutcome, PhotometryOutcome, SolveResult
from tests.pipeline.conftest import Converted, Pipeline
from tests.science.conftest import SimulatedPair
from tests.support.processes import wait_until

# 1024 pixels of 5″ cover the default target field (sources out to 0.55° from the centre).
IMAGING = {"imsize": 1024, "cell_arcsec": 5.0}
# Flux agreement: 3 σ of the measurement plus a 3 % floor for calibration and CLEAN systematics,
# the size of the peak ratios found for 20–150 mJy sources on this data.
N_SIGMA = 3.0
SYSTEMATIC = 0.03
MIN_SNR = 20.0


@dataclass(frozen=True)
class Chain:
    """Task ids and results of one pass through the chain."""

    apply_task: int
    solve: SolveResult
    apply: ApplyOutcome
    image: ImageOutcome
    photometry: PhotometryOutcome
    mosaic: MosaicOutcome
    params: dict[str, dict[str, object]]


@pytest.fixture(scope="module")
def chain(pipeline: Pipeline, converted: Converted, simulated_pair: SimulatedPair) -> Chain:
    """Run the chain once for the module, the apply task spawned before the solve."""
    work = pipeline.work / "chain"
    logs = str(work / "logs")
    target_ms, cal_ms = str(converted.target.ms_path), str(converted.calibrator.ms_path)
    params: dict[str, dict[str, object]] = {
        "apply": {"ms_path": target_ms, "log_dir": logs},
        "solve": {"ms_path": cal_ms, "caltable_dir": str(work / "caltables"), "log_dir": logs},
        "image": {
            "ms_path": target_ms,
            "output_dir": str(work / "images"),
            "imaging": IMAGING,
            "log_dir": logs,
        },
    }
    apply_task = pipeline.client.spawn("apply-calibration", params["apply"]).task_id
    state = wait_until(
        lambda: (s := pipeline.state(apply_task)) != "pending" and s != "running" and s,
        timeout=120,
        what="apply task to suspend",
    )
    assert state == "sleeping", pipeline.client.get_task(apply_task)["last_error"]
    solve = SolveResult.model_validate(pipeline.run("solve-calibration", params["solve"]))
    apply_row = pipeline.finish(apply_task)
    assert apply_row["state"] == "completed", apply_row["last_error"]
    image = ImageOutcome.model_validate(pipeline.run("create-image", params["image"]))
    params["photometry"] = {
        "image_path": str(image.image.image),
        "catalogue_path": str(simulated_pair.target.sources_csv),
    }
    photometry = PhotometryOutcome.model_validate(pipeline.run("run-photometry", params["photometry"]))
    mid = mjd_to_datetime(image.image.mid_mjd)
    params["mosaic"] = {
        "name": "chain",
        "start": (mid - timedelta(minutes=10)).isoformat(),
        "end": (mid + timedelta(minutes=10)).isoformat(),
        "output_dir": str(work / "mosaics"),
    }
    mosaic = MosaicOutcome.model_validate(pipeline.run("create-mosaic", params["mosaic"]))
    return Chain(
        apply_task, solve, ApplyOutcome.model_validate(apply_row["result"]), image, photometry, mosaic, params
    )


def test_each_ms_is_recorded_once(
    pipeline: Pipeline, converted: Converted, simulated_pair: SimulatedPair
) -> None:
    for record, truth in (
        (converted.calibrator, simulated_pair.calibrator),
        (converted.target, simulated_pair.target),
    ):
        rows = pipeline.rows(
            "SELECT group_id, status, mid_mjd, start_mjd, end_mjd, n_antennas, mid_time "
            "FROM products.ms_index WHERE path = %s",
            str(record.ms_path),
        )
        assert len(rows) == 1
        group_id, status, mid_mjd, start_mjd, end_mjd, n_antennas, mid_time = rows[0]
        assert (group_id, status, n_antennas) == (record.group_id, "complete", 24)
        assert mid_mjd == pytest.approx(truth.mid_time_mjd, abs=1e-5)
        assert start_mjd < mid_mjd < end_mjd
        assert abs((mid_time - mjd_to_datetime(mid_mjd)).total_seconds()) < 1e-3
        ((phasing, apparent_dec, flagged, flags),) = pipeline.rows(
            "SELECT phasing, pointing_dec_apparent_deg, subbands_flagged, flag_summary "
            "FROM products.ms_index WHERE path = %s",
            str(record.ms_path),
        )
        assert phasing == "fringestopped" and flagged == {}
        assert apparent_dec == pytest.approx(record.pointing_dec_apparent_deg)
        assert abs(apparent_dec - truth.pointing_dec_deg) > 0.01, "the header's dec is of date, not ICRS"
        assert set(flags["by_subband"]) == {f"sb{i:02d}" for i in range(16)}
        assert len(flags["by_antenna"]) == 24 and flags["rfi_flagger"].startswith("AOFlagger")


def test_caltables_are_recorded_with_their_validity_window(pipeline: Pipeline, chain: Chain) -> None:
    rows = pipeline.rows(
        "SELECT id, calibrator, mid_mjd, valid_start_mjd, valid_end_mjd, valid_from, valid_until, "
        "qa_passed, qa, apply_tables FROM products.caltables WHERE ms_path = %s",
        str(chain.solve.calibration.ms_path),
    )
    assert len(rows) == 1
    cal_id, calibrator, mid, start, end, valid_from, valid_until, qa_passed, qa, apply_tables = rows[0]
    assert calibrator == "3C286"
    assert qa_passed and qa["passed"] and qa["median_snr"] >= qa["thresholds"]["min_median_snr"]
    assert len(qa["data_flagged_by_antenna"]) == 24 and len(qa["data_flagged_by_subband"]) == 16
    assert max(qa["data_flagged_by_antenna"].values()) < 0.05
    ((pointing_dec,),) = pipeline.rows(
        "SELECT pointing_dec_deg FROM products.caltables WHERE id = %s", cal_id
    )
    assert pointing_dec == pytest.approx(30.509156, abs=0.01)
    # Solved with the default 12 h validity on either side of the transit.
    assert start == pytest.approx(mid - 0.5) and end == pytest.approx(mid + 0.5)
    assert valid_until - valid_from == timedelta(days=1)
    assert apply_tables and all((Path(t) / "table.dat").exists() for t in apply_tables)
    assert chain.apply.caltable_id == cal_id


def test_apply_spawned_before_the_solve_waited_and_then_calibrated(pipeline: Pipeline, chain: Chain) -> None:
    task = pipeline.client.get_task(chain.apply_task)
    # One run suspended on the event, one after the wake-up.
    assert task["state"] == "completed" and task["attempts"] == 2
    assert pipeline.rows("SELECT name FROM absurd.events WHERE name = 'caltable-ready:1'")
    (row,) = pipeline.rows(
        "SELECT calibrated_with, flagged_fraction_after FROM products.ms_index WHERE path = %s",
        str(chain.apply.applied.ms_path),
    )
    assert row[0] == chain.apply.caltable_id
    assert row[1] < 0.01


def test_image_is_recorded(pipeline: Pipeline, chain: Chain, converted: Converted) -> None:
    result = chain.image.image
    rows = pipeline.rows(
        "SELECT i.imager, i.noise_jy, i.bmaj_arcsec, i.bmin_arcsec, i.center_dec_deg, i.preview_path, "
        "i.mid_mjd, m.path FROM products.images i JOIN products.ms_index m ON m.id = i.ms_id "
        "WHERE i.path = %s",
        str(result.image),
    )
    assert len(rows) == 1
    imager, noise, bmaj, bmin, dec, preview, mid, ms_path = rows[0]
    assert imager == "wsclean"
    assert 0 < noise < 0.01
    assert 5.0 < bmin <= bmaj < 120.0
    assert dec == pytest.approx(converted.target.dec_deg, abs=1e-3)
    assert mid == pytest.approx(converted.target.mid_mjd, abs=1e-5)
    assert Path(preview).is_file() and ms_path == str(converted.target.ms_path)


def test_photometry_matches_the_truth(
    pipeline: Pipeline, chain: Chain, simulated_pair: SimulatedPair
) -> None:
    image_path = str(chain.image.image.image)
    rows = pipeline.rows(
        "SELECT p.source_name, p.flux_jy, p.flux_err_jy, p.image_id FROM products.photometry p "
        "JOIN products.sources s ON s.name = p.source_name WHERE p.image_path = %s",
        image_path,
    )
    truth = {s.name: s for s in simulated_pair.target.sources}
    assert {r[0] for r in rows} == set(truth)
    (image_id,) = pipeline.rows("SELECT id FROM products.images WHERE path = %s", image_path)[0]
    checked = 0
    for name, flux, err, row_image_id in rows:
        assert row_image_id == image_id
        expected = truth[name].apparent_flux_jy
        if expected / chain.image.image.noise_jy < MIN_SNR:
            continue
        assert abs(flux - expected) <= N_SIGMA * err + SYSTEMATIC * expected, (name, flux, err, expected)
        checked += 1
    assert checked >= 3


def test_mosaic_is_recorded_from_the_images_in_range(pipeline: Pipeline, chain: Chain) -> None:
    rows = pipeline.rows(
        "SELECT m.path, m.n_inputs, m.image_ids, m.method FROM products.mosaics m WHERE m.name = 'chain'"
    )
    assert len(rows) == 1
    path, n_inputs, image_ids, method = rows[0]
    (image_id,) = pipeline.rows(
        "SELECT id FROM products.images WHERE path = %s", str(chain.image.image.image)
    )[0]
    assert (n_inputs, image_ids, method) == (1, [image_id], "weighted")
    assert Path(path).is_file() and Path(path) == chain.mosaic.mosaic.output_path


def test_cli_lists_products_and_plans_a_mosaic(pipeline: Pipeline, chain: Chain) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["products", "list", "images", "--json", "--dsn", pipeline.dsn])
    assert listed.exit_code == 0, listed.output
    assert [row["path"] for row in json.loads(listed.stdout)] == [str(chain.image.image.image)]
    table = runner.invoke(app, ["products", "list", "caltables", "--dsn", pipeline.dsn])
    assert table.exit_code == 0 and "3C286" in table.stdout

    mid = mjd_to_datetime(chain.image.image.mid_mjd)
    window = [
        "--start",
        f"{mid - timedelta(minutes=5):%Y-%m-%dT%H:%M:%S}",
        "--end",
        f"{mid + timedelta(minutes=5):%Y-%m-%dT%H:%M:%S}",
    ]
    planned = runner.invoke(
        app,
        [
            "mosaic",
            "plan",
            "--name",
            "cli-plan",
            *window,
            "-o",
            str(pipeline.work),
            "--spawn",
            "--json",
            "--dsn",
            pipeline.dsn,
        ],
    )
    assert planned.exit_code == 0, planned.output
    plan = json.loads(planned.stdout)
    assert plan["plan"]["image_paths"] == [str(chain.image.image.image)]
    assert pipeline.rows("SELECT image_ids FROM products.mosaic_plans WHERE name = 'cli-plan'") == [
        (plan["image_ids"],)
    ]
    # --spawn queued create-mosaic for the stored plan; the worker builds and records it.
    assert pipeline.finish(plan["task_id"])["state"] == "completed"
    assert pipeline.rows("SELECT image_ids FROM products.mosaics WHERE name = 'cli-plan'") == [
        (plan["image_ids"],)
    ]

    empty = ["--start", "2001-01-01T00:00:00", "--end", "2001-01-02T00:00:00"]
    nothing = runner.invoke(app, ["mosaic", "plan", "--name", "none", *empty, "--dsn", pipeline.dsn])
    assert nothing.exit_code == 1 and "no images recorded between 2001-01-01T00:00:00" in nothing.output
    unknown = runner.invoke(app, ["products", "list", "tiles", "--dsn", pipeline.dsn])
    assert unknown.exit_code == 2 and "unknown product kind 'tiles'" in unknown.output


PRODUCT_TABLES = ("ms_index", "caltables", "images", "mosaics", "photometry", "sources")


def _snapshot(pipeline: Pipeline) -> dict[str, list[tuple[object, ...]]]:
    # Table names come from the constant above, never from input.
    return {
        table: pipeline.rows(f"SELECT id FROM products.{table} ORDER BY id")
        if table != "sources"
        else pipeline.rows("SELECT name FROM products.sources ORDER BY name")
        for table in PRODUCT_TABLES
    }


def test_rerunning_tasks_replaces_rows_instead_of_adding(
    pipeline: Pipeline, chain: Chain, converted: Converted, simulated_pair: SimulatedPair
) -> None:
    before = _snapshot(pipeline)
    pipeline.run(
        "convert-uvh5",
        {
            "input_files": [str(p) for p in simulated_pair.calibrator.subband_paths],
            "output_dir": str(converted.ms_dir),
        },
    )
    pipeline.run("solve-calibration", chain.params["solve"])
    # A solve now exists, so this apply runs straight through on its first attempt.
    apply_id = pipeline.client.spawn("apply-calibration", chain.params["apply"]).task_id
    assert pipeline.finish(apply_id)["state"] == "completed"
    assert pipeline.client.get_task(apply_id)["attempts"] == 1
    for name in ("image", "photometry", "mosaic"):
        pipeline.run(
            {"image": "create-image", "photometry": "run-photometry", "mosaic": "create-mosaic"}[name],
            chain.params[name],
        )
    assert _snapshot(pipeline) == before
    (generation,) = pipeline.rows("SELECT generation FROM products.calibration_generation")[0]
    assert generation == 2
