"""Survey tables in their released layouts: read, indexed, searched by cone and by image footprint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.wcs import WCS

from science.surveys import Survey, SurveyError, read_survey
from tests.catalogs import survey_tables as tables

CENTRE = (202.78, 30.51)


@pytest.fixture(scope="module")
def sky() -> tuple[np.ndarray, ...]:
    return tables.random_sky(3000, *CENTRE, radius_deg=6.0, seed=3)


@pytest.mark.parametrize(
    ("writer", "suffix", "survey", "scale"),
    [
        (tables.nvss_nrao_fits, ".fits", Survey.NVSS, 1.0),
        (tables.nvss_vizier_csv, ".csv", Survey.NVSS, 1.0),
        (tables.first_fits, ".fits", Survey.FIRST, 1.0),
        (tables.vlass_csv, ".csv", Survey.VLASS, 1.0),
        (tables.racs_votable, ".xml", Survey.RACS, 1.0),
    ],
)
def test_each_release_layout_reads_to_the_same_positions_and_fluxes(
    tmp_path: Path, sky, writer, suffix: str, survey: Survey, scale: float
) -> None:
    ra, dec, flux = (a[:200] for a in sky)
    catalog = read_survey(writer(tmp_path / f"t{suffix}", ra, dec, flux), survey)
    assert len(catalog) == 200
    got = SkyCoord([s.ra_deg for s in catalog.sources] * u.deg, [s.dec_deg for s in catalog.sources] * u.deg)
    # Sexagesimal exports round to 0.01 s and 0.1″.
    assert np.max(got.separation(SkyCoord(ra * u.deg, dec * u.deg)).arcsec) < 0.3
    assert np.allclose([s.flux_mjy for s in catalog.sources], flux * scale, rtol=2e-3, atol=0.06)
    assert all(s.name for s in catalog.sources)


def test_cone_search_finds_exactly_what_a_full_scan_finds(tmp_path: Path, sky) -> None:
    ra, dec, flux = sky
    catalog = read_survey(tables.first_fits(tmp_path / "first.fits", ra, dec, flux), Survey.FIRST)
    everything = SkyCoord(ra * u.deg, dec * u.deg)
    for centre_ra, centre_dec, radius in [(*CENTRE, 1.5), (205.0, 33.0, 2.5), (200.0, 27.0, 0.4)]:
        found = catalog.cone(centre_ra, centre_dec, radius)
        sep = SkyCoord(centre_ra * u.deg, centre_dec * u.deg).separation(everything).deg
        assert len(found) == int(np.sum(sep <= radius))
        distances = SkyCoord(centre_ra * u.deg, centre_dec * u.deg).separation(
            SkyCoord([s.ra_deg for s in found] * u.deg, [s.dec_deg for s in found] * u.deg)
        )
        assert np.all(np.diff(distances.deg) >= 0)


def test_image_footprint_and_flux_cut(tmp_path: Path, sky) -> None:
    ra, dec, flux = sky
    catalog = read_survey(tables.vlass_csv(tmp_path / "vlass.csv", ra, dec, flux), Survey.VLASS)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    wcs.wcs.crval = list(CENTRE)
    wcs.wcs.crpix = [512.5, 512.5]
    wcs.wcs.cdelt = [-5.0 / 3600, 5.0 / 3600]
    chosen = catalog.in_image(wcs, (1024, 1024), min_flux_mjy=20.0, freq_hz=1.4e9)
    x, y = wcs.world_to_pixel(SkyCoord(ra * u.deg, dec * u.deg))
    inside = (x >= -0.5) & (x <= 1023.5) & (y >= -0.5) & (y <= 1023.5)
    # VLASS is at 3 GHz: at 1.4 GHz a −0.7 spectrum is (1.4/3)^−0.7 ≈ 1.70 times brighter.
    bright = flux * (1.4 / 3.0) ** -0.7 >= 20.0
    assert sorted(s.name for s in chosen) == sorted(
        f"VLASS1QLCIR J{i:06d}" for i in np.flatnonzero(inside & bright)
    )
    assert 0 < len(chosen) < int(np.sum(inside))


def test_unreadable_and_incomplete_tables_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.fits"
    with pytest.raises(SurveyError, match=r"nope\.fits: no such survey file"):
        read_survey(missing, "nvss")
    garbage = tmp_path / "broken.fits"
    garbage.write_bytes(b"SIMPLE  = not really a fits file")
    with pytest.raises(SurveyError, match=r"broken\.fits"):
        read_survey(garbage, "first")
    no_flux = tmp_path / "noflux.csv"
    no_flux.write_text("RA,DEC\n10.0,20.0\n")
    with pytest.raises(SurveyError, match=r"noflux.csv \(vlass\): no column named any of Total_flux"):
        read_survey(no_flux, "vlass")
