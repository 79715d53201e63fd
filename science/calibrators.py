"""The calibrator catalogue, the search for a calibrator in the primary beam, and transit planning.

The bundled catalogue (``data/calibrators.csv``) lists bright compact sources with a 1.4 GHz flux
density and a spectral index. A larger one is read from the VLA calibrator list in its published text
format (:func:`read_vla_list`), configured by path. A calibrator's apparent flux is its intrinsic
spectrum times the Airy power response at its offset from the pointing centre.

The dishes point at a fixed declination, so a calibrator is usable only when it transits close enough
to that declination: :func:`plan_transits` lists the usable ones for a declination in transit order,
and :func:`nearest_calibrator` names the closest one when none is usable.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.time import Time
from pydantic import BaseModel, ConfigDict

from science.beam import SPEED_OF_LIGHT_M_S, airy_response
from science.constants import DISH_DIAMETER_M
from science.errors import InvalidInputError
from science.pointing import next_transit

CATALOGUE_PATH = Path(__file__).parent / "data" / "calibrators.csv"

# A calibrator must sit inside the half-power radius to count as "in the beam".
DEFAULT_MIN_RESPONSE = 0.5
# Fainter than this after the beam, a 5-minute transit gives gains too noisy to transfer to a night.
DEFAULT_MIN_APPARENT_JY = 1.0
# The band centre, for planning (the solver uses the MS's own frequencies).
PLANNING_FREQ_HZ = 1.405e9


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
    # The VLA list's L-band code for the configuration whose baselines match ours: P, S, W, X or ?.
    quality: str = ""

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


class VlaListError(InvalidInputError):
    """The VLA calibrator list cannot be read; the message names the file and line."""


# "1331+305   J2000  A 13h31m08.288061s 30d30'32.958850"  Aug01  3C286": name, position, alias.
_J2000 = re.compile(
    r"^(?P<name>\S+)\s+J2000\s+(?P<code>\S)\s+(?P<ra>\d+h\d+m[\d.]+s)\s+"
    r"(?P<dec>[-+]?\d+d\d+'[\d.]+(?:\"|''))(?:\s+\S+)?(?:\s+(?P<alias>\S+))?\s*$"
)
# " 20cm    L  P P P P      14.90     ...": band, the four configuration codes, flux in Jy.
_BAND = re.compile(
    r"^\s*(?P<wave>[\d.]+cm)\s+(?P<band>[A-Z])\s+(?P<codes>(?:[PSWX?]\s+){3}[PSWX?])\s*(?P<flux>[\d.]+)?"
)
# DSA-110's longest baselines (~2.6 km) are closest to the VLA's C configuration (3.4 km).
_CONFIGURATION = "ABCD".index("C")
_USABLE_QUALITY = {"P", "S"}
# Where a source has no C-band flux to give an index, assume a flat spectrum: most are compact quasars.
_L_HZ, _C_HZ = 1.4e9, 4.86e9


def read_vla_list(path: Path | str) -> list[Calibrator]:
    """The VLA calibrator list in its text format: J2000 position, L-band flux and quality per entry.

    Entries without an L-band flux are skipped (they cannot be modelled here). The spectral index is
    the two-point index between L and C band when both are listed, else 0.
    """
    path = Path(path)
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        raise VlaListError(f"{path}: cannot read the calibrator list: {exc.strerror or exc}") from exc
    found: list[Calibrator] = []
    entry: dict[str, str] | None = None
    fluxes: dict[str, float] = {}
    codes: dict[str, str] = {}

    def close() -> None:
        if entry is not None and "L" in fluxes:
            index = float(np.log(fluxes["C"] / fluxes["L"]) / np.log(_C_HZ / _L_HZ)) if "C" in fluxes else 0.0
            coord = SkyCoord(entry["ra"], entry["dec"].replace("''", '"'), frame="icrs")
            found.append(
                Calibrator(
                    name=entry["name"],
                    alias=entry.get("alias") or "",
                    ra_deg=float(coord.ra.deg),
                    dec_deg=float(coord.dec.deg),
                    flux_jy=fluxes["L"],
                    spectral_index=index,
                    ref_freq_hz=_L_HZ,
                    quality=codes.get("L", "?"),
                )
            )

    for number, line in enumerate(lines, start=1):
        j2000 = _J2000.match(line)
        if j2000:
            close()
            entry, fluxes, codes = j2000.groupdict(), {}, {}
            continue
        band = _BAND.match(line)
        if band and entry is not None:
            code = band["codes"].split()[_CONFIGURATION]
            codes[band["band"]] = code
            if band["flux"]:
                try:
                    fluxes[band["band"]] = float(band["flux"])
                except ValueError:
                    raise VlaListError(f"{path}:{number}: flux {band['flux']!r} is not a number") from None
        elif "J2000" in line and not line.lstrip().startswith("#"):
            raise VlaListError(
                f"{path}:{number}: a J2000 line that is not name, code, RA, Dec: {line.strip()!r}"
            )
    close()
    if not found:
        raise VlaListError(f"{path}: no calibrator with an L-band flux; is this the VLA calibrator list?")
    return found


class Transit(BaseModel):
    """A calibrator's transit through the beam at a pointing declination."""

    calibrator: Calibrator
    transit_utc: str
    transit_mjd: float
    offset_deg: float
    response: float
    apparent_flux_jy: float


def _transit(cal: Calibrator, dec_deg: float, after: Time, freq_hz: float) -> Transit:
    offset = abs(cal.dec_deg - dec_deg)
    response = float(airy_response(np.radians(offset), freq_hz))
    when = next_transit(cal.ra_deg, cal.dec_deg, after)
    return Transit(
        calibrator=cal,
        transit_utc=when.utc.isot[:19] + "Z",
        transit_mjd=float(when.utc.mjd),
        offset_deg=offset,
        response=response,
        apparent_flux_jy=response * cal.flux_at(freq_hz),
    )


def usable(cal: Calibrator) -> bool:
    """True unless the list says the source is poor at L band on our baselines (or is variable)."""
    return not cal.variable and (not cal.quality or cal.quality in _USABLE_QUALITY)


def plan_transits(
    dec_deg: float,
    after: Time,
    catalogue: Sequence[Calibrator],
    *,
    hours: float = 24.0,
    min_response: float = DEFAULT_MIN_RESPONSE,
    min_apparent_jy: float = DEFAULT_MIN_APPARENT_JY,
    freq_hz: float = PLANNING_FREQ_HZ,
) -> list[Transit]:
    """The usable calibrator transits at pointing declination ``dec_deg`` within ``hours`` of ``after``.

    Usable: inside the beam (response at least ``min_response``), at least ``min_apparent_jy`` after
    the beam, and of good quality in the list. In transit order.
    """
    width = _half_width_deg(min_response, freq_hz)
    near = [c for c in catalogue if abs(c.dec_deg - dec_deg) <= width and usable(c)]
    transits = [_transit(c, dec_deg, after, freq_hz) for c in near]
    end = after.utc.mjd + hours / 24.0
    chosen = [
        t
        for t in transits
        if t.response >= min_response and t.apparent_flux_jy >= min_apparent_jy and t.transit_mjd <= end
    ]
    return sorted(chosen, key=lambda t: t.transit_mjd)


def nearest_calibrator(
    dec_deg: float,
    after: Time,
    catalogue: Sequence[Calibrator],
    *,
    min_apparent_jy: float = DEFAULT_MIN_APPARENT_JY,
    freq_hz: float = PLANNING_FREQ_HZ,
) -> Transit | None:
    """The usable calibrator closest in declination that would give ``min_apparent_jy`` on axis."""
    bright = [c for c in catalogue if usable(c) and c.flux_at(freq_hz) >= min_apparent_jy]
    if not bright:
        return None
    best = min(bright, key=lambda c: (abs(c.dec_deg - dec_deg), -c.flux_at(freq_hz)))
    return _transit(best, dec_deg, after, freq_hz)


def _half_width_deg(min_response: float, freq_hz: float) -> float:
    """The offset at which the main lobe falls to ``min_response``."""
    grid = np.radians(np.linspace(0.0, 5.0, 5001))
    response = airy_response(grid, freq_hz)
    return float(np.degrees(grid[np.argmax(response < min_response)]))
