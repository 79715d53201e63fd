"""Flux on the source's own dirty image (science.dirty_flux), against a restored image of the same CLEAN
result: a point source between pixels, split by CLEAN over four, next to a bright neighbour whose
sidelobes reach it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from numpy.typing import NDArray
from synthetic_images import ImageSpec, correlated_noise, make_wcs

from science.catalogs import SkyPosition
from science.dirty_flux import DirtyBeamFlux
from science.errors import InvalidInputError
from science.photometry import FluxMethod, PhotometryOptions, measure_file

# A quarter of the minor axis per pixel, as create_image chooses.
SPEC = ImageSpec(npix=160, pixel_arcsec=2.0, bmaj_arcsec=24.0, bmin_arcsec=8.0, bpa_deg=30.0, noise_jy=0.0)
TARGET_JY, NEIGHBOUR_JY = 0.2, 1.0
TARGET_XY = (80.37, 77.71)
NEIGHBOUR_XY = (67, 91)  # on the PSF's sidelobe ridge through the target, 19 pixels away


def _psf(dx: NDArray[np.float64], dy: NDArray[np.float64]) -> NDArray[np.float64]:
    """A snapshot-like dirty beam, peak 1: an elongated core narrower across than the restoring beam fitted
    to it (docs/flux-accuracy.md, point 4), a negative bowl and a sidelobe ridge."""
    theta = math.radians(SPEC.bpa_deg + 90.0)
    u = dx * math.cos(theta) + dy * math.sin(theta)
    v = -dx * math.sin(theta) + dy * math.cos(theta)
    sigma_u, sigma_v = 24.0 / 2.0 / 2.355, 0.75 * 8.0 / 2.0 / 2.355
    core = np.exp(-0.5 * ((u / sigma_u) ** 2 + (v / sigma_v) ** 2))
    bowl = 0.3 * np.exp(-0.5 * ((u / (3 * sigma_u)) ** 2 + (v / (3 * sigma_v)) ** 2))
    ridge = 0.4 * np.exp(-0.5 * ((u / (4 * sigma_u)) ** 2 + ((np.abs(v) - 4 * sigma_v) / sigma_v) ** 2))
    return np.asarray((core - bowl + ridge) / (1.0 - 0.3 + 0.4 * math.exp(-8.0)))


def _restoring(dx: NDArray[np.float64], dy: NDArray[np.float64]) -> NDArray[np.float64]:
    theta = math.radians(SPEC.bpa_deg + 90.0)
    u = dx * math.cos(theta) + dy * math.sin(theta)
    v = -dx * math.sin(theta) + dy * math.cos(theta)
    sigma_u = SPEC.bmaj_arcsec / SPEC.pixel_arcsec / 2.3548
    sigma_v = SPEC.bmin_arcsec / SPEC.pixel_arcsec / 2.3548
    return np.asarray(np.exp(-0.5 * ((u / sigma_u) ** 2 + (v / sigma_v) ** 2)))


def _clean_result(directory: Path, placement: str) -> Path:
    """The planes an imager writes for the two sources: the target's flux on the pixel nearest to it
    (CLEAN's first components, the rest left in the residual) or split bilinearly over the four around
    it (its centroid true); the neighbour's on its own pixel."""
    n = SPEC.npix
    yy, xx = np.mgrid[0:n, 0:n].astype(float)
    x0, y0 = TARGET_XY
    fx, fy = x0 - math.floor(x0), y0 - math.floor(y0)
    components = [
        (math.floor(x0), math.floor(y0), (1 - fx) * (1 - fy)),
        (math.floor(x0) + 1, math.floor(y0), fx * (1 - fy)),
        (math.floor(x0), math.floor(y0) + 1, (1 - fx) * fy),
        (math.floor(x0) + 1, math.floor(y0) + 1, fx * fy),
    ]
    if placement == "nearest":
        components = [(round(x0), round(y0), 1.0)]
    model = np.zeros((n, n))
    for x, y, share in components:
        model[y, x] += TARGET_JY * share
    model[NEIGHBOUR_XY[1], NEIGHBOUR_XY[0]] = NEIGHBOUR_JY
    dirty = TARGET_JY * _psf(xx - x0, yy - y0) + NEIGHBOUR_JY * _psf(
        xx - NEIGHBOUR_XY[0], yy - NEIGHBOUR_XY[1]
    )
    rebuilt = np.zeros((n, n))
    restored = np.zeros((n, n))
    for y, x in zip(*np.nonzero(model), strict=True):
        rebuilt += model[y, x] * _psf(xx - x, yy - y)
        restored += model[y, x] * _restoring(xx - x, yy - y)
    residual = dirty - rebuilt
    header = make_wcs(SPEC).to_header()
    header.update(
        BMAJ=SPEC.bmaj_arcsec / 3600, BMIN=SPEC.bmin_arcsec / 3600, BPA=SPEC.bpa_deg, BUNIT="Jy/beam"
    )
    planes = {
        "image": restored + residual,
        "residual": residual,
        "model": model,
        "psf": _psf(xx - n // 2, yy - n // 2),
    }
    for kind, data in planes.items():
        fits.PrimaryHDU(data.astype(np.float32), header).writeto(directory / f"x.{kind}.fits")
    return directory / "x.image.fits"


@pytest.fixture(scope="module", params=["nearest", "bilinear"])
def image(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _clean_result(tmp_path_factory.mktemp("dirty"), request.param)


def _target() -> list[SkyPosition]:
    ra, dec = make_wcs(SPEC).pixel_to_world_values(*TARGET_XY)
    return [SkyPosition(name="T", ra_deg=float(ra), dec_deg=float(dec))]


def test_the_source_s_dirty_image_gives_its_flux_wherever_clean_put_it(image: Path) -> None:
    (exact,) = measure_file(image, _target())
    assert exact.flux_method is FluxMethod.DIRTY_PSF
    assert exact.flux_jy == pytest.approx(TARGET_JY, rel=3e-3)


def test_the_restored_image_misjudges_a_source_clean_put_beside_it(tmp_path: Path) -> None:
    """The restoring beam at the true position partly misses the displaced component, and counts what
    was left in the residual, in Jy per dirty beam, with the wrong template: the two need not cancel."""
    image = _clean_result(tmp_path, "nearest")
    (restored,) = measure_file(image, _target(), PhotometryOptions(dirty_psf_flux=False))
    assert restored.flux_method is FluxMethod.RESTORED_BEAM
    assert restored.flux_jy is not None
    assert abs(restored.flux_jy - TARGET_JY) > 0.005 * TARGET_JY


def test_a_neighbour_s_components_stay_subtracted_with_their_sidelobes(image: Path) -> None:
    """The neighbour is 19 pixels away, beyond the target's reach (one major-axis FWHM, 12 pixels); had
    its sidelobes been rebuilt into the target's dirty image, they would add several per cent."""
    planes = {kind: fits.getdata(image.with_name(f"x.{kind}.fits")) for kind in ("psf", "model", "residual")}
    dirty = DirtyBeamFlux(planes["psf"], planes["model"], planes["residual"], source=image)
    yy, xx = np.mgrid[70:86, 70:92]
    xs, ys = xx.ravel(), yy.ravel()
    alone, _ = dirty.flux(*TARGET_XY, xs, ys, near_pix=6.0)
    with_neighbour, _ = dirty.flux(*TARGET_XY, xs, ys, near_pix=30.0)
    assert alone == pytest.approx(TARGET_JY, rel=3e-3)
    assert abs(with_neighbour - TARGET_JY) > 0.02 * TARGET_JY


def test_planes_of_different_shapes_are_refused_naming_the_image(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"x\.image\.fits.*differ"):
        DirtyBeamFlux(np.ones((8, 8)), np.zeros((8, 9)), np.zeros((8, 8)), source=tmp_path / "x.image.fits")


def test_the_errors_follow_the_residual_s_own_noise_correlation(tmp_path: Path) -> None:
    """Under robust weighting the noise is correlated more narrowly than the PSF. Measured on pure noise
    correlated like the restoring beam, with a PSF half as wide again, the stated errors match the
    scatter of the fluxes; read off the PSF, they would overstate it."""
    spec = ImageSpec(
        npix=480, pixel_arcsec=2.0, bmaj_arcsec=24.0, bmin_arcsec=8.0, bpa_deg=30.0, noise_jy=1e-3
    )
    noise = correlated_noise(spec, np.random.default_rng(7))
    n = spec.npix
    yy, xx = np.mgrid[0:n, 0:n].astype(float)
    header = make_wcs(spec).to_header()
    header.update(
        BMAJ=spec.bmaj_arcsec / 3600, BMIN=spec.bmin_arcsec / 3600, BPA=spec.bpa_deg, BUNIT="Jy/beam"
    )
    theta = math.radians(spec.bpa_deg + 90.0)
    u = (xx - n // 2) * math.cos(theta) + (yy - n // 2) * math.sin(theta)
    v = -(xx - n // 2) * math.sin(theta) + (yy - n // 2) * math.cos(theta)
    psf = np.exp(-0.5 * ((u / (1.5 * 12 / 2.3548)) ** 2 + (v / (1.5 * 4 / 2.3548)) ** 2))
    planes = {"image": noise, "residual": noise, "model": np.zeros((n, n)), "psf": psf}
    for kind, data in planes.items():
        fits.PrimaryHDU(data.astype(np.float32), header).writeto(tmp_path / f"x.{kind}.fits")
    wcs = make_wcs(spec)
    grid = range(60, n - 60, 30)
    positions = []
    for i, (x, y) in enumerate((x, y) for x in grid for y in grid):
        ra, dec = wcs.pixel_to_world_values(x + 0.3, y + 0.6)
        positions.append(SkyPosition(name=f"n{i}", ra_deg=float(ra), dec_deg=float(dec)))
    options = PhotometryOptions(systematic_fraction=0.0, fit_position=False)
    measured = measure_file(tmp_path / "x.image.fits", positions, options)
    fluxes = np.array([m.flux_jy for m in measured])
    errors = np.array([m.flux_err_jy for m in measured])
    assert np.std(fluxes) / np.median(errors) == pytest.approx(1.0, abs=0.15)

    (tmp_path / "x.residual.fits").unlink()  # only the PSF left to say how the noise is correlated
    from_psf = measure_file(tmp_path / "x.image.fits", positions, options)
    assert np.median([m.flux_err_jy for m in from_psf]) > 1.2 * np.median(errors)
