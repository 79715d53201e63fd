"""Light-curve pictures: a PNG of flux against time, and a one-line sparkline for terminals."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from astropy.time import Time
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from science.variability import LightCurve, VariabilityMetrics, compute_metrics

SPARK_LEVELS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float | None]) -> str:
    """One character per value, scaled between the smallest and largest; a space for a missing value."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return " " * len(values)
    lo, hi = min(finite), max(finite)
    top = len(SPARK_LEVELS) - 1
    chars = []
    for value in values:
        if value is None or not math.isfinite(value):
            chars.append(" ")
        elif hi == lo:
            chars.append(SPARK_LEVELS[top // 2])
        else:
            chars.append(SPARK_LEVELS[round((value - lo) / (hi - lo) * top)])
    return "".join(chars)


def lightcurve_sparkline(lightcurve: LightCurve) -> str:
    """Sparkline of a light curve's fluxes in time order."""
    return sparkline([p.flux_jy for p in lightcurve.sorted_by_time()])


def plot_lightcurve(
    lightcurve: LightCurve,
    output: Path | str,
    metrics: VariabilityMetrics | None = None,
    time_axis: Literal["mjd", "utc"] = "mjd",
) -> Path:
    """Write a PNG of flux (mJy) against time with error bars, the weighted mean, and η and V in the title."""
    output = Path(output)
    metrics = metrics or compute_metrics(lightcurve)
    points = lightcurve.sorted_by_time()
    mjd = np.array([p.mjd for p in points])
    flux_mjy = np.array([p.flux_jy for p in points]) * 1e3
    err_mjy = np.array([p.flux_err_jy for p in points]) * 1e3

    fig = Figure(figsize=(8, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    times = Time(mjd, format="mjd").to_datetime() if time_axis == "utc" else mjd
    ax.errorbar(times, flux_mjy, yerr=err_mjy, fmt="o", capsize=3, color="tab:blue", label="forced flux")
    if metrics.weighted_mean_flux_jy is not None:
        ax.axhline(metrics.weighted_mean_flux_jy * 1e3, color="tab:gray", ls="--", label="weighted mean")
    ax.set_xlabel("UTC" if time_axis == "utc" else "MJD")
    ax.set_ylabel("Flux density (mJy)")
    if time_axis == "utc":
        fig.autofmt_xdate()

    def fmt(value: float | None, digits: int) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    verdict = "  VARIABLE" if metrics.is_variable else ""
    ax.set_title(f"{lightcurve.name}: η = {fmt(metrics.eta, 2)}, V = {fmt(metrics.v, 3)}{verdict}")
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(output, dpi=100)
    return output
