"""One subband file on disk: reading either layout, and writing the correlator's own.

The real DSA-110 writer (docs/instrument.md) produces old-style UVH5:
no phase-centre catalogue, ``phase_type = "drift"`` although the data are fringestopped to the meridian,
float32 uvw, ``freq_array`` shaped (1, Nfreqs) with descending channels, a scalar ``channel_width``, a
117-antenna table named "1"…"117" with ~96 correlated antennas in correlator order, ``nsamples`` 96, no flags
and the telescope's location in the header. :func:`write_correlator_file` writes exactly that, for the
simulator; :func:`read_subband` reads it (and pyuvdata's own newer layout) into a checked UVData.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np
from astropy import units as u
from numpy.typing import NDArray
from pyuvdata import UVData

from science.errors import CorruptFileError
from science.stations import (
    CORRELATOR_ALTITUDE_M,
    CORRELATOR_LATITUDE_DEG,
    CORRELATOR_LONGITUDE_DEG,
    correlator_location,
)

# What the correlator puts in the header (docs/instrument.md); the file's own location is what readers trust.
CORRELATOR_TELESCOPE = "OVRO_MMA"
CORRELATOR_NSAMPLES = 96.0
# The pointing declination, in radians, as the correlator writes it into extra_keywords.
POINTING_DEC_KEY = "phase_center_dec"

_REQUIRED_HEADER = (
    "time_array",
    "ant_1_array",
    "ant_2_array",
    "uvw_array",
    "freq_array",
    "antenna_positions",
)


def read_subband(path: Path, read_data: bool = True) -> UVData:
    """Read one subband file, in the correlator's layout or pyuvdata's, and check it.

    Float32 uvw (the correlator's) are cast to float64 before pyuvdata's check, which refuses them.
    Only what is really wrong with the file (unreadable HDF5, missing datasets, wrong shapes) raises
    :class:`CorruptFileError`, and its message names the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise CorruptFileError(path, "file does not exist")
    _check_structure(path)
    uvd = UVData()
    try:
        uvd.read(
            str(path),
            file_type="uvh5",
            read_data=read_data,
            run_check=False,
            data_array_dtype=np.complex64,
        )
    except (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError) as exc:
        raise CorruptFileError(path, f"{type(exc).__name__}: {exc}") from exc
    uvd.uvw_array = np.asarray(uvd.uvw_array, dtype=np.float64)
    if read_data:
        _check_shapes(path, uvd)
    try:
        with warnings.catch_warnings():
            # Fringestopped files hold uvw towards the meridian, not the zenith uvw expected of "drift".
            warnings.filterwarnings("ignore", message="The uvw_array does not match the expected values")
            uvd.check(check_extra=True, run_check_acceptability=True, strict_uvw_antpos_check=False)
    except ValueError as exc:
        raise CorruptFileError(path, f"fails pyuvdata's check: {exc}") from exc
    return uvd


def _check_structure(path: Path) -> None:
    try:
        with h5py.File(path, "r") as handle:
            if "Header" not in handle or "Data" not in handle:
                raise CorruptFileError(path, "no Header or Data group: not a UVH5 file")
            header = handle["Header"]
            missing = [name for name in _REQUIRED_HEADER if name not in header]
            if missing:
                raise CorruptFileError(path, f"Header lacks {', '.join(missing)}")
            data = handle["Data"]
            missing = [name for name in ("visdata", "flags", "nsamples") if name not in data]
            if missing:
                raise CorruptFileError(path, f"Data lacks {', '.join(missing)}")
            n_blts = header["time_array"].shape[0]
            for name in ("visdata", "flags", "nsamples"):
                if data[name].shape[0] != n_blts:
                    raise CorruptFileError(
                        path, f"Data/{name} has {data[name].shape[0]} rows but Header/time_array has {n_blts}"
                    )
    except OSError as exc:
        # h5py reports a truncated or non-HDF5 file as OSError.
        raise CorruptFileError(path, f"not a readable HDF5 file ({exc})") from exc


def _check_shapes(path: Path, uvd: UVData) -> None:
    expected = (uvd.Nblts, uvd.Nfreqs, uvd.Npols)
    if uvd.data_array is None or uvd.data_array.shape != expected:
        shape = None if uvd.data_array is None else uvd.data_array.shape
        raise CorruptFileError(path, f"visibilities have shape {shape}, the header says {expected}")


def write_correlator_file(
    path: Path,
    *,
    times_jd: NDArray[np.float64],
    integration_s: float,
    ant_1: NDArray[np.int_],
    ant_2: NDArray[np.int_],
    uvw_m: NDArray[np.float64],
    freq_hz: NDArray[np.float64],
    channel_width_hz: float,
    visdata: NDArray[np.complex64],
    nsamples: NDArray[np.float32],
    antenna_positions_ecef: NDArray[np.float64],
    pointing_dec_rad: float,
    fringestopped: bool = True,
) -> None:
    """Write one subband file in the correlator's layout.

    ``visdata`` and ``nsamples`` are (Nblts, Nfreqs, 2) for XX and YY, rows time-major as the correlator
    writes them; ``ant_1``/``ant_2`` are antenna numbers (station − 1); ``uvw_m`` is (Nblts, 3).
    ``antenna_positions_ecef`` holds all 117 stations, absolute ECEF metres. ``fringestopped=False`` writes
    the same layout without the fringestop keywords (for data that are truly unprojected).
    """
    n_blts, n_freqs, n_pols = visdata.shape
    n_times = np.unique(times_jd).size
    n_ants_telescope = antenna_positions_ecef.shape[0]
    location = correlator_location()
    origin = np.array([location.x.to_value(u.m), location.y.to_value(u.m), location.z.to_value(u.m)])
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    with h5py.File(path, "w") as handle:
        header = handle.create_group("Header")
        header["latitude"] = CORRELATOR_LATITUDE_DEG
        header["longitude"] = CORRELATOR_LONGITUDE_DEG
        header["altitude"] = CORRELATOR_ALTITUDE_M
        header["telescope_name"] = np.bytes_(CORRELATOR_TELESCOPE)
        header["instrument"] = np.bytes_("DSA")
        header["object_name"] = np.bytes_("search")
        header["history"] = np.bytes_(
            f"written by the dsa110-contimg simulator in the correlator layout on {stamp}"
        )
        header["phase_type"] = np.bytes_("drift")
        header["phase_center_app_dec"] = pointing_dec_rad
        header["Nants_data"] = np.unique(np.concatenate([ant_1, ant_2])).size
        header["Nants_telescope"] = n_ants_telescope
        header["antenna_diameters"] = np.full(n_ants_telescope, 4.65)
        header["ant_1_array"] = np.asarray(ant_1, dtype=np.int64)
        header["ant_2_array"] = np.asarray(ant_2, dtype=np.int64)
        header["antenna_names"] = np.array([f"{n + 1}" for n in range(n_ants_telescope)], dtype="S4")
        header["antenna_numbers"] = np.arange(n_ants_telescope)
        header["Nbls"] = n_blts // n_times
        header["Nblts"] = n_blts
        header["Nfreqs"] = n_freqs
        header["Npols"] = n_pols
        header["Ntimes"] = n_times
        header["Nspws"] = 1
        header["uvw_array"] = np.asarray(uvw_m, dtype=np.float32)
        header["time_array"] = np.asarray(times_jd, dtype=np.float64)
        header["integration_time"] = np.full(n_blts, integration_s, dtype=np.float64)
        header["freq_array"] = np.asarray(freq_hz, dtype=np.float64)[np.newaxis, :]
        header["channel_width"] = float(channel_width_hz)
        header["spw_array"] = np.array([1])
        header["polarization_array"] = np.array([-5, -6])
        header["antenna_positions"] = antenna_positions_ecef - origin
        extra = header.create_group("extra_keywords")
        extra[POINTING_DEC_KEY] = pointing_dec_rad
        if fringestopped:
            extra["ha_phase_center"] = 0.0
            extra["phase_center_epoch"] = "HADEC"
            extra["fs_table"] = np.bytes_("fringestopping_table.npz")
        data = handle.create_group("Data")
        data["visdata"] = np.asarray(visdata, dtype=np.complex64)[:, np.newaxis]
        data["flags"] = np.zeros((n_blts, 1, n_freqs, n_pols), dtype=bool)
        data["nsamples"] = np.asarray(nsamples, dtype=np.float32)[:, np.newaxis]
