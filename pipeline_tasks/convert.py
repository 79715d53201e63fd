"""Convert one observation's 16 UVH5 subband files into a Measurement Set phased to the meridian.

Steps: check the group against the incomplete-group policy, read every subband (``file_type="uvh5"``:
pyuvdata does not recognise ``.hdf5``), check that the subbands agree, concatenate along frequency in
ascending order, phase to the meridian at the mid-time at the pointing declination, and write the MS to
a temporary name in the output directory that is renamed into place only once complete.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections import Counter
from enum import StrEnum
from pathlib import Path
from typing import Literal

import numpy as np
import structlog
from astropy.time import Time
from pydantic import BaseModel
from pyuvdata import UVData

from pipeline_tasks.errors import (
    ChannelMismatchError,
    CorruptFileError,
    GroupNotReadyError,
    MissingSubbandError,
    SubbandMismatchError,
)
from pipeline_tasks.grouping import SubbandGroup
from pipeline_tasks.pointing import meridian_icrs

log = structlog.get_logger(__name__)

# The pointing declination, in radians, as the correlator writes it into each file's header.
POINTING_DEC_KEY = "phase_center_dec"


class IncompletePolicy(StrEnum):
    """What to do with a group that lacks some subbands."""

    WAIT = "wait"  # not ready yet: raise GroupNotReadyError (retryable)
    SKIP = "skip"  # give up on it: raise MissingSubbandError (permanent)
    FLAG = "flag"  # convert anyway, with the missing subbands' channels present but flagged


class ConversionRecord(BaseModel):
    """What was written, for the ``ms_index`` table."""

    ms_path: Path
    group_id: str
    start_mjd: float
    end_mjd: float
    mid_mjd: float
    ra_deg: float
    dec_deg: float
    subbands_present: list[str]
    subbands_missing: list[str]
    n_antennas: int
    n_channels: int
    status: Literal["complete", "partial"]


def ms_path_for(group: SubbandGroup, output_dir: Path) -> Path:
    """Where the Measurement Set of ``group`` goes."""
    return Path(output_dir) / f"{group.group_id}.ms"


def convert_group(
    group: SubbandGroup,
    output_dir: Path,
    policy: IncompletePolicy = IncompletePolicy.WAIT,
    overwrite: bool = False,
) -> ConversionRecord:
    """Convert ``group`` to ``<output_dir>/<group_id>.ms`` and describe the result.

    Raises GroupNotReadyError or MissingSubbandError for an incomplete group (policies wait, skip),
    CorruptFileError, ChannelMismatchError or SubbandMismatchError for bad input, and FileExistsError
    if the MS exists and ``overwrite`` is false. On any error no MS is left behind.
    """
    bound = log.bind(group_id=group.group_id)
    if not group.is_complete and policy is IncompletePolicy.WAIT:
        raise GroupNotReadyError(group.group_id, group.missing)
    if not group.is_complete and policy is IncompletePolicy.SKIP:
        raise MissingSubbandError(group.group_id, group.missing)
    output_dir = Path(output_dir)
    final = ms_path_for(group, output_dir)
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final} already exists; pass overwrite to replace it")

    uvd = combine_subbands(group)
    mid = Time(np.mean(np.unique(uvd.time_array)), format="jd", scale="utc")
    dec_deg = float(np.degrees(uvd.extra_keywords[POINTING_DEC_KEY]))
    ra_deg, dec_deg = meridian_icrs(mid, dec_deg)
    uvd.phase(ra=np.radians(ra_deg), dec=np.radians(dec_deg), cat_name=group.group_id, phase_frame="icrs")

    output_dir.mkdir(parents=True, exist_ok=True)
    partial = output_dir / f".{final.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        # fix_autos zeroes the rounding-level imaginary parts real correlators leave on autocorrelations.
        uvd.write_ms(str(partial), fix_autos=True, clobber=False)
        _move_into_place(partial, final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise

    half_int = float(np.mean(uvd.integration_time)) / 2.0 / 86400.0
    times = Time(np.unique(uvd.time_array), format="jd")
    record = ConversionRecord(
        ms_path=final,
        group_id=group.group_id,
        start_mjd=float(times.mjd.min() - half_int),
        end_mjd=float(times.mjd.max() + half_int),
        mid_mjd=float(mid.mjd),
        ra_deg=ra_deg,
        dec_deg=dec_deg,
        subbands_present=group.present,
        subbands_missing=group.missing,
        n_antennas=int(np.unique(np.concatenate([uvd.ant_1_array, uvd.ant_2_array])).size),
        n_channels=int(uvd.Nfreqs),
        status="complete" if group.is_complete else "partial",
    )
    bound.info("converted group", ms=str(final), missing=group.missing, n_channels=record.n_channels)
    return record


def combine_subbands(group: SubbandGroup) -> UVData:
    """Read and check the subbands of ``group`` and join them, frequencies ascending, antennas 0..N−1.

    Missing subbands (policy flag) are filled with flagged, zero-weight channels at their frequencies.
    """
    headers = {index: _read(path, read_data=False) for index, path in group.files.items()}
    _check_consistent(group, headers)
    parts = {index: _read(path, read_data=True) for index, path in group.files.items()}
    reference_index = min(parts)
    reference = parts[reference_index]
    for index in (i for i in range(16) if i not in parts):
        parts[index] = _flagged_stand_in(reference, reference_index, index)
    ordered = [parts[i] for i in sorted(parts)]
    uvd = ordered[0].fast_concat(ordered[1:], axis="freq", inplace=False) if len(ordered) > 1 else ordered[0]
    uvd.reorder_freqs(channel_order="freq")
    _number_antennas_compactly(uvd)
    return uvd


def _read(path: Path, read_data: bool) -> UVData:
    if not Path(path).is_file():
        raise CorruptFileError(path, "file does not exist")
    try:
        return UVData.from_file(str(path), file_type="uvh5", read_data=read_data)
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        # h5py reports truncation as OSError or KeyError; pyuvdata's own checks raise ValueError.
        raise CorruptFileError(path, f"{type(exc).__name__}: {exc}") from exc


def _check_consistent(group: SubbandGroup, headers: dict[int, UVData]) -> None:
    counts = Counter(h.Nfreqs for h in headers.values())
    expected = counts.most_common(1)[0][0]
    for index, header in headers.items():
        path = group.files[index]
        if header.Nfreqs != expected:
            raise ChannelMismatchError(path, header.Nfreqs, expected)
        if POINTING_DEC_KEY not in header.extra_keywords:
            raise SubbandMismatchError(path, f"header lacks extra_keywords[{POINTING_DEC_KEY!r}]")
    first_index = min(headers)
    first = headers[first_index]
    for index, header in headers.items():
        path = group.files[index]
        if not np.allclose(np.unique(header.time_array), np.unique(first.time_array), rtol=0, atol=1e-7):
            raise SubbandMismatchError(path, f"integration times differ from {group.files[first_index].name}")
        if not np.array_equal(np.unique(header.baseline_array), np.unique(first.baseline_array)):
            raise SubbandMismatchError(path, f"baselines differ from {group.files[first_index].name}")
        if not np.array_equal(header.polarization_array, first.polarization_array):
            raise SubbandMismatchError(path, f"polarisations differ from {group.files[first_index].name}")
        if not np.isclose(header.extra_keywords[POINTING_DEC_KEY], first.extra_keywords[POINTING_DEC_KEY]):
            raise SubbandMismatchError(path, "pointing declination differs from the other subbands")


def _flagged_stand_in(reference: UVData, reference_index: int, index: int) -> UVData:
    """A copy of ``reference`` moved to subband ``index``'s frequencies, with every sample flagged.

    Subbands are contiguous and sb00 is the highest: subband k sits (k − ref)·bandwidth below the reference.
    """
    stand_in = reference.copy()
    bandwidth = float(np.sum(reference.channel_width))
    stand_in.freq_array = reference.freq_array - (index - reference_index) * bandwidth
    stand_in.data_array = np.zeros_like(reference.data_array)
    stand_in.flag_array = np.ones_like(reference.flag_array)
    stand_in.nsample_array = np.zeros_like(reference.nsample_array)
    return stand_in


def _number_antennas_compactly(uvd: UVData) -> None:
    """Renumber antennas 0..N−1 in order of their original numbers; names keep the station identity.

    write_ms makes one ANTENNA row per number up to the largest, and fills gaps with unnamed antennas at the
    Earth's centre (the same trap as numbering from 1), so a 24-station subset must not keep sparse numbers.
    """
    numbers = np.asarray(uvd.telescope.antenna_numbers)
    ordered = np.sort(numbers)
    if np.array_equal(ordered, np.arange(ordered.size)):
        return
    uvd.telescope.antenna_numbers = np.searchsorted(ordered, numbers)
    uvd.ant_1_array = np.searchsorted(ordered, uvd.ant_1_array)
    uvd.ant_2_array = np.searchsorted(ordered, uvd.ant_2_array)
    uvd.baseline_array = uvd.antnums_to_baseline(uvd.ant_1_array, uvd.ant_2_array)


def _move_into_place(partial: Path, final: Path) -> None:
    """Rename ``partial`` to ``final``; an existing ``final`` is moved aside first and removed after."""
    if not final.exists():
        os.rename(partial, final)
        return
    old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
    os.rename(final, old)
    os.rename(partial, final)
    shutil.rmtree(old, ignore_errors=True)
