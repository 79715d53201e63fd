"""The DSA-110 primary beam: an Airy pattern of a 4.65 m dish."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import j1

from science.constants import DISH_DIAMETER_M

SPEED_OF_LIGHT_M_S = 299_792_458.0


def airy_response(offset_rad: ArrayLike, freq_hz: ArrayLike) -> NDArray[np.float64]:
    """Power response (1 at the pointing centre) at angular ``offset_rad`` and ``freq_hz``.

    Broadcasts over both arguments: (2·J1(x)/x)² with x = π·D·sin(θ)/λ.
    """
    theta = np.asarray(offset_rad, dtype=float)
    wavelength = SPEED_OF_LIGHT_M_S / np.asarray(freq_hz, dtype=float)
    x = np.pi * DISH_DIAMETER_M * np.sin(theta) / wavelength
    with np.errstate(invalid="ignore", divide="ignore"):
        response = np.where(np.abs(x) < 1e-8, 1.0, (2.0 * j1(x) / x) ** 2)
    return np.asarray(response, dtype=float)


def fwhm_rad(freq_hz: float) -> float:
    """Full width at half maximum of the power beam at ``freq_hz`` (about 2.7° at 1.4 GHz)."""
    # The Airy power pattern falls to one half at x = 1.6163.
    wavelength = SPEED_OF_LIGHT_M_S / freq_hz
    return float(2.0 * np.arcsin(1.6163 * wavelength / (np.pi * DISH_DIAMETER_M)))


def drift_response(
    ra_deg: ArrayLike, dec_deg: ArrayLike, track_ra_deg: ArrayLike, track_dec_deg: float, freq_hz: float
) -> NDArray[np.float64]:
    """Response of a drift scan at ICRS (ra_deg, dec_deg): the Airy pattern averaged over the beam's track.

    The dishes stay fixed while the sky drifts, so the beam centre moves along the pointing declination at
    the sidereal rate; ``track_ra_deg`` holds its RA at each integration. A 24-integration tile drifts
    ~1.3°·cos(dec), so the static beam at the mid-time centre overstates the response (by ~3 % at the
    centre of a tile at +30°). With one track point this is the static beam.
    """
    ra, dec = np.radians(np.asarray(ra_deg, dtype=float)), np.radians(np.asarray(dec_deg, dtype=float))
    pixels = np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)
    track = np.radians(np.atleast_1d(np.asarray(track_ra_deg, dtype=float)))
    d0 = np.radians(track_dec_deg)
    total = np.zeros(pixels.shape[:-1])
    for ra0 in track:
        centre = np.array([np.cos(d0) * np.cos(ra0), np.cos(d0) * np.sin(ra0), np.sin(d0)])
        total += airy_response(np.arccos(np.clip(pixels @ centre, -1.0, 1.0)), freq_hz)
    return np.asarray(total / track.size)
