"""The DSA-110 primary beam: an Airy pattern of a 4.65 m dish."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import j1

from pipeline_tasks.constants import DISH_DIAMETER_M

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
