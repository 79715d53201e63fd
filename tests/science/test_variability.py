"""Variability metrics, reference normalisation, and light-curve pictures."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from science.lightcurve_plot import lightcurve_sparkline, plot_lightcurve, sparkline
from science.photometry import Flag, PhotometryResult
from science.variability import (
    LightCurve,
    Measurement,
    VariabilityThresholds,
    compute_all,
    compute_metrics,
    lightcurves_from_photometry,
    normalise,
)

MJD0 = 60000.0


def _curve(
    name: str, fluxes: list[float], errors: list[float] | float, reference: bool = False
) -> LightCurve:
    errs = errors if isinstance(errors, list) else [errors] * len(fluxes)
    points = [
        Measurement(mjd=MJD0 + i, flux_jy=f, flux_err_jy=e)
        for i, (f, e) in enumerate(zip(fluxes, errs, strict=True))
    ]
    return LightCurve(name=name, measurements=points, reference=reference)


def test_metrics_match_hand_computation() -> None:
    # Given out of time order, to check that pairs are formed in time order.
    lc = _curve("hand", [1.0, 1.2, 0.9], [0.1, 0.1, 0.2])
    lc.measurements.reverse()
    m = compute_metrics(lc)
    # w = 100, 100, 25. Literal formula: 3/2·(⟨wf²⟩ − ⟨wf⟩²/⟨w⟩) = 1.5·(264.25/3 − (242.5/3)²/75) = 13/9.
    assert m.eta == pytest.approx(13 / 9)
    assert m.chi2_nu == pytest.approx(13 / 9)
    assert m.weighted_mean_flux_jy == pytest.approx(242.5 / 225)
    # V: s = sqrt(0.046667/2) over the mean 3.1/3.
    assert m.v == pytest.approx(
        math.sqrt((0.1 / 3) ** 2 + (0.5 / 3) ** 2 + (0.4 / 3) ** 2) / math.sqrt(2) / (3.1 / 3)
    )
    # Pairs: (1.0,1.2) −0.2/√0.02 = −√2; (1.0,0.9) 0.1/√0.05; (1.2,0.9) 0.3/√0.05 = 1.342.
    assert m.vs == pytest.approx(-math.sqrt(2))
    assert m.m == pytest.approx(2 * (1.0 - 1.2) / (1.0 + 1.2))
    assert m.vs_epochs_mjd == (MJD0, MJD0 + 1)
    # V exceeds 0.1 but η does not exceed 2: not variable, and consistent with constant.
    assert m.exceeded == ["v"]
    assert not m.is_variable
    assert m.consistent_with_constant


@pytest.mark.parametrize("n", [0, 1])
def test_fewer_than_two_epochs(n: int) -> None:
    m = compute_metrics(_curve("short", [0.05] * n, 0.001))
    assert m.n_epochs == n
    assert (m.eta, m.v, m.chi2_nu, m.vs, m.m) == (None, None, None, None, None)
    assert not m.is_variable and m.consistent_with_constant is None


def test_constant_source_not_flagged_and_varying_source_flagged() -> None:
    rng = np.random.default_rng(7)
    n, err = 20, 0.001
    constant = _curve("steady", list(0.05 + rng.normal(0, err, n)), err)
    # ±30 % sinusoidal variation of a 50 mJy source.
    varying_true = 0.05 * (1 + 0.3 * np.sin(np.linspace(0, 4 * np.pi, n)))
    varying = _curve("wobbly", list(varying_true + rng.normal(0, err, n)), err)
    steady_m, wobbly_m = compute_all([constant, varying])
    assert not steady_m.is_variable and steady_m.consistent_with_constant
    assert steady_m.eta is not None and steady_m.eta < 2
    assert wobbly_m.is_variable and not wobbly_m.consistent_with_constant
    assert wobbly_m.v is not None and wobbly_m.v == pytest.approx(0.3 / math.sqrt(2), rel=0.15)


def test_thresholds_are_configurable() -> None:
    lc = _curve("hand", [1.0, 1.2, 0.9], [0.1, 0.1, 0.2])
    assert compute_metrics(lc, VariabilityThresholds(eta=1.0)).is_variable
    assert not compute_metrics(lc, VariabilityThresholds(eta=1.0, v=0.2)).is_variable


def test_normalisation_removes_epoch_scale_error() -> None:
    rng = np.random.default_rng(3)
    n_epochs, err_frac = 8, 0.01
    scale = np.ones(n_epochs)
    scale[3] = 0.85  # epoch 3: every flux 15 % low
    curves = []
    for i, true in enumerate([0.20, 0.15, 0.30, 0.12, 0.25]):
        curves.append(
            _curve(f"ref{i}", list(true * scale * (1 + rng.normal(0, err_frac, n_epochs))), true * 0.01)
        )
    for i, true in enumerate([0.05, 0.08, 0.1]):
        err = 0.001
        curves.append(_curve(f"target{i}", list(true * scale + rng.normal(0, err, n_epochs)), err))
    refs = {f"ref{i}" for i in range(5)}

    before = {m.name: m for m in compute_all(curves)}
    assert all(not before[f"target{i}"].consistent_with_constant for i in range(3))

    result = normalise(curves, reference_names=refs)
    factors = [s.factor for s in result.scales]
    assert factors[3] == pytest.approx(0.85, abs=3 * result.scales[3].factor_err)
    assert all(s.n_references == 5 for s in result.scales)
    assert np.allclose(np.delete(factors, 3), 1.0, atol=0.02)
    after = {m.name: m for m in compute_all(result.lightcurves)}
    for i in range(3):
        m = after[f"target{i}"]
        assert not m.is_variable and m.consistent_with_constant, m
    # Errors grow by the uncertainty of the scale factor, never shrink below the scaled input error.
    target = result.lightcurves[5].measurements[3]
    assert target.flux_err_jy >= 0.001 / factors[3]


def test_normalisation_by_reference_flag_and_epochs_without_references() -> None:
    ref = _curve("ref", [1.0, 0.5], 0.01, reference=True)
    other = LightCurve(
        name="other",
        measurements=[
            Measurement(mjd=MJD0, flux_jy=2.0, flux_err_jy=0.02),
            Measurement(mjd=MJD0 + 1, flux_jy=1.0, flux_err_jy=0.02),
            Measurement(mjd=MJD0 + 2, flux_jy=2.0, flux_err_jy=0.02),
        ],
    )
    result = normalise([ref, other])
    by_mjd = {s.mjd: s for s in result.scales}
    # Two epochs, median 0.75: factors 1/0.75 and 0.5/0.75; the third epoch had no reference.
    assert by_mjd[MJD0].factor == pytest.approx(1 / 0.75)
    assert by_mjd[MJD0 + 1].factor == pytest.approx(0.5 / 0.75)
    assert by_mjd[MJD0 + 2].factor == 1.0 and by_mjd[MJD0 + 2].n_references == 0
    fluxes = [p.flux_jy for p in result.lightcurves[1].measurements]
    assert fluxes == pytest.approx([1.5, 1.5, 2.0])


def test_lightcurves_from_photometry_skips_unusable() -> None:
    def result(
        name: str, mjd: float, flux: float | None, flags: list[Flag] | None = None
    ) -> PhotometryResult:
        return PhotometryResult(
            name=name, ra_deg=150, dec_deg=50, image_path=f"{mjd}.fits", mjd=mjd,
            flux_jy=flux, flux_err_jy=None if flux is None else 0.001, flags=flags or [],
        )  # fmt: skip

    results = [
        result("a", MJD0, 0.05),
        result("a", MJD0 + 1, 0.051),
        result("a", MJD0 + 2, 0.2, [Flag.NEAR_EDGE]),
        result("b", MJD0, None, [Flag.OFF_IMAGE]),
        result("c", MJD0, 0.01, [Flag.LOW_PB]),
    ]
    curves = {lc.name: lc for lc in lightcurves_from_photometry(results, reference_names={"c"})}
    assert sorted(curves) == ["a", "c"]
    assert [p.flux_jy for p in curves["a"].measurements] == [0.05, 0.051]
    assert curves["c"].reference and not curves["a"].reference


def test_sparkline() -> None:
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█"
    assert sparkline([2.0, None, float("nan"), 2.0]) == "▄  ▄"
    assert sparkline([]) == ""
    lc = _curve("x", [0.3, 0.1, 0.2], 0.01)
    assert lightcurve_sparkline(lc) == "█▁▅"


@pytest.mark.parametrize("time_axis", ["mjd", "utc"])
def test_plot_lightcurve_writes_png(tmp_path: Path, time_axis: Literal["mjd", "utc"]) -> None:
    lc = _curve("J1000+5000", [0.05, 0.052, 0.07, 0.049], 0.002)
    path = plot_lightcurve(lc, tmp_path / "lc.png", time_axis=time_axis)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
