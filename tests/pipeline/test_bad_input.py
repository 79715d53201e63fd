"""Bad input ends in the dead-letter queue: a failed task after one attempt, with an error that names
the problem and the file, no product row, and no half-written output."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from typer.testing import CliRunner

from contimg.cli import app
from science.simulate import ObservationConfig, simulate_observation
from tests.pipeline.conftest import Converted, Pipeline
from tests.science.conftest import SimulatedPair


def dead_letter(pipeline: Pipeline, name: str, params: dict[str, Any]) -> str:
    """Spawn a task that must fail permanently; check its history and return its error message."""
    task_id = pipeline.client.spawn(name, params).task_id
    task = pipeline.finish(task_id)
    assert task["state"] == "failed"
    assert task["attempts"] == 1
    runs = pipeline.client.runs(task_id)
    assert len(runs) == 1
    return str(task["last_error"]["message"])


def assert_nothing_written(directory: Path) -> None:
    """The output directory is absent or empty: no MS, no scratch left behind."""
    assert not directory.exists() or not any(directory.iterdir()), sorted(directory.iterdir())


@pytest.fixture
def group_copy(simulated_pair: SimulatedPair, tmp_path: Path) -> list[Path]:
    """A private copy of the target's 16 subband files, free to damage."""
    copy = tmp_path / "in"
    copy.mkdir()
    return [Path(shutil.copy(p, copy / p.name)) for p in simulated_pair.target.subband_paths]


def _ms_rows(pipeline: Pipeline, out: Path) -> list[tuple[Any, ...]]:
    return pipeline.rows("SELECT path FROM products.ms_index WHERE path LIKE %s", f"{out}/%")


def test_truncated_file(pipeline: Pipeline, group_copy: list[Path], tmp_path: Path) -> None:
    victim = group_copy[7]
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    out = tmp_path / "out"
    message = dead_letter(
        pipeline, "convert-uvh5", {"input_files": [str(p) for p in group_copy], "output_dir": str(out)}
    )
    assert str(victim) in message and "cannot read as UVH5" in message
    assert_nothing_written(out)
    assert not _ms_rows(pipeline, out)


def test_missing_subband(pipeline: Pipeline, group_copy: list[Path], tmp_path: Path) -> None:
    group_copy.pop(5).unlink()
    out = tmp_path / "out"
    message = dead_letter(
        pipeline,
        "convert-uvh5",
        {"input_files": [str(p) for p in group_copy], "output_dir": str(out), "policy": "skip"},
    )
    # A group is named after its earliest file.
    group_id = min(p.name.split("_sb")[0] for p in group_copy)
    assert f"group {group_id}: subbands sb05 are missing" in message
    assert f"(no file *_sb05.hdf5 of this observation exists in {group_copy[0].parent})" in message
    assert_nothing_written(out)
    assert not _ms_rows(pipeline, out)


def test_missing_subband_through_the_cli(group_copy: list[Path], tmp_path: Path) -> None:
    """`contimg convert single --direct` says the same in one line of its error style, and exits 1."""
    group_copy.pop(5).unlink()
    out = tmp_path / "out"
    args = [
        "convert",
        "single",
        *map(str, group_copy),
        "--output-dir",
        str(out),
        "--policy",
        "skip",
        "--direct",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: group ")
    assert (
        f"sb05 are missing (no file *_sb05.hdf5 of this observation exists in {group_copy[0].parent})"
        in lines[0]
    )
    assert_nothing_written(out)


def test_different_channel_count(
    pipeline: Pipeline, group_copy: list[Path], simulated_pair: SimulatedPair, tmp_path: Path
) -> None:
    odd = simulate_observation(
        ObservationConfig(
            start_time=simulated_pair.target.start_time,
            dec_deg=simulated_pair.target.dec_deg,
            n_antennas=6,
            n_channels=4,
            n_integrations=2,
        ),
        tmp_path / "odd",
    )
    victim = group_copy[3]
    shutil.copy(odd.subband_paths[3], victim)
    out = tmp_path / "out"
    message = dead_letter(
        pipeline, "convert-uvh5", {"input_files": [str(p) for p in group_copy], "output_dir": str(out)}
    )
    assert f"{victim}: has 4 channels but the other subbands of its group have 8" in message
    assert_nothing_written(out)
    assert not _ms_rows(pipeline, out)


def test_ms_without_a_calibrator(pipeline: Pipeline, converted: Converted, tmp_path: Path) -> None:
    out = tmp_path / "caltables"
    ms = converted.target.ms_path
    message = dead_letter(
        pipeline,
        "solve-calibration",
        {"ms_path": str(ms), "caltable_dir": str(out), "log_dir": str(tmp_path / "logs")},
    )
    assert f"no calibrator in beam of {ms}" in message
    assert_nothing_written(out)
    assert not pipeline.rows("SELECT id FROM products.caltables WHERE ms_path = %s", str(ms))


def test_fits_image_without_beam_keywords(
    pipeline: Pipeline, simulated_pair: SimulatedPair, tmp_path: Path
) -> None:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    wcs.wcs.crval = [simulated_pair.target.pointing_ra_deg, simulated_pair.target.pointing_dec_deg]
    wcs.wcs.crpix = [64.5, 64.5]
    wcs.wcs.cdelt = [-5.0 / 3600, 5.0 / 3600]
    image = tmp_path / "nobeam.fits"
    fits.PrimaryHDU(np.zeros((128, 128), dtype=np.float32), header=wcs.to_header()).writeto(image)
    message = dead_letter(
        pipeline,
        "run-photometry",
        {"image_path": str(image), "catalogue_path": str(simulated_pair.target.sources_csv)},
    )
    assert f"{image}: header has no BMAJ/BMIN keyword(s)" in message
    assert not pipeline.rows("SELECT id FROM products.photometry WHERE image_path = %s", str(image))


def test_apply_with_no_solve_in_reach_gives_up_after_its_wait(
    pipeline: Pipeline, converted: Converted
) -> None:
    # The calibrator transit is an hour before the target: out of reach of a 0.01 h window.
    ms = converted.target.ms_path
    message = dead_letter(
        pipeline, "apply-calibration", {"ms_path": str(ms), "max_age_hours": 0.01, "wait_timeout_s": 0}
    )
    assert f"no passing solve within 0.01 h before {ms}" in message
