"""Mosaics of two overlapping synthetic pointings: fluxes kept, noise lower in the overlap, dry run, CLI."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import structlog
from astropy.io import fits
from synthetic_images import ImageSpec, Source, make_image, make_wcs, offset_position
from typer.testing import CliRunner

from contimg.cli.mosaic import app
from science.catalogs import SkyPosition
from science.errors import InvalidInputError
from science.fits_image import read_image
from science.mosaic import MosaicMethod, MosaicPlan, build, companion_paths, dry_run
from science.photometry import measure_many

SPEC_A = ImageSpec(ra0_deg=150.0)
# Pointing B is half an image (128 pixels) east of A, so the two overlap by half.
SPEC_B = replace(SPEC_A, ra0_deg=offset_position(SPEC_A, -128, 0)[0], mjd=60000.35)
# Pixel offsets from A's centre: three in the overlap, two only in A, two only in B.
OFFSETS = [(-64, 30), (-60, -40), (-70, 0), (60, 20), (80, -50), (-190, 10), (-200, -60)]
SOURCES = [Source(f"s{i}", *offset_position(SPEC_A, dx, dy), 0.05) for i, (dx, dy) in enumerate(OFFSETS)]
POSITIONS = [SkyPosition(name=s.name, ra_deg=s.ra_deg, dec_deg=s.dec_deg) for s in SOURCES]
runner = CliRunner()


@pytest.fixture(autouse=True)
def logs_to_stderr() -> Iterator[None]:
    """Keep log lines out of stdout, as the contimg entry point does, so --json output parses."""
    saved = structlog.get_config()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))
    yield
    structlog.configure(**saved)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two pointings of the same sky, with independent noise of equal rms."""
    root = tmp_path_factory.mktemp("mosaic")
    return (
        make_image(root / "a.fits", SOURCES, SPEC_A, seed=1),
        make_image(root / "b.fits", SOURCES, SPEC_B, seed=2),
    )


@pytest.fixture(scope="module")
def attenuated_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same pointings with sources attenuated by the Airy primary beam about each centre."""
    root = tmp_path_factory.mktemp("mosaic_pb")
    return (
        make_image(root / "a.fits", SOURCES, SPEC_A, seed=3, apply_pb=True),
        make_image(root / "b.fits", SOURCES, SPEC_B, seed=4, apply_pb=True),
    )


def _noise_at(noise_path: Path, source_index: int) -> float:
    """Noise-map value at a source's position."""
    image = read_image(noise_path)
    x, y = image.world_to_pixel(SOURCES[source_index].ra_deg, SOURCES[source_index].dec_deg)
    return float(image.data[round(y), round(x)])


@pytest.mark.parametrize("method", list(MosaicMethod))
def test_mosaic_keeps_fluxes(
    pair: tuple[Path, Path], attenuated_pair: tuple[Path, Path], tmp_path: Path, method: MosaicMethod
) -> None:
    inputs = attenuated_pair if method is MosaicMethod.PBWEIGHTED else pair
    result = build(inputs, method, tmp_path / "mosaic.fits")
    mosaic = read_image(result.output_path)
    assert mosaic.shape == result.shape
    for measured, source in zip(measure_many(mosaic, POSITIONS), SOURCES, strict=True):
        assert measured.flux_jy is not None and measured.flux_err_jy is not None
        assert abs(measured.flux_jy - source.flux_jy) < 3 * measured.flux_err_jy, (source.name, measured)
        assert not measured.flags


@pytest.mark.parametrize("method", list(MosaicMethod))
def test_noise_map_lower_in_overlap(pair: tuple[Path, Path], tmp_path: Path, method: MosaicMethod) -> None:
    result = build(pair, method, tmp_path / "mosaic.fits", preview=False)
    single = [_noise_at(result.noise_path, i) for i in (3, 4, 5, 6)]
    overlap = [_noise_at(result.noise_path, i) for i in (0, 1, 2)]
    # One input alone: its own noise; two equal-noise inputs: 1/√2 of it.
    assert np.allclose(single, SPEC_A.noise_jy, rtol=0.1)
    assert np.allclose(overlap, SPEC_A.noise_jy / np.sqrt(2), rtol=0.1)
    # The noise map agrees with the scatter photometry sees around the overlap sources.
    local = [r.local_rms_jy or np.nan for r in measure_many(read_image(result.output_path), POSITIONS[:3])]
    assert np.allclose(local, overlap, rtol=0.25)


def test_outputs_and_headers(pair: tuple[Path, Path], tmp_path: Path) -> None:
    output = tmp_path / "field.fits"
    result = build(pair, "weighted", output)
    noise_path, preview_path = companion_paths(output)
    assert (result.noise_path, result.preview_path) == (noise_path, preview_path)
    assert preview_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    header = fits.getheader(output)
    assert header["BUNIT"] == "Jy/beam"
    assert header["BMAJ"] == pytest.approx(SPEC_A.bmaj_arcsec / 3600)
    assert header["MOSMETH"] == "weighted" and header["NINPUTS"] == 2
    assert header["MJD-OBS"] == pytest.approx((SPEC_A.mjd + SPEC_B.mjd) / 2)
    assert fits.getheader(noise_path)["BUNIT"] == "Jy/beam"
    assert [inp.noise_jy for inp in result.inputs] == pytest.approx([SPEC_A.noise_jy] * 2, rel=0.1)


def test_explicit_primary_beam_images(tmp_path: Path) -> None:
    """With B's PB given as 0.5 everywhere and B's sources at half flux, the mosaic is on the true scale."""
    a = make_image(tmp_path / "a.fits", SOURCES, SPEC_A, seed=5)
    half = [replace(s, flux_jy=s.flux_jy / 2) for s in SOURCES]
    b = make_image(tmp_path / "b.fits", half, SPEC_B, seed=6)
    pb_a, pb_b = tmp_path / "a.pb.fits", tmp_path / "b.pb.fits"
    for path, spec, value in ((pb_a, SPEC_A, 1.0), (pb_b, SPEC_B, 0.5)):
        shape = (spec.npix, spec.npix)
        fits.PrimaryHDU(np.full(shape, value, dtype=np.float32), make_wcs(spec).to_header()).writeto(path)

    result = build([a, b], "pbweighted", tmp_path / "m.fits", pb_images=[pb_a, pb_b], preview=False)
    measured = measure_many(read_image(result.output_path), POSITIONS)
    for m, source in zip(measured, SOURCES, strict=True):
        assert m.flux_jy is not None and m.flux_err_jy is not None
        assert abs(m.flux_jy - source.flux_jy) < 3 * m.flux_err_jy, source.name
    # B alone, corrected by 1/0.5: twice the noise; overlap: 1/sqrt(1/σ² + 0.25/σ²).
    assert _noise_at(result.noise_path, 5) == pytest.approx(2 * SPEC_A.noise_jy, rel=0.1)
    assert _noise_at(result.noise_path, 0) == pytest.approx(SPEC_A.noise_jy / np.sqrt(1.25), rel=0.1)


def test_dry_run_matches_build_and_writes_nothing(pair: tuple[Path, Path], tmp_path: Path) -> None:
    plan = MosaicPlan(
        name="night1", image_paths=list(pair), method=MosaicMethod.MEAN, output_path=tmp_path / "n1.fits"
    )
    report = dry_run(plan)
    assert not list(tmp_path.iterdir())
    assert len(report.inputs) == 2
    assert report.inputs[1].pointing_ra_deg == pytest.approx(SPEC_B.ra0_deg)
    assert report.pixel_arcsec == pytest.approx(SPEC_A.pixel_arcsec)
    built = build(plan.image_paths, plan.method, plan.output_path, preview=False)
    assert built.shape == report.shape
    # Both images are 256 pixels (~0.28°) across and overlap by half.
    assert report.width_deg == pytest.approx(1.5 * 256 * SPEC_A.pixel_arcsec / 3600, rel=0.02)


def test_bad_inputs(pair: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"missing\.fits: no such FITS image"):
        build([pair[0], tmp_path / "missing.fits"], "mean", tmp_path / "m.fits")
    with pytest.raises(InvalidInputError, match="1 PB images given for 2 input images"):
        build(pair, "pbweighted", tmp_path / "m.fits", pb_images=[pair[0]])
    with pytest.raises(ValueError, match="1 PB images given for 2 input images"):
        MosaicPlan(name="x", image_paths=list(pair), output_path=tmp_path / "m.fits", pb_paths=[pair[0]])


def test_cli_build_and_dry_run(pair: tuple[Path, Path], tmp_path: Path) -> None:
    output = tmp_path / "cli.fits"
    dry = runner.invoke(
        app, ["build", "--method", "weighted", "-o", str(output), *map(str, pair), "--dry-run"]
    )
    assert dry.exit_code == 0, dry.output
    assert "2 inputs" in dry.stdout and not output.exists()

    built = runner.invoke(
        app, ["build", "--direct", "-m", "mean", "-o", str(output), *map(str, pair), "--json"]
    )
    assert built.exit_code == 0, built.output
    report = json.loads(built.stdout)
    assert report["method"] == "mean" and output.exists()
    assert report["min_noise_jy"] < report["median_noise_jy"]


def test_cli_bad_input(pair: tuple[Path, Path], tmp_path: Path) -> None:
    missing = runner.invoke(
        app, ["build", "--direct", "-o", str(tmp_path / "m.fits"), str(pair[0]), str(tmp_path / "no.fits")]
    )
    assert missing.exit_code == 1
    assert "no.fits: no such FITS image" in missing.output

    bad_method = runner.invoke(
        app, ["build", "--direct", "-m", "median", "-o", str(tmp_path / "m.fits"), *map(str, pair)]
    )
    assert bad_method.exit_code != 0
    assert "median" in bad_method.output
