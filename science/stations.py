"""DSA-110 stations: the shipped coordinate file, antenna numbering and the array reference location.

Antenna numbers start at 0 (antenna number = station number − 1): pyuvdata adds a dummy antenna at
the Earth's centre when numbering starts at 1. Station names ("DSA-001") are kept as antenna names.
"""

from __future__ import annotations

import csv
import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import EarthLocation
from numpy.typing import NDArray

from science.constants import FIRST_OUTRIGGER, N_STATIONS

STATION_FILE = Path(__file__).parent / "data" / "dsa110_station_coordinates.csv"


@dataclass(frozen=True)
class Station:
    """One DSA-110 station, with geodetic (WGS84) coordinates."""

    number: int
    name: str
    lat_deg: float
    lon_deg: float
    height_m: float

    @property
    def antenna_number(self) -> int:
        """The antenna number used in UVH5 files and Measurement Sets (from 0)."""
        return self.number - 1

    @property
    def is_core(self) -> bool:
        """True for the core arms (1–102), False for the outriggers (103–117)."""
        return self.number < FIRST_OUTRIGGER


def _parse(path: Path) -> list[tuple[int, str, float, float, float | None]]:
    rows: list[tuple[int, str, float, float, float | None]] = []
    with path.open(newline="") as handle:
        for fields in csv.reader(handle):
            cells = [cell.strip() for cell in fields]
            name = next((cell for cell in cells if re.fullmatch(r"DSA-\d{3}", cell)), None)
            if name is None:
                continue  # the title and header lines
            values = cells[cells.index(name) + 1 :]
            height = float(values[2]) if len(values) > 2 and values[2] else None
            rows.append((int(name[4:]), name, float(values[0]), float(values[1]), height))
    return rows


@functools.cache
def load_stations() -> tuple[Station, ...]:
    """All 117 stations from the shipped file, ordered by station number."""
    rows = sorted(_parse(STATION_FILE))
    if len(rows) != N_STATIONS:
        raise ValueError(f"{STATION_FILE}: expected {N_STATIONS} stations, found {len(rows)}")
    known = [(lat, lon, h) for _, _, lat, lon, h in rows if h is not None]
    stations = []
    for number, name, lat, lon, height in rows:
        if height is None:
            # The file leaves one elevation blank (DSA-117). The outriggers' elevations differ by only a
            # few metres, so the nearest surveyed station's elevation is a close stand-in.
            coslat = np.cos(np.radians(lat))
            nearest = min(known, key=lambda k: (k[0] - lat) ** 2 + ((k[1] - lon) * coslat) ** 2)
            height = nearest[2]
        stations.append(Station(number, name, lat, lon, height))
    return tuple(stations)


def station_locations(stations: tuple[Station, ...] | list[Station]) -> EarthLocation:
    """Geodetic positions of ``stations`` as one EarthLocation array."""
    return EarthLocation.from_geodetic(
        lon=[s.lon_deg for s in stations] * u.deg,
        lat=[s.lat_deg for s in stations] * u.deg,
        height=[s.height_m for s in stations] * u.m,
    )


def station_ecef(stations: tuple[Station, ...] | list[Station]) -> NDArray[np.float64]:
    """Absolute ITRF (ECEF) positions in metres, shape (N, 3)."""
    loc = station_locations(stations)
    return np.stack([loc.x.to_value(u.m), loc.y.to_value(u.m), loc.z.to_value(u.m)], axis=-1)


# The location the correlator writes into every file header (docs/instrument.md). Its meridian is
# where the data are fringestopped, so "hour angle 0" is measured here (science.pointing).
CORRELATOR_LATITUDE_DEG = 37.2334051
CORRELATOR_LONGITUDE_DEG = -118.2830
CORRELATOR_ALTITUDE_M = 1188.05


@functools.cache
def correlator_location() -> EarthLocation:
    """The site in the correlator's file headers, whose meridian the data are fringestopped to."""
    return EarthLocation.from_geodetic(
        CORRELATOR_LONGITUDE_DEG * u.deg, CORRELATOR_LATITUDE_DEG * u.deg, CORRELATOR_ALTITUDE_M * u.m
    )


@functools.cache
def array_location() -> EarthLocation:
    """The array reference location: the mean ECEF position of all stations.

    This is the single definition of "where DSA-110 is"; everything else takes it from here.
    """
    x, y, z = station_ecef(load_stations()).mean(axis=0)
    return EarthLocation.from_geocentric(x, y, z, unit=u.m)


def station_enu(
    stations: tuple[Station, ...] | list[Station], reference: EarthLocation | None = None
) -> NDArray[np.float64]:
    """East, north, up positions in metres relative to ``reference`` (default: the array location)."""
    ref = reference if reference is not None else array_location()
    lat, lon = ref.lat.to_value(u.rad), ref.lon.to_value(u.rad)
    origin = np.array([ref.x.to_value(u.m), ref.y.to_value(u.m), ref.z.to_value(u.m)])
    offset = station_ecef(stations) - origin
    rotation = np.array(
        [
            [-np.sin(lon), np.cos(lon), 0.0],
            [-np.sin(lat) * np.cos(lon), -np.sin(lat) * np.sin(lon), np.cos(lat)],
            [np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)],
        ]
    )
    return np.asarray(offset @ rotation.T, dtype=float)


def select_stations(n_antennas: int = 24) -> tuple[Station, ...]:
    """A deterministic subset of ``n_antennas`` stations spread over both core arms and the outriggers.

    About one in six is an outrigger, so that a small array still has long baselines and a compact PSF.
    """
    stations = load_stations()
    if not 3 <= n_antennas <= N_STATIONS:
        raise ValueError(f"n_antennas must be in 3..{N_STATIONS}, got {n_antennas}")
    if n_antennas == N_STATIONS:
        return stations
    core = [s for s in stations if s.is_core]
    outriggers = [s for s in stations if not s.is_core]
    n_out = min(len(outriggers), max(1, round(n_antennas / 6)))
    n_core = n_antennas - n_out
    if n_core > len(core):
        n_core, n_out = len(core), n_antennas - len(core)
    pick_core = np.unique(np.round(np.linspace(0, len(core) - 1, n_core)).astype(int))
    pick_out = np.unique(np.round(np.linspace(0, len(outriggers) - 1, n_out)).astype(int))
    chosen = [core[i] for i in pick_core] + [outriggers[i] for i in pick_out]
    return tuple(sorted(chosen, key=lambda s: s.number))


def stations_by_number(numbers: list[int]) -> tuple[Station, ...]:
    """The stations with the given station numbers (1–117), in ascending order."""
    by_number = {s.number: s for s in load_stations()}
    unknown = sorted(set(numbers) - set(by_number))
    if unknown:
        raise ValueError(f"unknown station numbers {unknown}; valid numbers are 1..{N_STATIONS}")
    return tuple(by_number[n] for n in sorted(set(numbers)))
