"""Where a drift-scan observation looks: the meridian at the pointing declination.

The simulator aims its fixed beam here and the converter phases to it, so both take it from this
one place. "On the meridian" means zero apparent hour angle at the correlator's site (the location in its
file headers, whose meridian it fringestops to); source geometry uses the array's own reference location.

The correlator writes the pointing declination as an *apparent* (true equator and equinox of date)
declination. :func:`pointing_icrs` is the one conversion of that header value to an ICRS position;
conversion, calibration, imaging, mosaics and photometry all see its result through the MS phase centre.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from astropy import units as u
from astropy.coordinates import TETE, AltAz, EarthLocation, SkyCoord
from astropy.time import Time
from astropy.utils import iers

from science.constants import SIDEREAL_DAY_S
from science.stations import array_location, correlator_location


@contextmanager
def offline_earth_rotation() -> Iterator[None]:
    """Never fetch IERS tables: workers may be offline, and the predictive values are ample here.

    UT1 − UTC is below 0.9 s, so the fallback moves a meridian by at most ~13″ in right ascension,
    against a primary beam of about 3°; every caller of this module sees the same values.
    """
    with iers.conf.set_temp("auto_download", False), iers.conf.set_temp("iers_degraded_accuracy", "warn"):
        yield


def meridian_icrs(time: Time, dec_deg: float, location: EarthLocation | None = None) -> tuple[float, float]:
    """ICRS (ra_deg, dec_deg) of the point at ICRS declination ``dec_deg`` that transits at ``time``.

    The apparent sidereal time alone would be off by precession (a fraction of a degree), so the
    right ascension is corrected until the apparent hour angle is zero.
    """
    with offline_earth_rotation():
        loc = location if location is not None else correlator_location()
        lst = time.sidereal_time("apparent", longitude=loc.lon).rad
        frame = TETE(obstime=time, location=loc)
        ra = float(lst)
        for _ in range(3):
            apparent = SkyCoord(ra * u.rad, dec_deg * u.deg, frame="icrs").transform_to(frame)
            hour_angle = (lst - apparent.ra.rad + np.pi) % (2 * np.pi) - np.pi
            ra += hour_angle
        return float(np.degrees(ra) % 360.0), float(dec_deg)


def pointing_icrs(
    time: Time, apparent_dec_deg: float, location: EarthLocation | None = None
) -> tuple[float, float]:
    """ICRS (ra_deg, dec_deg) of the point at apparent hour angle 0 and apparent dec ``apparent_dec_deg``.

    This reads the correlator's ``phase_center_dec`` right: that value is of date, not ICRS, and the two
    differ by up to ~0.15° (precession since J2000).
    """
    with offline_earth_rotation():
        loc = location if location is not None else correlator_location()
        lst = time.sidereal_time("apparent", longitude=loc.lon)
        apparent = SkyCoord(ra=lst, dec=apparent_dec_deg * u.deg, frame=TETE(obstime=time, location=loc))
        icrs = apparent.transform_to("icrs")
        return float(icrs.ra.deg % 360.0), float(icrs.dec.deg)


def apparent_dec_deg(
    ra_deg: float, dec_deg: float, time: Time, location: EarthLocation | None = None
) -> float:
    """Apparent (of date) declination of an ICRS position: what the correlator would write for it."""
    with offline_earth_rotation():
        loc = location if location is not None else correlator_location()
        apparent = SkyCoord(ra_deg * u.deg, dec_deg * u.deg, frame="icrs").transform_to(
            TETE(obstime=time, location=loc)
        )
        return float(apparent.dec.deg)


def hour_angle_deg(ra_deg: float, dec_deg: float, time: Time, location: EarthLocation | None = None) -> float:
    """Apparent hour angle, in degrees within (-180, 180], of an ICRS position at ``time``."""
    with offline_earth_rotation():
        loc = location if location is not None else correlator_location()
        lst = time.sidereal_time("apparent", longitude=loc.lon).rad
        apparent = SkyCoord(ra_deg * u.deg, dec_deg * u.deg, frame="icrs").transform_to(
            TETE(obstime=time, location=loc)
        )
        return float(np.degrees((lst - apparent.ra.rad + np.pi) % (2 * np.pi) - np.pi))


def transit_time(ra_deg: float, dec_deg: float, near: Time, location: EarthLocation | None = None) -> Time:
    """When an ICRS position crosses the meridian (apparent hour angle 0), within half a day of ``near``."""
    when = near
    for _ in range(3):
        hour_angle = hour_angle_deg(ra_deg, dec_deg, when, location)
        when = when - hour_angle / 360.0 * SIDEREAL_DAY_S * u.s
    return when


def next_transit(ra_deg: float, dec_deg: float, after: Time, location: EarthLocation | None = None) -> Time:
    """The first meridian transit of an ICRS position at or after ``after``."""
    when = transit_time(ra_deg, dec_deg, after, location)
    if when < after:
        when = transit_time(ra_deg, dec_deg, when + SIDEREAL_DAY_S * u.s, location)
    return when


def enu_unit_vectors(coords: SkyCoord, times: Time, location: EarthLocation | None = None) -> np.ndarray:
    """East, north, up unit vectors of ``coords`` (shape S) at ``times`` (shape T), shape (S, T, 3)."""
    loc = location if location is not None else array_location()
    frame = AltAz(obstime=times[np.newaxis, :], location=loc)
    altaz = coords[:, np.newaxis].transform_to(frame)
    alt, az = altaz.alt.rad, altaz.az.rad
    return np.stack([np.cos(alt) * np.sin(az), np.cos(alt) * np.cos(az), np.sin(alt)], axis=-1)
