"""Blind source finding on synthetic images whose sources come from a generated survey table."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

from science.catalogs import SkyPosition
from science.errors import InvalidInputError
from science.source_finding import find_sources, identify, new_sources
from science.surveys import Survey, read_survey
from tests.catalogs import survey_tables as tables

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "science"))
from synthetic_images import ImageSpec, Source, make_image, offset_position

SPEC = ImageSpec(npix=400, noise_jy=1e-3)


def _field(tmp_path: Path, seed: int) -> tuple[list[Source], Path]:
    """25 survey sources of 8 to 300 mJy inside the image, written as an NVSS VizieR table."""
    rng = np.random.default_rng(seed)
    sources = []
    for i in range(25):
        ra, dec = offset_position(SPEC, *rng.uniform(-170, 170, 2))
        sources.append(Source(f"N{i}", ra, dec, float(10 ** rng.uniform(np.log10(0.008), np.log10(0.3)))))
    table = tables.nvss_vizier_csv(
        tmp_path / "nvss.csv",
        np.array([s.ra_deg for s in sources]),
        np.array([s.dec_deg for s in sources]),
        np.array([s.flux_jy * 1000 for s in sources]),
    )
    return sources, table


def test_every_bright_source_is_found_where_it_is(tmp_path: Path) -> None:
    sources, _ = _field(tmp_path, seed=1)
    image = make_image(tmp_path / "field.fits", sources, SPEC, seed=1)
    found = find_sources(image)
    truth = SkyCoord([s.ra_deg for s in sources] * u.deg, [s.dec_deg for s in sources] * u.deg)
    bright = [s for s in sources if s.flux_jy >= 0.01]  # 10σ and up
    got = SkyCoord([f.ra_deg for f in found] * u.deg, [f.dec_deg for f in found] * u.deg)
    for source in bright:
        here = SkyCoord(source.ra_deg * u.deg, source.dec_deg * u.deg)
        nearest = int(np.argmin(here.separation(got).arcsec))
        assert here.separation(got[nearest]).arcsec < 3.0
        assert found[nearest].peak_jy == pytest.approx(source.flux_jy, abs=4 * SPEC.noise_jy)
    # Nothing spurious: every detection is one of the injected sources.
    assert all(np.min(f_coord.separation(truth).arcsec) < 10 for f_coord in got)
    assert all(f.snr >= 5 for f in found)


def test_one_injected_new_source_is_the_only_new_source(tmp_path: Path) -> None:
    sources, table = _field(tmp_path, seed=2)
    ra, dec = offset_position(SPEC, 40.0, -60.0)
    newcomer = Source("NEW", ra, dec, 0.012)  # 12σ, in no catalogue
    image = make_image(tmp_path / "field.fits", [*sources, newcomer], SPEC, seed=2)
    nvss = read_survey(table, Survey.NVSS)
    monitored = [SkyPosition(name="MON1", ra_deg=sources[0].ra_deg, dec_deg=sources[0].dec_deg)]
    detected = find_sources(image)
    found = identify(detected, [nvss], monitored)
    fresh = new_sources(found)
    assert len(fresh) == 1
    new = fresh[0]
    assert (
        SkyCoord(ra * u.deg, dec * u.deg)
        .separation(SkyCoord(new.source.ra_deg * u.deg, new.source.dec_deg * u.deg))
        .arcsec
        < 3.0
    )
    # The evidence: the nearest catalogue entry, too far to be the same source.
    assert new.nearest_survey == "nvss" and new.nearest_separation_arcsec is not None
    assert new.nearest_separation_arcsec > 15.0
    assert any(i.match_kind == "monitored" and i.match_name == "MON1" for i in found)
    # A known calibrator at that position explains it: a calibrator transit is imaged too.
    calibrator = SkyPosition(name="CAL", ra_deg=ra, dec_deg=dec)
    again = identify(detected, [nvss], monitored, calibrators=[calibrator])
    assert new_sources(again) == []
    assert any(i.match_kind == "calibrator" and i.match_name == "CAL" for i in again)


def test_a_constant_sky_raises_no_new_source(tmp_path: Path) -> None:
    """A night of the catalogued sky (25 constant sources, six epochs of fresh noise): no candidate."""
    sources, table = _field(tmp_path, seed=3)
    nvss = read_survey(table, Survey.NVSS)
    total = 0
    for epoch in range(6):
        image = make_image(tmp_path / f"e{epoch}.fits", sources, SPEC, seed=100 + epoch)
        total += len(new_sources(identify(find_sources(image), [nvss])))
    assert total == 0


def test_an_image_without_a_beam_is_refused_by_name(tmp_path: Path) -> None:
    image = make_image(tmp_path / "nobeam.fits", [], SPEC, with_beam=False)
    with pytest.raises(InvalidInputError, match=r"nobeam\.fits"):
        find_sources(image)
