"""The correlator's fringestopping: towards hour angle 0 at the pointing declination.

The DSA-110 correlator phases every integration to the meridian at the (apparent) pointing declination and
stores the uvw towards that point, the same for every integration. With pyuvdata's sign convention
(docs/instrument.md) a fringestopped visibility is the raw one times exp(−2πi·w·ν/c); undoing it multiplies by
exp(+2πi·w·ν/c) with the file's own w and leaves raw (unprojected) data that pyuvdata can phase anywhere.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from pyuvdata import UVData

from science.beam import SPEED_OF_LIGHT_M_S

# What the correlator writes into extra_keywords when it has fringestopped the data.
EPOCH_KEY = "phase_center_epoch"
FRINGESTOP_EPOCH = "HADEC"
FS_TABLE_KEY = "fs_table"


def is_fringestopped(uvd: UVData) -> bool:
    """True when the header says the data were fringestopped to the meridian (HADEC epoch or an fs_table)."""
    extra = uvd.extra_keywords
    epoch = extra.get(EPOCH_KEY)
    if isinstance(epoch, bytes):
        epoch = epoch.decode()
    return str(epoch).upper() == FRINGESTOP_EPOCH or FS_TABLE_KEY in extra


def uvw_basis(direction_enu: NDArray[np.float64], latitude_rad: float) -> NDArray[np.float64]:
    """Rows û, v̂, ŵ (east–north–up components) for a phase centre in direction ``direction_enu``.

    ŵ points at the centre, û is perpendicular to it and to the celestial pole (towards east), v̂ completes
    the right-handed set (towards north).
    """
    w_hat = np.asarray(direction_enu, dtype=np.float64) / np.linalg.norm(direction_enu)
    pole = np.array([0.0, np.cos(latitude_rad), np.sin(latitude_rad)])
    u_hat = np.cross(pole, w_hat)
    u_hat /= np.linalg.norm(u_hat)
    v_hat = np.cross(w_hat, u_hat)
    return np.stack([u_hat, v_hat, w_hat])


def fringestop_phase(w_m: NDArray[np.floating], freq_hz: NDArray[np.float64]) -> NDArray[np.complex128]:
    """exp(−2πi·w·ν/c), shape (Nrows, Nfreqs): the factor the correlator applied."""
    turns = np.asarray(w_m, dtype=np.float64)[:, None] * (np.asarray(freq_hz)[None, :] / SPEED_OF_LIGHT_M_S)
    return np.asarray(np.exp(-2j * np.pi * turns))


def undo_fringestop(uvd: UVData) -> None:
    """Turn fringestopped data into raw unprojected data, in place, using the file's own uvw.

    Afterwards the uvw are recomputed from the antenna positions, as pyuvdata expects of unprojected data.
    """
    freqs = np.asarray(uvd.freq_array).reshape(-1)
    correction = np.conj(fringestop_phase(uvd.uvw_array[:, 2], freqs))
    uvd.data_array *= correction[:, :, None].astype(uvd.data_array.dtype)
    uvd.set_uvws_from_antenna_positions()
