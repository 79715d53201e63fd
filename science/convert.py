"""Convert one observation's 16 UVH5 subband files into a flagged Measurement Set phased to the meridian.

Steps: check the group against the incomplete-group policy; read every subband in the correlator's layout
(:mod:`science.subband_file`) and undo its fringestop with its own uvw
(:mod:`science.fringestop`); join the subbands on one time grid, frequencies ascending, flagging
what a shifted, short or mis-pointed subband lacks; phase to the ICRS position of the meridian at the
apparent pointing declination at mid-time (:func:`science.pointing.pointing_icrs`); flag
(:mod:`science.flagging`); and write the MS to a temporary name that is renamed into place only
once complete. The MS history records how the data were phased and flagged.
"""

from __future__ import annotations

import errno
import faulthandler
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
from numpy.typing import NDArray
from pydantic import BaseModel, Field
from pyuvdata import UVData

from science.constants import N_SUBBANDS, TELESCOPE_NAME, subband_name
from science.errors import (
    ChannelMismatchError,
    GroupNotReadyError,
    MissingSubbandError,
    SubbandMismatchError,
)
from science.flagging import FlagSummary, flag_observation
from science.fringestop import is_fringestopped, undo_fringestop
from science.grouping import SubbandGroup
from science.pointing import pointing_icrs
from science.subband_file import POINTING_DEC_KEY, read_subband

log = structlog.get_logger(__name__)

# Subbands whose header declinations differ by more than this are not from the same pointing.
DEC_TOLERANCE_DEG = 0.01
# An integration of a shifted subband joins the group's grid when its centre is within this of a slot.
ALIGN_TOLERANCE_S = 1.0
# How the C library (and so casacore) says a disk or quota is full.
NO_SPACE = "No space left on device"


class IncompletePolicy(StrEnum):
    """What to do with a group that lacks some subbands."""

    WAIT = "wait"  # not ready yet: raise GroupNotReadyError (retryable)
    SKIP = "skip"  # give up on it: raise MissingSubbandError (permanent)
    FLAG = "flag"  # convert anyway, with the missing subbands' channels present but flagged


class Phasing(StrEnum):
    """How the files were phased when they arrived, and so what conversion undid."""

    FRINGESTOPPED = "fringestopped"  # the correlator's HA=0 fringestop, undone with each file's uvw
    UNPROJECTED = "unprojected"  # raw drift data, phased directly


class ConversionRecord(BaseModel):
    """What was written, for the ``ms_index`` table."""

    ms_path: Path
    group_id: str
    start_mjd: float
    end_mjd: float
    mid_mjd: float
    ra_deg: float
    dec_deg: float
    pointing_dec_apparent_deg: float
    phasing: Phasing
    subbands_present: list[str]
    subbands_missing: list[str]
    subbands_flagged: dict[str, str] = Field(
        default_factory=dict, description="Subbands converted as flagged stand-ins, and why."
    )
    notes: list[str] = Field(default_factory=list)
    flags: FlagSummary | None = None
    version: int = Field(default=1, description="2 and up: a reconversion that supersedes the earlier MS")
    n_antennas: int
    n_channels: int
    status: Literal["complete", "partial"]


def ms_path_for(group: SubbandGroup, output_dir: Path, version: int = 1) -> Path:
    """Where the Measurement Set of ``group`` goes; a reconversion (version 2 and up) gets its own name."""
    suffix = "" if version == 1 else f".v{version}"
    return Path(output_dir) / f"{group.group_id}{suffix}.ms"


def convert_group(
    group: SubbandGroup,
    output_dir: Path,
    policy: IncompletePolicy = IncompletePolicy.WAIT,
    overwrite: bool = False,
    flag: bool = True,
    rfi: bool = True,
    version: int = 1,
) -> ConversionRecord:
    """Convert ``group`` to ``<output_dir>/<group_id>.ms`` and describe the result.

    Raises GroupNotReadyError or MissingSubbandError for an incomplete group (policies wait, skip),
    CorruptFileError, ChannelMismatchError or SubbandMismatchError for bad input, and FileExistsError
    if the MS exists and ``overwrite`` is false. On any error no MS is left behind. ``flag`` runs the
    flagging of :mod:`science.flagging` (``rfi`` its AOFlagger step) before the MS is written.
    """
    bound = log.bind(group_id=group.group_id)
    if not group.is_complete and policy is IncompletePolicy.WAIT:
        raise GroupNotReadyError(group.group_id, group.missing)
    if not group.is_complete and policy is IncompletePolicy.SKIP:
        directories = {path.parent for path in group.files.values()}
        raise MissingSubbandError(
            group.group_id, group.missing, directories.pop() if len(directories) == 1 else None
        )
    output_dir = Path(output_dir)
    final = ms_path_for(group, output_dir, version)
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final} already exists; pass overwrite to replace it")

    joined = combine_subbands(group)
    uvd = joined.uvd
    mid = Time(np.mean(np.unique(uvd.time_array)), format="jd", scale="utc")
    ra_deg, dec_deg = pointing_icrs(mid, joined.pointing_dec_apparent_deg, uvd.telescope.location)
    uvd.phase(ra=np.radians(ra_deg), dec=np.radians(dec_deg), cat_name=group.group_id, phase_frame="icrs")
    flags = flag_observation(uvd, rfi=rfi) if flag else None
    _prepare_for_casa(uvd)
    uvd.history += (
        f"\ndsa110-contimg convert: {joined.phasing.value}; phased to ICRS ({ra_deg:.6f}, {dec_deg:.6f})"
        f" deg at MJD {mid.mjd:.6f} from apparent pointing dec {joined.pointing_dec_apparent_deg:.6f} deg"
        + (f"; flagged {flags.total_fraction:.4f} ({flags.rfi_flagger})" if flags else "; not flagged")
        + "".join(f"; {note}" for note in joined.notes)
    )

    output_dir.mkdir(parents=True, exist_ok=True)
    partial = output_dir / f".{final.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        _write_ms(uvd, partial)
        _move_into_place(partial, final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise

    half_int = float(np.mean(uvd.integration_time)) / 2.0 / 86400.0
    times = Time(np.unique(uvd.time_array), format="jd")
    stand_ins = set(joined.flagged_subbands) | set(group.missing)
    record = ConversionRecord(
        ms_path=final,
        group_id=group.group_id,
        start_mjd=float(times.mjd.min() - half_int),
        end_mjd=float(times.mjd.max() + half_int),
        mid_mjd=float(mid.mjd),
        ra_deg=ra_deg,
        dec_deg=dec_deg,
        pointing_dec_apparent_deg=joined.pointing_dec_apparent_deg,
        phasing=joined.phasing,
        subbands_present=group.present,
        subbands_missing=group.missing,
        subbands_flagged=joined.flagged_subbands,
        notes=joined.notes,
        flags=flags,
        version=version,
        n_antennas=int(uvd.telescope.Nants),
        n_channels=int(uvd.Nfreqs),
        status="partial" if stand_ins else "complete",
    )
    bound.info(
        "converted group",
        ms=str(final),
        phasing=joined.phasing.value,
        missing=group.missing,
        flagged_subbands=sorted(joined.flagged_subbands),
        n_channels=record.n_channels,
    )
    return record


class JoinedObservation(BaseModel, arbitrary_types_allowed=True):
    """The subbands of one group joined on one time grid, frequencies ascending, before phasing."""

    uvd: UVData
    phasing: Phasing
    pointing_dec_apparent_deg: float
    flagged_subbands: dict[str, str]
    notes: list[str]


def combine_subbands(group: SubbandGroup) -> JoinedObservation:
    """Read the subbands of ``group``, undo their fringestop, and join them on one time grid.

    Real groups are not always whole: a subband that started an integration late or stopped early keeps
    the integrations it shares with the others and the rest are flagged; a subband whose pointing
    declination disagrees with the majority is replaced by a flagged stand-in, as a missing one is. Only
    files that cannot be read, or disagree on channels, baselines or polarisations, fail the group.
    """
    headers = {index: read_subband(path, read_data=False) for index, path in group.files.items()}
    _check_consistent(group, headers)
    flagged: dict[str, str] = {}
    notes: list[str] = []
    decs = {i: float(np.degrees(h.extra_keywords[POINTING_DEC_KEY])) for i, h in headers.items()}
    majority_dec = Counter(round(d, 4) for d in decs.values()).most_common(1)[0][0]
    for index, dec in decs.items():
        if abs(dec - majority_dec) > DEC_TOLERANCE_DEG:
            flagged[subband_name(index)] = (
                f"pointing dec {dec:.4f}° differs from the group's {majority_dec:.4f}°"
            )
    usable = [i for i in headers if subband_name(i) not in flagged]
    grid = Counter(_time_key(headers[i]) for i in usable).most_common(1)[0][0]
    reference_index = min(i for i in usable if _time_key(headers[i]) == grid)
    fringestopped = {is_fringestopped(headers[i]) for i in usable}
    if len(fringestopped) > 1:
        raise SubbandMismatchError(group.files[usable[0]], "some subbands are fringestopped and some are not")
    phasing = Phasing.FRINGESTOPPED if fringestopped.pop() else Phasing.UNPROJECTED

    reference = _load(group.files[reference_index], phasing)
    grid_times = np.unique(reference.time_array)
    parts: dict[int, UVData] = {reference_index: reference}
    for index in usable:
        if index == reference_index:
            continue
        part = _load(group.files[index], phasing)
        aligned, note = _onto_grid(part, reference, grid_times)
        if note:
            notes.append(f"{subband_name(index)}: {note}")
        parts[index] = aligned
    dec = float(np.degrees(headers[reference_index].extra_keywords[POINTING_DEC_KEY]))
    for index in range(N_SUBBANDS):
        if index not in parts:
            parts[index] = _flagged_stand_in(reference, reference_index, index)
    ordered = [parts[i] for i in sorted(parts)]
    uvd = ordered[0].fast_concat(ordered[1:], axis="freq", inplace=False)
    uvd.reorder_freqs(channel_order="freq")
    _keep_correlated_antennas(uvd)
    return JoinedObservation(
        uvd=uvd,
        phasing=phasing,
        pointing_dec_apparent_deg=dec,
        flagged_subbands=flagged,
        notes=notes,
    )


def _time_key(header: UVData) -> tuple[float, ...]:
    return tuple(np.round(np.unique(header.time_array) * 86400.0, 0))


def _load(path: Path, phasing: Phasing) -> UVData:
    """One subband with raw unprojected data, baselines ant1 < ant2, rows time-major."""
    part = read_subband(path, read_data=True)
    if phasing is Phasing.FRINGESTOPPED:
        undo_fringestop(part)
    part.conjugate_bls("ant1<ant2")
    part.reorder_blts(order="time", minor_order="baseline")
    return part


def _onto_grid(part: UVData, reference: UVData, grid_times: NDArray[np.float64]) -> tuple[UVData, str]:
    """``part``'s data on ``reference``'s rows: integrations it lacks are flagged, extra ones dropped."""
    if np.array_equal(part.time_array, reference.time_array):
        return part, ""
    if not np.array_equal(np.unique(part.baseline_array), np.unique(reference.baseline_array)):
        raise SubbandMismatchError(Path(str(part.filename)), "baselines differ from the other subbands")
    aligned = _flagged_copy(reference, part.freq_array, part.channel_width)
    n_bls = reference.Nbls
    times = np.unique(part.time_array)
    step = float(np.median(np.diff(grid_times))) if grid_times.size > 1 else 1.0
    matched = 0
    for k, t in enumerate(times):
        slot = int(np.argmin(np.abs(grid_times - t)))
        if abs(grid_times[slot] - t) * 86400.0 > ALIGN_TOLERANCE_S:
            continue
        src = slice(k * n_bls, (k + 1) * n_bls)
        dst = slice(slot * n_bls, (slot + 1) * n_bls)
        aligned.data_array[dst] = part.data_array[src]
        aligned.flag_array[dst] = part.flag_array[src]
        aligned.nsample_array[dst] = part.nsample_array[src]
        matched += 1
    missing = grid_times.size - matched
    extra = times.size - matched
    note = f"{missing} of {grid_times.size} integrations missing (flagged)"
    if extra:
        note += f", {extra} outside the group's grid dropped"
    if matched == 0:
        note = (
            f"no integration within {ALIGN_TOLERANCE_S:g} s of the group's grid (step {step * 86400:.1f} s)"
        )
    return aligned, note


def _flagged_copy(
    reference: UVData, freq_array: NDArray[np.float64], channel_width: NDArray[np.float64]
) -> UVData:
    stand_in = reference.copy()
    stand_in.freq_array = np.array(freq_array, copy=True)
    stand_in.channel_width = np.array(channel_width, copy=True)
    stand_in.data_array = np.zeros_like(reference.data_array)
    stand_in.flag_array = np.ones_like(reference.flag_array)
    stand_in.nsample_array = np.zeros_like(reference.nsample_array)
    return stand_in


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
        if not np.array_equal(np.unique(header.baseline_array), np.unique(first.baseline_array)):
            raise SubbandMismatchError(path, f"baselines differ from {group.files[first_index].name}")
        if not np.array_equal(header.polarization_array, first.polarization_array):
            raise SubbandMismatchError(path, f"polarisations differ from {group.files[first_index].name}")


def _flagged_stand_in(reference: UVData, reference_index: int, index: int) -> UVData:
    """A copy of ``reference`` moved to subband ``index``'s frequencies, with every sample flagged.

    Subbands are contiguous and sb00 is the highest: subband k sits (k − ref)·bandwidth below the reference.
    """
    bandwidth = float(np.sum(np.abs(reference.channel_width)))
    return _flagged_copy(
        reference, reference.freq_array - (index - reference_index) * bandwidth, reference.channel_width
    )


def _keep_correlated_antennas(uvd: UVData) -> None:
    """Drop the antennas that carry no data and renumber the rest 0..N−1, named ``DSA-NNN``.

    The correlator's table lists all 117 stations (names "1".."117", numbers station − 1). write_ms makes one
    ANTENNA row per number up to the largest and fills gaps with unnamed antennas at the Earth's centre, so
    the MS must not keep sparse numbers; names keep the station identity.
    """
    correlated = np.unique(np.concatenate([uvd.ant_1_array, uvd.ant_2_array]))
    if uvd.telescope.Nants != correlated.size:
        uvd.select(antenna_nums=correlated, keep_all_metadata=False)
    numbers = np.asarray(uvd.telescope.antenna_numbers)
    uvd.telescope.antenna_names = [_station_name(str(n)) for n in uvd.telescope.antenna_names]
    ordered = np.sort(numbers)
    if np.array_equal(ordered, np.arange(ordered.size)):
        return
    uvd.telescope.antenna_numbers = np.searchsorted(ordered, numbers)
    uvd.ant_1_array = np.searchsorted(ordered, uvd.ant_1_array)
    uvd.ant_2_array = np.searchsorted(ordered, uvd.ant_2_array)
    uvd.baseline_array = uvd.antnums_to_baseline(uvd.ant_1_array, uvd.ant_2_array)


def _station_name(name: str) -> str:
    """ "7" (the correlator's) and "DSA-007" (ours) both become "DSA-007"."""
    digits = name.rsplit("-", 1)[-1]
    return f"DSA-{int(digits):03d}" if digits.isdigit() else name


def _prepare_for_casa(uvd: UVData) -> None:
    """Our telescope name, alt-az mounts and weights normalised to 1 for a full integration.

    The files say OVRO_MMA, whose entry in CASA's observatory table is wrong (docs/instrument.md);
    under our own name CASA takes the array position from the antennas, which carry the file's
    location. Without a mount type CASA warns once per row. The correlator's ``nsamples`` is 96 for a
    full integration, and CASA would take that as the weight.
    """
    uvd.telescope.name = TELESCOPE_NAME
    uvd.telescope.mount_type = ["alt-az"] * uvd.telescope.Nants
    unflagged = uvd.nsample_array[~uvd.flag_array]
    full = float(unflagged.max()) if unflagged.size else 1.0
    if full > 0 and full != 1.0:
        uvd.nsample_array = (uvd.nsample_array / full).astype(uvd.nsample_array.dtype)


def _write_ms(uvd: UVData, path: Path) -> None:
    """Write ``uvd`` as a Measurement Set at ``path`` in a forked child process.

    casacore does not raise when a write fails (on a full disk it aborts the whole process), so the
    write runs where that costs only the child. A failure raises here instead: OSError ENOSPC naming the
    path and the free space when the disk was full, RuntimeError with the child's last words otherwise.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            # An abort is expected here and reported through the pipe, not as a crash of the caller.
            faulthandler.disable()
            os.close(read_fd)
            os.dup2(write_fd, 2)
            # fix_autos zeroes the rounding-level imaginary parts real correlators leave on autocorrelations.
            uvd.write_ms(str(path), fix_autos=True, clobber=False)
            code = 0
        except BaseException as exc:
            os.write(write_fd, f"\n{type(exc).__name__}: {exc}".encode())
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        said = pipe.read().decode(errors="replace").strip()
    _, status = os.waitpid(pid, 0)
    if status == 0:
        return
    last = said.splitlines()[-1].strip() if said else f"exit status {status}"
    if NO_SPACE in said:
        free = shutil.disk_usage(path.parent).free
        raise OSError(
            errno.ENOSPC,
            f"no space left writing {path} ({free} bytes free on {path.parent}): {last}",
            str(path),
        )
    raise RuntimeError(f"writing {path} failed: {last}")


def _move_into_place(partial: Path, final: Path) -> None:
    """Rename ``partial`` to ``final``; an existing ``final`` is moved aside first and removed after."""
    if not final.exists():
        os.rename(partial, final)
        return
    old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
    os.rename(final, old)
    os.rename(partial, final)
    shutil.rmtree(old, ignore_errors=True)
