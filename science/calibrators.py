"""The calibrator catalogue and the search for a calibrator in the primary beam.

The bundled catalogue (``data/calibrators.csv``) lists bright compact sources with a 1.4 GHz flux
density and a spectral index. A calibrator's apparent flux is its intrinsic spectrum times the Airy
power response at its offset from the pointing centre.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from pydantic import BaseModel, ConfigDict

from science.beam import SPEED_OF_LIGHT_M_S, airy_response
from science.constants import DISH_DIAMETER_M

CATALOGUE_PATH = Path(__file__).parent / "data" / "calibrators.csv"

# A calibrator must sit inside the half-power radius to count as "in the beam".
DEFAULT_MIN_RESPONSE = 0.5


class Calibrator(BaseModel):
    """One catalogue entry: a point source with a power-law spectrum."""

    model_config = ConfigDict(frozen=True)

    name: str
    alias: str = ""
    ra_deg: float
    dec_deg: float
    flux_jy: float
    spectral_index: float
    ref_freq_hz: float = 1.4e9
    variable: bool = False

    def flux_at(self, freq_hz: float) -> float:
        """Intrinsic flux density (Jy) at ``freq_hz`` from the power law."""
        return float(self.flux_jy * (freq_hz / self.ref_freq_hz) ** self.spectral_index)


class CalibratorInBeam(BaseModel):
    """A calibrator found near a pointing, with its offset and beam-attenuated flux."""

    calibrator: Calibrator
    offset_deg: float
    response: float
    apparent_flux_jy: float


def _parse_row(row: dict[str, str]) -> Calibrator:
    coord = SkyCoord(row["ra_j2000"], row["dec_j2000"], frame="icrs")
    return Calibrator(
        name=row["name"],
        alias=row.get("alias", ""),
        ra_deg=float(coord.ra.deg),
        dec_deg=float(coord.dec.deg),
        flux_jy=float(row["flux_jy"]),
        spectral_index=float(row["spectral_index"]),
        ref_freq_hz=float(row.get("ref_freq_hz") or 1.4e9),
        variable=row.get("variable", "no").strip().lower() in {"yes", "true", "1"},
    )


@lru_cache(maxsize=4)
def _load_cached(path: str) -> tuple[Calibrator, ...]:
    with open(path, newline="") as handle:
        lines = [line for line in handle if line.strip() and not line.lstrip().startswith("#")]
    return tuple(_parse_row(row) for row in csv.DictReader(lines))


def load_catalogue(path: Path | None = None) -> list[Calibrator]:
    """Read a calibrator CSV (the bundled one by default); ``#`` lines are comments."""
    return list(_load_cached(str(Path(path or CATALOGUE_PATH).resolve())))


def get_calibrator(name: str, catalogue: Sequence[Calibrator] | None = None) -> Calibrator:
    """Look a calibrator up by name or alias (case-insensitive); ``KeyError`` if absent."""
    wanted = name.strip().lower()
    for cal in catalogue if catalogue is not None else load_catalogue():
        if wanted in {cal.name.lower(), cal.alias.lower()}:
            return cal
    raise KeyError(f"calibrator {name!r} is not in the catalogue")


def calibrators_in_beam(
    pointing_ra_deg: float,
    pointing_dec_deg: float,
    freq_hz: float,
    catalogue: Sequence[Calibrator] | None = None,
    min_response: float = DEFAULT_MIN_RESPONSE,
) -> list[CalibratorInBeam]:
    """Catalogue sources whose beam response at ``freq_hz`` is at least ``min_response``.

    Sorted brightest apparent flux first, so element 0 is the one to calibrate on.
    """
    cals = list(catalogue if catalogue is not None else load_catalogue())
    if not cals:
        return []
    pointing = SkyCoord(pointing_ra_deg * u.deg, pointing_dec_deg * u.deg, frame="icrs")
    coords = SkyCoord([c.ra_deg for c in cals] * u.deg, [c.dec_deg for c in cals] * u.deg, frame="icrs")
    offsets = pointing.separation(coords).rad
    responses = airy_response(offsets, freq_hz)
    # Beyond the first null (J1 root x = 3.8317) the sidelobes rise again; only the main lobe counts.
    first_null = np.arcsin(min(1.0, 3.8317 * SPEED_OF_LIGHT_M_S / freq_hz / (np.pi * DISH_DIAMETER_M)))
    found = [
        CalibratorInBeam(
            calibrator=cal,
            offset_deg=float(np.degrees(off)),
            response=float(resp),
            apparent_flux_jy=float(resp * cal.flux_at(freq_hz)),
        )
        for cal, off, resp in zip(cals, offsets, responses, strict=True)
        if resp >= min_response and off < first_null
    ]
    return sorted(found, key=lambda c: c.apparent_flux_jy, reverse=True)
