"""Where a drift-scan observation looks: the meridian at the pointing declination.

The simulator aims its fixed beam here and the converter phases to it, so both take it from this
one place. "On the meridian" means zero apparent hour angle at the array.
"""

from __future__ import annotations

import numpy as np
from astropy import units as u
from astropy.coordinates import TETE, AltAz, EarthLocation, SkyCoord
from astropy.time import Time

from pipeline_tasks.stations import array_location


def meridian_icrs(time: Time, dec_deg: float, location: EarthLocation | None = None) -> tuple[float, float]:
    """ICRS (ra_deg, dec_deg) of the point at ICRS declination ``dec_deg`` that transits at ``time``.

    The apparent sidereal time alone would be off by precession (a fraction of a degree), so the
    right ascension is corrected until the apparent hour angle is zero.
    """
    loc = location if location is not None else array_location()
    lst = time.sidereal_time("apparent", longitude=loc.lon).rad
    frame = TETE(obstime=time, location=loc)
    ra = float(lst)
    for _ in range(3):
        apparent = SkyCoord(ra * u.rad, dec_deg * u.deg, frame="icrs").transform_to(frame)
        hour_angle = (lst - apparent.ra.rad + np.pi) % (2 * np.pi) - np.pi
        ra += hour_angle
    return float(np.degrees(ra) % 360.0), float(dec_deg)


def hour_angle_deg(ra_deg: float, dec_deg: float, time: Time, location: EarthLocation | None = None) -> float:
    """Apparent hour angle, in degrees within (-180, 180], of an ICRS position at ``time``."""
    loc = location if location is not None else array_location()
    lst = time.sidereal_time("apparent", longitude=loc.lon).rad
    apparent = SkyCoord(ra_deg * u.deg, dec_deg * u.deg, frame="icrs").transform_to(
        TETE(obstime=time, location=loc)
    )
    return float(np.degrees((lst - apparent.ra.rad + np.pi) % (2 * np.pi) - np.pi))


def enu_unit_vectors(coords: SkyCoord, times: Time, location: EarthLocation | None = None) -> np.ndarray:
    """East, north, up unit vectors of ``coords`` (shape S) at ``times`` (shape T), shape (S, T, 3)."""
    loc = location if location is not None else array_location()
    frame = AltAz(obstime=times[np.newaxis, :], location=loc)
    altaz = coords[:, np.newaxis].transform_to(frame)
    alt, az = altaz.alt.rad, altaz.az.rad
    return np.stack([np.cos(alt) * np.sin(az), np.cos(alt) * np.cos(az), np.sin(alt)], axis=-1)
