"""Imaging: tclean and WSClean products on the calibrated calibrator transit, and the pb/noise helpers."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits

from science.applycal import apply_calibration
from science.beam import airy_response
from science.calibrate import SIDEREAL_DEG_PER_S, solve_calibration
from science.catalogs import SkyPosition
from science.constants import INTEGRATION_S
from science.imaging import (
    ImagingError,
    ImagingParams,
    check_tclean_summary,
    create_image,
    read_plane,
    robust_rms,
    write_pb_images,
)
from science.photometry import FluxMethod, measure_file


@pytest.fixture(scope="module")
def calibrated_calibrator(converted_pair, tmp_path_factory) -> Path:
    """A copy of the calibrator transit with its own calibration applied (CORRECTED_DATA)."""
    work = tmp_path_factory.mktemp("imaging")
    ms = work / "calibrator.ms"
    shutil.copytree(converted_pair.calibrator.ms_path, ms)
    cal = solve_calibration(ms, work / "caltables", log_dir=work / "logs")
    apply_calibration(ms, cal.apply_tables, log_dir=work / "logs")
    return ms


@pytest.mark.science
@pytest.mark.parametrize("imager", ["wsclean", "tclean"])
def test_image_products_and_header_beam(calibrated_calibrator: Path, tmp_path: Path, imager: str) -> None:
    cwd_before = set(os.listdir(Path.cwd()))
    params = ImagingParams(imager=imager, imsize=256, cell_arcsec=5.0, niter=2000)  # type: ignore[arg-type]
    result = create_image(calibrated_calibrator, tmp_path / "out", log_dir=tmp_path / "logs", params=params)
    assert result.imager == imager
    # The calibrator (3C286, ~14.9 Jy at the phase centre) dominates the image.
    assert result.peak_jy == pytest.approx(14.9 * (result.freq_hz / 1.4e9) ** -0.46, rel=0.03)
    header = fits.getheader(result.image)
    assert result.beam.bmaj_arcsec == pytest.approx(header["BMAJ"] * 3600)
    assert result.beam.bpa_deg == pytest.approx(header["BPA"])
    assert 0 < result.noise_jy < 0.05 * result.peak_jy
    assert result.noise_jy == pytest.approx(robust_rms(read_plane(result.residual)))
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        f"{calibrated_calibrator.stem}.{kind}"
        for kind in ("image.fits", "residual.fits", "psf.fits", "model.fits", "pb.fits", "pbcor.fits", "png")
    }
    # Photometry finds the PSF, model and residual beside the image and measures on the dirty image.
    centre = SkyPosition(name="3C286", ra_deg=result.center_ra_deg, dec_deg=result.center_dec_deg)
    (measured,) = measure_file(result.image, [centre])
    assert measured.flux_method is FluxMethod.DIRTY_PSF
    assert measured.flux_jy == pytest.approx(result.peak_jy, rel=0.03)
    assert any((tmp_path / "logs").iterdir())
    assert set(os.listdir(Path.cwd())) == cwd_before  # no logs or scratch files in the cwd


def test_a_tclean_run_that_diverged_is_refused() -> None:
    """tclean's mtmfs diverged on the five-source scene (stop code 5) and still wrote an image 15-30 %
    high at its brightest peaks; its summary is what tells."""
    ms = Path("/data/target.ms")
    diverged = {
        "iterdone": 6398,
        "nmajordone": 9,
        "stopcode": 5,
        "stopDescription": "peak residual increased by more than 3 times from the previous major cycle",
    }
    with pytest.raises(ImagingError, match=r"tclean diverged on /data/target.ms after 9 major cycles"):
        check_tclean_summary(diverged, ms)
    with pytest.raises(ImagingError, match="stop code 6"):
        check_tclean_summary({**diverged, "stopcode": 6}, ms)
    # Converged (n-sigma threshold) and iteration-limited runs stand.
    for code in (1, 2, 8):
        check_tclean_summary({**diverged, "stopcode": code}, ms)


def test_robust_rms_ignores_bright_pixels() -> None:
    rng = np.random.default_rng(3)
    data = rng.normal(0.0, 2e-3, (200, 200))
    data[100, 100] = 10.0
    data[0, 0] = np.nan
    assert robust_rms(data) == pytest.approx(2e-3, rel=0.03)


def flat_image(tmp_path: Path) -> Path:
    """A 101×101 image of ones, 0.01° pixels, centred on (200°, +30°) at 1.4 GHz."""
    header = fits.Header()
    for key, value in {
        "CTYPE1": "RA---SIN", "CRVAL1": 200.0, "CDELT1": -0.01, "CRPIX1": 51.0,
        "CTYPE2": "DEC--SIN", "CRVAL2": 30.0, "CDELT2": 0.01, "CRPIX2": 51.0,
        "CTYPE3": "FREQ", "CRVAL3": 1.4e9, "CDELT3": 1e8, "CRPIX3": 1.0,
    }.items():  # fmt: skip
        header[key] = value
    image = tmp_path / "img.fits"
    fits.PrimaryHDU(np.ones((1, 101, 101), np.float32), header=header).writeto(image)
    return image


def test_pb_images_divide_by_airy_beam(tmp_path: Path) -> None:
    image = flat_image(tmp_path)
    pb_path, pbcor_path = tmp_path / "pb.fits", tmp_path / "pbcor.fits"
    write_pb_images(image, pb_path, pbcor_path, pointing=(200.0, 30.0), freq_hz=1.4e9, cutoff=0.1)
    pb, pbcor = read_plane(pb_path), read_plane(pbcor_path)
    assert pb[50, 50] == pytest.approx(1.0)
    # 0.5° east of centre (50 pixels of 0.01°).
    assert pb[50, 0] == pytest.approx(float(airy_response(np.radians(0.5), 1.4e9)), rel=1e-3)
    assert pbcor[50, 0] == pytest.approx(1.0 / pb[50, 0], rel=1e-5)
    assert np.isnan(pbcor[pb < 0.1]).all()


def test_a_drift_scan_beam_is_the_airy_beam_averaged_along_its_track(tmp_path: Path) -> None:
    """24 integrations at +30°: the beam centre moves 1.3°·cos(dec) across the tile, so a source at the
    mid-time centre is seen at ~97 % on average, not 100 %."""
    image = flat_image(tmp_path)
    offsets_s = (np.arange(24) + 0.5) * INTEGRATION_S - 12 * INTEGRATION_S
    track = list(200.0 + SIDEREAL_DEG_PER_S * offsets_s)
    pb_path, pbcor_path = tmp_path / "pb.fits", tmp_path / "pbcor.fits"
    write_pb_images(
        image, pb_path, pbcor_path, pointing=(200.0, 30.0), freq_hz=1.4e9, cutoff=0.1, track_ra_deg=track
    )
    pb, pbcor = read_plane(pb_path), read_plane(pbcor_path)
    centre = SkyCoord(200.0 * u.deg, 30.0 * u.deg)
    expected = np.mean(
        [airy_response(centre.separation(SkyCoord(ra * u.deg, 30.0 * u.deg)).rad, 1.4e9) for ra in track]
    )
    assert pb[50, 50] == pytest.approx(expected, rel=1e-4)
    assert 0.96 < pb[50, 50] < 0.98
    assert pb[50, 50] == pytest.approx(pb.max(), rel=1e-6), (
        "the drift beam still peaks at the mid-time centre"
    )
    assert pb[50, 30] == pytest.approx(pb[50, 70], rel=1e-4), "symmetric about the mid-time centre in RA"
    assert pbcor[50, 50] == pytest.approx(1.0 / pb[50, 50], rel=1e-5)
