"""The VLA calibrator list: read as published, and planned against every declination we point at."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.time import Time

from science.calibrators import (
    VlaListError,
    get_calibrator,
    nearest_calibrator,
    plan_transits,
    read_vla_list,
)
from science.pointing import hour_angle_deg
from tests.catalogs.vla_list import sky_of_calibrators, write_list

AFTER = Time("2026-03-01T00:00:00", scale="utc")


@pytest.fixture(scope="module")
def vla_list(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_list(tmp_path_factory.mktemp("vla") / "callist.txt", sky_of_calibrators())


def test_the_list_reads_position_flux_index_and_quality(vla_list: Path) -> None:
    entries = sky_of_calibrators()
    catalogue = read_vla_list(vla_list)
    with_l = [e for e in entries if e.l_flux_jy is not None]
    assert [c.name for c in catalogue] == [e.name for e in with_l]
    cal = get_calibrator("3C286", catalogue)
    assert cal.name == "1331+305"
    assert abs(cal.ra_deg - 202.784533) < 1e-5 and abs(cal.dec_deg - 30.509155) < 1e-5
    assert cal.flux_jy == 14.9 and cal.quality == "P"
    # Two-point index between 1.4 and 4.86 GHz.
    assert cal.spectral_index == pytest.approx(np.log(7.41 / 14.9) / np.log(4.86 / 1.4))
    no_c = next(c for c, e in zip(catalogue, with_l, strict=True) if e.c_flux_jy is None)
    assert no_c.spectral_index == 0.0


@pytest.mark.parametrize("dec", list(range(-30, 91, 3)))
def test_every_declination_gets_a_calibrator_or_the_nearest_one(vla_list: Path, dec: int) -> None:
    catalogue = read_vla_list(vla_list)
    plan = plan_transits(dec, AFTER, catalogue)
    if plan:
        first = plan[0]
        assert first.response >= 0.5 and first.apparent_flux_jy >= 1.0
        assert first.calibrator.quality in {"P", "S"}
        assert AFTER.mjd <= first.transit_mjd <= AFTER.mjd + 1.0
        assert [t.transit_mjd for t in plan] == sorted(t.transit_mjd for t in plan)
        # The planned time is a meridian transit.
        when = Time(first.transit_mjd, format="mjd", scale="utc")
        assert abs(hour_angle_deg(first.calibrator.ra_deg, first.calibrator.dec_deg, when)) < 0.01
    else:
        nearest = nearest_calibrator(dec, AFTER, catalogue)
        assert nearest is not None
        assert nearest.offset_deg > 1.0  # outside the usable part of the beam, or it would be planned
        assert nearest.calibrator.quality in {"P", "S"}
        assert AFTER.mjd <= nearest.transit_mjd <= AFTER.mjd + 1.0


def test_a_file_that_is_not_the_list_is_refused_with_its_name(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("nothing to see\n")
    with pytest.raises(VlaListError, match=r"notes\.txt: no calibrator with an L-band flux"):
        read_vla_list(other)
    bad = tmp_path / "bad.txt"
    bad.write_text("1331+305   J2000  A 13h31m garbage\n")
    with pytest.raises(VlaListError, match=r"bad\.txt:1: a J2000 line"):
        read_vla_list(bad)
