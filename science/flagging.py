"""Flagging before calibration: what the correlator leaves for us to flag.

Real files carry no flags at all (docs/instrument.md): NaNs sit unflagged in the last integration of a
session, dead antennas give zeros, and RFI is real. In order, on the joined observation:

1. non-finite and exactly-zero visibilities (the NaNs are zeroed too: CASA must never see them);
2. dead antennas: those with nothing left on any of their baselines;
3. integrations that are mostly flagged (a partial last integration) are flagged whole;
4. RFI, with AOFlagger's generic strategy run on each baseline's time × frequency plane.

The result is a :class:`FlagSummary` with the fractions per antenna and per subband, stored with the MS.

AOFlagger runs its generic strategy with the detection threshold raised from 1.0 to
``AOFLAGGER_BASE_THRESHOLD``. The strategy thresholds amplitudes, so the noise peaks it removes from
RFI-free data are those where the noise adds to the sky's signal, and every source loses in proportion:
at 1.0 it flagged 0.24 % of a 48-antenna target with no RFI in it and took 0.6 % off every source's flux
(a least-squares fit of the calibrated visibilities at the true positions); at 1.25 it flags 0.015 %
and the loss is under 0.1 %. The price is sensitivity to faint RFI: a persistent channel at 4σ per
visibility is 31 % flagged instead of 61 %, one at 8σ 84 %, one at 16σ all of it (docs/flux-accuracy.md).
On noiseless data it flags most samples; pass ``rfi=False`` there.
"""

from __future__ import annotations

import functools
import itertools
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import structlog
from numpy.typing import NDArray
from pydantic import BaseModel, Field
from pyuvdata import UVData

from science.constants import N_SUBBANDS, subband_name

log = structlog.get_logger(__name__)

# An integration with more than this fraction already flagged is flagged whole (a partial last one).
PARTIAL_INTEGRATION_FRACTION = 0.5
# Fewer integrations than this and no amplitude trend is fitted before AOFlagger (see _time_trend).
TREND_MIN_INTEGRATIONS = 5
MAD_TO_SIGMA = 1.4826
# AOFlagger's generic strategy uses 1.0; higher is less sensitive (see the module docstring).
AOFLAGGER_BASE_THRESHOLD = 1.25
_BASE_THRESHOLD_SETTING = re.compile(r"^(\s*local base_threshold\s*=\s*)[0-9.]+", re.MULTILINE)


class FlagSummary(BaseModel):
    """What flagging found, for the products database and calibration QA."""

    total_fraction: float
    by_step: dict[str, float] = Field(description="Fraction of all samples newly flagged by each step.")
    by_antenna: dict[str, float] = Field(description="Flagged fraction of each antenna's cross-correlations.")
    by_subband: dict[str, float]
    dead_antennas: list[str]
    flagged_integrations: list[int]
    rfi_flagger: str


@functools.cache
def _aoflagger() -> tuple[Any, Any]:
    """The flagger and its generic strategy, as installed but for the base threshold."""
    import aoflagger

    flagger = aoflagger.AOFlagger()
    generic = Path(flagger.find_strategy_file(aoflagger.TelescopeId.Generic))
    text, found = _BASE_THRESHOLD_SETTING.subn(rf"\g<1>{AOFLAGGER_BASE_THRESHOLD}", generic.read_text())
    if found != 1:
        raise RuntimeError(
            f"{generic}: AOFlagger's generic strategy has {found} 'local base_threshold = ...' settings, "
            "not one, so its sensitivity cannot be set; this AOFlagger version is not supported"
        )
    # One file per threshold, replaced atomically, so concurrent workers never read half of one.
    tuned = Path(tempfile.gettempdir()) / f"contimg-aoflagger-generic-{AOFLAGGER_BASE_THRESHOLD}.lua"
    with tempfile.NamedTemporaryFile("w", dir=tuned.parent, suffix=".lua", delete=False) as handle:
        handle.write(text)
    Path(handle.name).replace(tuned)
    return flagger, flagger.load_strategy_file(str(tuned))


def aoflagger_version() -> str:
    """The AOFlagger library in use, and the threshold its strategy runs at."""
    flagger, _ = _aoflagger()
    threshold = AOFLAGGER_BASE_THRESHOLD
    return f"AOFlagger {flagger.get_version_string()} (generic strategy, base threshold {threshold})"


def flag_observation(uvd: UVData, *, rfi: bool = True) -> FlagSummary:
    """Flag ``uvd`` in place (frequencies ascending, as the converter joins them) and summarise.

    Flags already set (missing or misaligned subbands) are kept and counted in the totals.
    """
    flags = uvd.flag_array
    data = uvd.data_array
    total = flags.size
    steps: dict[str, float] = {}

    bad = ~np.isfinite(data)
    cross = uvd.ant_1_array != uvd.ant_2_array
    zero = np.zeros_like(bad)
    zero[cross] = data[cross] == 0
    new = (bad | zero) & ~flags
    flags |= bad | zero
    data[bad] = 0
    steps["nan_or_zero"] = float(new.sum() / total)

    dead = _dead_antennas(uvd)
    if dead:
        rows = np.isin(uvd.ant_1_array, dead) | np.isin(uvd.ant_2_array, dead)
        steps["dead_antennas"] = float((~flags[rows]).sum() / total)
        flags[rows] = True
    else:
        steps["dead_antennas"] = 0.0

    times = np.unique(uvd.time_array)
    row_time = np.searchsorted(times, uvd.time_array)
    live = cross & ~np.isin(uvd.ant_1_array, dead) & ~np.isin(uvd.ant_2_array, dead)
    partial: list[int] = []
    for k in range(times.size):
        rows = live & (row_time == k)
        if rows.any() and flags[rows].mean() > PARTIAL_INTEGRATION_FRACTION:
            partial.append(k)
    if partial:
        rows = np.isin(row_time, partial)
        steps["partial_integrations"] = float((~flags[rows]).sum() / total)
        flags[rows] = True
    else:
        steps["partial_integrations"] = 0.0

    flagger_name = "none"
    if rfi:
        before = int(flags.sum())
        _flag_rfi(uvd, live)
        steps["rfi"] = float((int(flags.sum()) - before) / total)
        flagger_name = aoflagger_version()

    summary = FlagSummary(
        total_fraction=float(flags.mean()),
        by_step=steps,
        by_antenna=_by_antenna(uvd),
        by_subband=_by_subband(uvd),
        dead_antennas=[_name(uvd, a) for a in dead],
        flagged_integrations=partial,
        rfi_flagger=flagger_name,
    )
    log.info(
        "flagged observation",
        total=round(summary.total_fraction, 4),
        dead=summary.dead_antennas,
        partial_integrations=partial,
        **{f"step_{k}": round(v, 4) for k, v in steps.items()},
    )
    return summary


def _dead_antennas(uvd: UVData) -> list[int]:
    """Antennas none of whose cross-correlations has an unflagged, non-zero sample."""
    cross = uvd.ant_1_array != uvd.ant_2_array
    usable = (~uvd.flag_array).any(axis=(1, 2))
    antennas = np.unique(np.concatenate([uvd.ant_1_array[cross], uvd.ant_2_array[cross]]))
    return [
        int(a)
        for a in antennas
        if not usable[cross & ((uvd.ant_1_array == a) | (uvd.ant_2_array == a))].any()
    ]


def _flag_rfi(uvd: UVData, rows: NDArray[np.bool_]) -> None:
    """AOFlagger on each cross-correlation's time × frequency plane, all polarisations together.

    Each plane is first divided by its slow amplitude trend in time (:func:`_time_trend`): a bright
    source drifting through the beam changes by ~10 % over a tile, and AOFlagger, whose smoothing
    kernel is longer than a tile, took that for RFI, flagging 9.5 % of a calibrator transit (its
    first and last integrations almost whole) with no RFI in it.
    """
    flagger, strategy = _aoflagger()
    n_freqs, n_pols = uvd.Nfreqs, uvd.Npols
    order = np.lexsort((uvd.time_array, uvd.baseline_array))
    sorted_bls = uvd.baseline_array[order]
    starts = np.flatnonzero(np.r_[True, sorted_bls[1:] != sorted_bls[:-1]])
    bounds = np.r_[starts, sorted_bls.size]
    image_set = None
    for lo, hi in itertools.pairwise(bounds):
        index = order[lo:hi]
        if not rows[index[0]]:
            continue
        n_times = index.size
        if image_set is None or image_set.width() != n_times:
            image_set = flagger.make_image_set(n_times, n_freqs, 2 * n_pols)
        existing = uvd.flag_array[index].any(axis=2)
        block = uvd.data_array[index]  # (time, freq, pol)
        block = block / _time_trend(block, existing)[:, None, None]
        for p in range(n_pols):
            image_set.set_image_buffer(2 * p, np.ascontiguousarray(block[:, :, p].real.T, dtype=np.float32))
            image_set.set_image_buffer(
                2 * p + 1, np.ascontiguousarray(block[:, :, p].imag.T, dtype=np.float32)
            )
        mask = flagger.make_flag_mask(n_times, n_freqs, False)
        mask.get_buffer()[:] = existing.T
        found = strategy.run(image_set, mask).get_buffer().T  # (time, freq)
        uvd.flag_array[index] |= found[:, :, None]


def _time_trend(block: NDArray[np.complex128], flagged: NDArray[np.bool_]) -> NDArray[np.float64]:
    """A quadratic in time through the median amplitude of each integration, normalised to its median.

    The median over channels and polarisations ignores narrow-band RFI; on noise-dominated data the
    trend is flat. Returns ones when there is too little to fit or the fit is not positive.
    """
    n_times = block.shape[0]
    amplitude = np.where(flagged[:, :, None], np.nan, np.abs(block))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN integrations
        per_time = np.nanmedian(amplitude, axis=(1, 2))
    ok = np.isfinite(per_time) & (per_time > 0)
    ones = np.ones(n_times)
    if ok.sum() < TREND_MIN_INTEGRATIONS:
        return ones
    t = np.arange(n_times, dtype=float)
    trend = np.polyval(np.polyfit(t[ok], per_time[ok], 2), t)
    # Refit without integrations far off the first fit: a broadband burst must not bend the trend.
    deviation = np.abs(per_time - trend)
    spread = MAD_TO_SIGMA * np.median(deviation[ok])
    if spread > 0:
        ok &= deviation <= 5 * spread
        if ok.sum() >= TREND_MIN_INTEGRATIONS:
            trend = np.polyval(np.polyfit(t[ok], per_time[ok], 2), t)
    if not np.all(trend > 0):
        return ones
    return np.asarray(trend / np.median(trend), dtype=np.float64)


def _by_antenna(uvd: UVData) -> dict[str, float]:
    cross = uvd.ant_1_array != uvd.ant_2_array
    result = {}
    for a in np.unique(np.concatenate([uvd.ant_1_array[cross], uvd.ant_2_array[cross]])):
        rows = cross & ((uvd.ant_1_array == a) | (uvd.ant_2_array == a))
        result[_name(uvd, int(a))] = round(float(uvd.flag_array[rows].mean()), 5)
    return result


def _by_subband(uvd: UVData) -> dict[str, float]:
    """Subbands are 1/16 of the ascending band each: sb15 first, sb00 last."""
    n = uvd.Nfreqs
    if n % N_SUBBANDS:
        return {}
    width = n // N_SUBBANDS
    return {
        subband_name(N_SUBBANDS - 1 - k): round(
            float(uvd.flag_array[:, k * width : (k + 1) * width].mean()), 5
        )
        for k in range(N_SUBBANDS)
    }


def _name(uvd: UVData, number: int) -> str:
    numbers = list(uvd.telescope.antenna_numbers)
    return str(uvd.telescope.antenna_names[numbers.index(number)])
