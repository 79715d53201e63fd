"""Read CASA calibration tables into arrays, and draw the diagnostic plots of a solve.

Four plots: bandpass amplitude against frequency, gain phase against time, gain amplitude per antenna,
and the flagged fraction of the calibrator's data per antenna and per subband. Call
:func:`science.casa_env.configure` before using :func:`read_caltable`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on workers

import matplotlib.pyplot as plt
import numpy as np
from numpy.typing import NDArray

from science.constants import SECONDS_PER_DAY


@dataclass(frozen=True)
class CalSolutions:
    """The solutions of one caltable, for a single spectral window layout.

    ``gains`` and ``flags`` are shaped (n_rows, n_chan, n_pol); each row is one antenna at one time.
    """

    path: Path
    gains: NDArray[np.complex128]
    flags: NDArray[np.bool_]
    snr: NDArray[np.float64]
    antenna: NDArray[np.int64]
    time_mjd: NDArray[np.float64]
    freq_hz: NDArray[np.float64]
    antenna_names: list[str]

    def unflagged(self) -> NDArray[np.bool_]:
        """True where a solution is valid (not flagged, finite)."""
        return ~self.flags & np.isfinite(self.gains)

    def for_antennas(self, antennas: set[int] | list[int]) -> CalSolutions:
        """Only the rows of ``antennas``: the ANTENNA table may list stations that took no data."""
        keep = np.isin(self.antenna, list(antennas))
        return replace(
            self,
            gains=self.gains[keep],
            flags=self.flags[keep],
            snr=self.snr[keep],
            antenna=self.antenna[keep],
            time_mjd=self.time_mjd[keep],
        )


def read_caltable(path: Path) -> CalSolutions:
    """Load the complex solutions, flags and SNR of a gain or bandpass table."""
    from casatools import table

    tb = table()
    tb.open(str(path))
    try:
        # CASA stores (pol, chan, row); turn that into (row, chan, pol).
        gains = np.transpose(tb.getcol("CPARAM"), (2, 1, 0)).astype(np.complex128)
        flags = np.transpose(tb.getcol("FLAG"), (2, 1, 0)).astype(bool)
        snr = np.transpose(tb.getcol("SNR"), (2, 1, 0)).astype(float)
        antenna = tb.getcol("ANTENNA1").astype(np.int64)
        time_mjd = tb.getcol("TIME") / SECONDS_PER_DAY
        spw = tb.getcol("SPECTRAL_WINDOW_ID")
    finally:
        tb.close()
    tb.open(f"{path}/SPECTRAL_WINDOW")
    try:
        chan_freq = tb.getcol("CHAN_FREQ")
    finally:
        tb.close()
    tb.open(f"{path}/ANTENNA")
    try:
        names = [str(n) for n in tb.getcol("NAME")]
    finally:
        tb.close()
    if len(set(spw.tolist())) > 1:
        raise ValueError(f"{path}: solutions for several spectral windows; expected one")
    freq = chan_freq[:, int(spw[0])] if len(spw) else chan_freq[:, 0]
    # Gain tables solved over the whole band hold one "channel"; give it the band-centre frequency.
    if gains.shape[1] == 1 and freq.size > 1:
        freq = np.array([freq.mean()])
    return CalSolutions(
        path=Path(path),
        gains=gains,
        flags=flags,
        snr=snr,
        antenna=antenna,
        time_mjd=time_mjd,
        freq_hz=np.asarray(freq, dtype=float),
        antenna_names=names,
    )


def _antenna_colours(n: int) -> NDArray[np.float64]:
    return np.asarray(plt.get_cmap("viridis")(np.linspace(0.0, 1.0, max(n, 1))))


def plot_bandpass_amplitude(sols: CalSolutions, png: Path, title: str = "") -> Path:
    """Bandpass amplitude against frequency, one line per antenna, one panel per polarisation."""
    npol = sols.gains.shape[2]
    fig, axes = plt.subplots(1, npol, figsize=(5 * npol, 3.6), sharey=True, squeeze=False)
    ants = np.unique(sols.antenna)
    colours = _antenna_colours(len(ants))
    freq_ghz = sols.freq_hz / 1e9
    for p in range(npol):
        ax = axes[0, p]
        for colour, ant in zip(colours, ants, strict=True):
            rows = np.flatnonzero(sols.antenna == ant)
            amp = np.abs(sols.gains[rows, :, p]).mean(axis=0)
            amp = np.where(sols.unflagged()[rows, :, p].any(axis=0), amp, np.nan)
            ax.plot(freq_ghz, amp, color=colour, lw=0.8)
        ax.set_xlabel("frequency (GHz)")
        ax.set_title(f"pol {p}")
    axes[0, 0].set_ylabel("bandpass amplitude")
    fig.suptitle(title or f"Bandpass amplitude: {sols.path.name}")
    return _save(fig, png)


def plot_gain_phase_vs_time(sols: CalSolutions, png: Path, title: str = "") -> Path:
    """Gain phase (degrees, band-averaged) against time, one line per antenna."""
    npol = sols.gains.shape[2]
    fig, axes = plt.subplots(1, npol, figsize=(5 * npol, 3.6), sharey=True, squeeze=False)
    ants = np.unique(sols.antenna)
    colours = _antenna_colours(len(ants))
    t0 = sols.time_mjd.min() if sols.time_mjd.size else 0.0
    for p in range(npol):
        ax = axes[0, p]
        for colour, ant in zip(colours, ants, strict=True):
            rows = np.flatnonzero(sols.antenna == ant)
            ok = sols.unflagged()[rows, :, p]
            g = np.where(ok, sols.gains[rows, :, p], 0).sum(axis=1)
            phase = np.where(ok.any(axis=1), np.degrees(np.angle(g)), np.nan)
            minutes = (sols.time_mjd[rows] - t0) * 24 * 60
            ax.plot(minutes, phase, "o-", color=colour, ms=2, lw=0.6)
        ax.set_xlabel("time since first solution (min)")
        ax.set_title(f"pol {p}")
        ax.set_ylim(-185, 185)
    axes[0, 0].set_ylabel("gain phase (deg)")
    fig.suptitle(title or f"Gain phase: {sols.path.name}")
    return _save(fig, png)


def plot_gain_amplitude_per_antenna(sols: CalSolutions, png: Path, title: str = "") -> Path:
    """Mean gain amplitude of each antenna (over time and channel), per polarisation."""
    npol = sols.gains.shape[2]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.25 * len(sols.antenna_names)), 3.6))
    ants = np.unique(sols.antenna)
    ok = sols.unflagged()
    for p, marker in zip(range(npol), "os^v", strict=False):
        amps = []
        for ant in ants:
            rows = sols.antenna == ant
            vals = np.abs(sols.gains[rows, :, p])[ok[rows, :, p]]
            amps.append(vals.mean() if vals.size else np.nan)
        ax.plot(ants, amps, marker, ls="none", label=f"pol {p}")
    ax.set_xticks(ants)
    ax.set_xticklabels([sols.antenna_names[a] for a in ants], rotation=90, fontsize=6)
    ax.set_ylabel("gain amplitude")
    ax.legend(fontsize=7)
    fig.suptitle(title or f"Gain amplitude: {sols.path.name}")
    return _save(fig, png)


def plot_flag_fractions(
    by_antenna: dict[str, float], by_subband: dict[str, float], png: Path, title: str = ""
) -> Path:
    """Flagged fraction of the data per antenna and per subband: where flagging took the calibrator's data."""
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(max(8.0, 0.25 * len(by_antenna) + 4.0), 3.6), gridspec_kw={"width_ratios": [3, 1]}
    )
    names = list(by_antenna)
    left.bar(range(len(names)), [100.0 * by_antenna[n] for n in names], color="tab:red")
    left.set_xticks(range(len(names)))
    left.set_xticklabels(names, rotation=90, fontsize=6)
    left.set_ylabel("flagged (%)")
    left.set_title("per antenna", fontsize=9)
    subbands = sorted(by_subband)
    right.bar(range(len(subbands)), [100.0 * by_subband[b] for b in subbands], color="tab:orange")
    right.set_xticks(range(len(subbands)))
    right.set_xticklabels(subbands, rotation=90, fontsize=6)
    right.set_title("per subband", fontsize=9)
    for ax in (left, right):
        ax.set_ylim(0, max(1.0, ax.get_ylim()[1]))
    fig.suptitle(title or "Flagged data")
    return _save(fig, png)


def _save(fig: plt.Figure, png: Path) -> Path:
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png
