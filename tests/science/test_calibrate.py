"""Calibration solve on a simulated calibrator transit, checked against the injected gains.

The simulator injects g per antenna and polarisation in pyuvdata's convention; CASA solves for conj(g).
The recovered gain of an antenna is bandpass × gain (B·G); phases are compared after referencing both
the recovered and the injected gains to the reference antenna.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from science import casa_env
from science.applycal import CaltableCandidate, select_caltable, why_not_applicable
from science.calibrate import (
    CalibrationQA,
    CalibrationResult,
    NoCalibratorInBeamError,
    QAThresholds,
    RefantPolicy,
    _choose_refant,
    qa_checks,
    solve_calibration,
)
from science.calibrators import calibrators_in_beam, get_calibrator, load_catalogue
from science.errors import InvalidInputError


@pytest.fixture(scope="module")
def solved(converted_pair, tmp_path_factory) -> CalibrationResult:
    """One full solve on a copy of the calibrator transit (the solve writes MODEL_DATA)."""
    out = tmp_path_factory.mktemp("caltables")
    ms = out.parent / f"{out.name}-calibrator.ms"
    shutil.copytree(converted_pair.calibrator.ms_path, ms)
    return solve_calibration(ms, out, log_dir=out / "logs")


def injected_gains(truth_json: Path, freq_hz: np.ndarray) -> dict[str, np.ndarray]:
    """Injected complex gains at the mid-time (raw units per Jy included), per antenna, shaped (chan, pol)."""
    truth = json.loads(Path(truth_json).read_text())
    # The data are in raw units: each antenna's gain carries the square root of the scale.
    scale = np.sqrt(truth["raw_units_per_jy"])
    out: dict[str, np.ndarray] = {}
    for g in truth["gains"]:
        pol = 0 if g["pol"] == "XX" else 1
        phase = np.radians(g["phase_deg"]) + 2e-9 * np.pi * g["delay_ns"] * (freq_hz - truth["ref_freq_hz"])
        out.setdefault(g["antenna_name"], np.zeros((freq_hz.size, 2), complex))[:, pol] = (
            scale * g["amplitude"] * np.exp(1j * phase)
        )
    return out


@pytest.mark.science
def test_solve_finds_calibrator_and_passes_qa(solved: CalibrationResult) -> None:
    assert solved.calibrator == "3C286"
    assert solved.calibrator_offset_deg < 0.05
    assert solved.qa.passed, solved.qa.failures
    assert solved.qa.flagged_fraction < 0.01
    assert solved.qa.median_snr > 50
    assert solved.qa.phase_rms_deg < 5
    assert set(solved.tables) == {"prior_phase", "bandpass", "gain"}
    assert solved.apply_tables == [solved.tables["bandpass"], solved.tables["gain"]]
    for table in solved.tables.values():
        assert (table / "table.dat").exists()
    assert set(solved.plots) == {"flag_fractions", "bandpass_amplitude", "gain_phase", "gain_amplitude"}
    for png in solved.plots.values():
        assert png.stat().st_size > 1000
    # Outriggers are excluded from the reference by default.
    assert int(solved.refant.split("-")[1]) < 103
    assert solved.valid_end_mjd - solved.valid_start_mjd == pytest.approx(1.0)
    assert solved.valid_start_mjd < solved.mid_mjd < solved.valid_end_mjd
    assert solved.casa_log.exists() and solved.casa_log.parent == solved.tables["gain"].parent / "logs"
    # Only the final tables remain: no scratch directory.
    assert not list(solved.tables["gain"].parent.glob(".solve-*"))


@pytest.mark.science
def test_recovered_gains_match_injected(solved: CalibrationResult, simulated_pair) -> None:
    from science.cal_plots import read_caltable

    casa_env.configure(solved.casa_log.parent)
    bandpass = read_caltable(solved.tables["bandpass"])
    gain = read_caltable(solved.tables["gain"])
    names = bandpass.antenna_names
    truth = injected_gains(simulated_pair.calibrator.truth_json, bandpass.freq_hz)
    recovered = {}
    for ant in np.unique(gain.antenna):
        b = bandpass.gains[bandpass.antenna == ant][0]
        g = gain.gains[gain.antenna == ant][0]
        assert bandpass.unflagged()[bandpass.antenna == ant].all()
        # CASA's solutions are conj(g) in the simulator's convention.
        recovered[names[ant]] = np.conj(b * g)
    assert set(recovered) == set(truth)
    ref = solved.refant
    amp_errors, phase_errors = [], []
    for name, rec in recovered.items():
        inj = truth[name]
        amp_errors.append(np.abs(np.abs(rec).mean(axis=0) / np.abs(inj).mean(axis=0) - 1))
        rec_ref = rec * np.conj(recovered[ref]) / np.abs(recovered[ref])
        inj_ref = inj * np.conj(truth[ref]) / np.abs(truth[ref])
        phase_errors.append(np.abs(np.angle((rec_ref / inj_ref).mean(axis=0), deg=True)))
    amp_errors_arr, phase_errors_arr = np.array(amp_errors), np.array(phase_errors)
    print(f"max amplitude error {amp_errors_arr.max():.4f}, max phase error {phase_errors_arr.max():.3f} deg")
    assert amp_errors_arr.max() < 0.01
    assert phase_errors_arr.max() < 1.0


@pytest.mark.science
def test_bandpass_mode_applies_bandpass_with_phases(converted_pair, tmp_path: Path) -> None:
    result = solve_calibration(
        converted_pair.calibrator.ms_path, tmp_path, log_dir=tmp_path / "logs", mode="bandpass"
    )
    assert set(result.tables) == {"prior_phase", "bandpass"}
    assert result.apply_tables == [result.tables["bandpass"], result.tables["prior_phase"]]
    assert result.qa.passed


@pytest.mark.science
def test_no_calibrator_raises_and_leaves_no_tables(converted_pair, tmp_path: Path) -> None:
    # The target field is an hour of RA away from 3C286 at the same declination.
    ms = tmp_path / "target.ms"
    shutil.copytree(converted_pair.target.ms_path, ms)
    out = tmp_path / "caltables"
    with pytest.raises(NoCalibratorInBeamError, match=r"no calibrator in beam of .*target\.ms") as raised:
        solve_calibration(ms, out, log_dir=tmp_path / "logs")
    # At the same declination, the error names 3C286 and its next transit as the one to use.
    nearest = raised.value.nearest
    assert nearest is not None and nearest.calibrator.name == "3C286"
    message = str(raised.value)
    assert "nearest usable calibrator is 3C286" in message and nearest.transit_utc in message
    assert isinstance(NoCalibratorInBeamError(ms, 0, 0), InvalidInputError)
    assert not out.exists() or not any(out.iterdir())


def test_catalogue_holds_the_simulated_calibrator() -> None:
    from science.simulate import calibrator_transit  # noqa: F401  (the scene's defaults name 3C286)

    cal = get_calibrator("3C286")
    assert cal.flux_jy == pytest.approx(14.9)
    assert cal.spectral_index == pytest.approx(-0.46)
    decs = [c.dec_deg for c in load_catalogue()]
    assert min(decs) < 0 < 60 < max(decs)


def test_beam_search_brightest_apparent_first() -> None:
    cal = get_calibrator("3C286")
    found = calibrators_in_beam(cal.ra_deg, cal.dec_deg + 0.5, 1.4e9)
    assert [f.calibrator.name for f in found] == ["3C286"]
    assert 0.85 < found[0].response < 0.95
    assert found[0].apparent_flux_jy == pytest.approx(cal.flux_jy * found[0].response)
    assert calibrators_in_beam(cal.ra_deg + 10, cal.dec_deg, 1.4e9) == []


def test_refant_policy() -> None:
    names = ["DSA-001", "DSA-050", "DSA-104", "DSA-110"]
    counts = {0: 100, 1: 120, 2: 500, 3: 0}
    assert _choose_refant(counts, names, RefantPolicy.EXCLUDE_OUTRIGGERS, Path("x.ms")) == "DSA-050"
    assert _choose_refant(counts, names, RefantPolicy.PREFER_OUTRIGGERS, Path("x.ms")) == "DSA-104"
    assert _choose_refant(counts, names, RefantPolicy.ANY, Path("x.ms")) == "DSA-104"
    with pytest.raises(InvalidInputError):
        _choose_refant({}, names, RefantPolicy.ANY, Path("x.ms"))


def test_select_caltable_nearest_earlier_valid() -> None:
    def rec(key: str, mid: float, passed: bool = True, half: float = 0.5) -> CaltableCandidate:
        return CaltableCandidate(
            key=key, mid_mjd=mid, valid_start_mjd=mid - half, valid_end_mjd=mid + half, qa_passed=passed
        )

    candidates = [rec("old", 100.0), rec("new", 100.3), rec("bad", 100.4, passed=False), rec("later", 100.6)]
    chosen = select_caltable(candidates, 100.5)
    assert chosen is not None and chosen.key == "new"
    assert select_caltable(candidates, 99.9) is None  # nothing earlier
    assert select_caltable(candidates, 100.5, max_age_hours=1.0) is None  # 'new' is 4.8 h old
    assert select_caltable([rec("short", 100.0, half=0.1)], 100.2) is None  # outside its validity window


def test_select_caltable_accepts_the_solve_of_the_same_observation() -> None:
    # The solve's mid-time comes from CASA, the target's from pyuvdata: the same instant may differ in
    # the last digits, and a calibrator transit must still take its own solve.
    solve = CaltableCandidate(
        key="self", mid_mjd=61119.3978588, valid_start_mjd=61119.0, valid_end_mjd=61120.0, qa_passed=True
    )
    assert select_caltable([solve], 61119.3978588 - 1e-9) is solve
    assert select_caltable([solve], 61119.3978588 - 1e-3) is None  # 86 s earlier is not the same time


def test_a_hand_picked_solve_needs_passing_qa_and_a_window_holding_the_target() -> None:
    # Unlike the automatic choice, it may be later than the target, as long as its window covers it.
    solve = CaltableCandidate(
        key="s", mid_mjd=100.5, valid_start_mjd=100.0, valid_end_mjd=101.0, qa_passed=True
    )
    assert why_not_applicable(solve, 100.2) is None
    assert "outside its validity window" in (why_not_applicable(solve, 101.2) or "")
    failed = CaltableCandidate(
        key="f", mid_mjd=100.5, valid_start_mjd=100.0, valid_end_mjd=101.0, qa_passed=False
    )
    assert why_not_applicable(failed, 100.5) == "its QA failed"


def test_qa_checks_give_the_verdict_and_the_failures() -> None:
    limits = QAThresholds(max_flagged_fraction=0.2, min_median_snr=10.0, max_phase_rms_deg=20.0)
    good = [c.passed for c in qa_checks(0.2, 10.0, 19.9, limits)]  # at a limit is within it
    assert good == [True, True, True]
    bad = qa_checks(0.3, 9.0, float("nan"), limits)
    assert [c.passed for c in bad] == [False, False, False]
    assert [c.bound for c in bad] == ["max", "min", "max"]
    assert bad[0].failure == "flagged fraction 0.300 > 0.2" and bad[1].failure == "median SNR 9.0 < 10.0"
    qa = CalibrationQA(
        flagged_fraction=0.05, median_snr=8.0, phase_rms_deg=3.0, thresholds=limits, passed=False,
        failures=["median SNR 8.0 < 10.0"],
    )  # fmt: skip
    assert [c.failure for c in qa.checks() if not c.passed] == qa.failures
