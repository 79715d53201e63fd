"""Solve bandpass and gain calibration on a Measurement Set that holds a calibrator transit.

The sequence: find the brightest catalogue calibrator in the primary
beam, write its model into MODEL_DATA (a point component, attenuated by the drifting Airy beam),
solve per-integration phases, then the bandpass over the whole transit, then amplitude and phase
gains. Tables are written in a scratch directory next to the outputs and renamed into place only
after every step and the QA have succeeded.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Literal

import numpy as np
import structlog
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.time import Time
from numpy.typing import NDArray
from pydantic import BaseModel, Field

from science import casa_env
from science.beam import airy_response
from science.cal_plots import (
    CalSolutions,
    plot_bandpass_amplitude,
    plot_flag_fractions,
    plot_gain_amplitude_per_antenna,
    plot_gain_phase_vs_time,
    read_caltable,
)
from science.calibrators import (
    DEFAULT_MIN_RESPONSE,
    Calibrator,
    CalibratorInBeam,
    Transit,
    calibrators_in_beam,
    load_catalogue,
    nearest_calibrator,
)
from science.constants import FIRST_OUTRIGGER, N_SUBBANDS, SECONDS_PER_DAY, subband_name
from science.errors import InvalidInputError
from science.point_model import write_point_model
from science.pointing import meridian_icrs

log = structlog.get_logger(__name__)

# A solve is valid this long either side of its mid-time: long enough to cover a night between transits.
VALIDITY_HOURS = 12.0

SIDEREAL_DEG_PER_S = 360.0 / 86_164.0905
# Rows of MODEL_DATA handled at a time when applying the beam, to bound memory on full-size sets.
_ROW_CHUNK = 20_000


class NoCalibratorInBeamError(InvalidInputError):
    """No catalogue calibrator lies inside the primary beam of the Measurement Set."""

    def __init__(
        self, ms: Path, pointing_ra_deg: float, pointing_dec_deg: float, nearest: Transit | None = None
    ) -> None:
        self.ms = Path(ms)
        self.nearest = nearest
        where = (
            f"no calibrator in beam of {self.ms} "
            f"(meridian RA {pointing_ra_deg:.3f}°, dec {pointing_dec_deg:.3f}°)"
        )
        if nearest is None:
            hint = "the catalogue has no usable calibrator at all; configure a larger calibrator list"
        else:
            cal = nearest.calibrator
            name = f"{cal.name} ({cal.alias})" if cal.alias else cal.name
            hint = (
                f"the nearest usable calibrator is {name} at dec {cal.dec_deg:.2f}° "
                f"({nearest.offset_deg:.2f}° away, {cal.flux_jy:.2f} Jy), "
                f"next transit {nearest.transit_utc}; "
                "solve on a transit at its declination, or configure a larger calibrator list"
            )
        super().__init__(f"{where}; {hint}")


class CalibrationQAError(InvalidInputError):
    """The solutions failed the quality thresholds; no caltables were kept."""

    def __init__(self, ms: Path, qa: CalibrationQA) -> None:
        self.ms = Path(ms)
        self.qa = qa
        super().__init__(f"calibration QA failed for {self.ms}: {'; '.join(qa.failures)}")


class CalibrationError(RuntimeError):
    """A CASA solve step produced no table (see the CASA log named in the message)."""


class RefantPolicy(StrEnum):
    """How outriggers (stations 103–117) take part in the choice of reference antenna."""

    EXCLUDE_OUTRIGGERS = "exclude-outriggers"
    PREFER_OUTRIGGERS = "prefer-outriggers"
    ANY = "any"


class QAThresholds(BaseModel):
    """Pass/fail limits for a solve."""

    max_flagged_fraction: float = Field(default=0.2, ge=0, le=1)
    min_median_snr: float = Field(default=10.0, ge=0)
    max_phase_rms_deg: float = Field(default=20.0, gt=0)


class CalibrationQA(BaseModel):
    """Quality metrics of a solve and the verdict against :class:`QAThresholds`."""

    flagged_fraction: float
    median_snr: float
    phase_rms_deg: float
    thresholds: QAThresholds
    passed: bool
    failures: list[str]
    data_flagged_by_antenna: dict[str, float] = Field(
        default_factory=dict,
        description="Flagged fraction of the calibrator data per antenna, before solving.",
    )
    data_flagged_by_subband: dict[str, float] = Field(default_factory=dict)

    def checks(self) -> list[QACheck]:
        """Each metric against its threshold, in the order the failures are listed."""
        return qa_checks(self.flagged_fraction, self.median_snr, self.phase_rms_deg, self.thresholds)


class QACheck(BaseModel):
    """One QA metric against its limit: what the calibration wizard shows as a tick or a cross."""

    name: str
    value: float
    limit: float
    bound: Literal["max", "min"] = Field(description="whether the limit is a maximum or a minimum")
    passed: bool
    failure: str = Field(description="the sentence listed in CalibrationQA.failures when it fails")


def qa_checks(
    flagged: float, median_snr: float, phase_rms_deg: float, thresholds: QAThresholds
) -> list[QACheck]:
    """The three QA checks of a solve; a NaN phase rms (no phase solution to judge) fails."""
    phase_ok = bool(np.isfinite(phase_rms_deg)) and phase_rms_deg <= thresholds.max_phase_rms_deg
    return [
        QACheck(
            name="flagged fraction of the solutions",
            value=flagged,
            limit=thresholds.max_flagged_fraction,
            bound="max",
            passed=flagged <= thresholds.max_flagged_fraction,
            failure=f"flagged fraction {flagged:.3f} > {thresholds.max_flagged_fraction}",
        ),
        QACheck(
            name="median SNR of the solutions",
            value=median_snr,
            limit=thresholds.min_median_snr,
            bound="min",
            passed=median_snr >= thresholds.min_median_snr,
            failure=f"median SNR {median_snr:.1f} < {thresholds.min_median_snr}",
        ),
        QACheck(
            name="phase rms per integration (deg)",
            value=phase_rms_deg,
            limit=thresholds.max_phase_rms_deg,
            bound="max",
            passed=phase_ok,
            failure=f"phase rms {phase_rms_deg:.1f}° > {thresholds.max_phase_rms_deg}°",
        ),
    ]


class MsSummary(BaseModel):
    """What the calibration and imaging steps need to know about a Measurement Set."""

    path: Path
    start_mjd: float
    end_mjd: float
    mid_mjd: float
    phase_centre_ra_deg: float
    phase_centre_dec_deg: float
    meridian_ra_deg: float
    freq_min_hz: float
    freq_max_hz: float
    antenna_names: list[str]

    @property
    def centre_freq_hz(self) -> float:
        """Mid-band frequency."""
        return 0.5 * (self.freq_min_hz + self.freq_max_hz)


class CalibrationResult(BaseModel):
    """The outcome of :func:`solve_calibration`; stored by the caller in the ``caltables`` table."""

    ms_path: Path
    mode: Literal["bandpass", "full"]
    calibrator: str
    calibrator_offset_deg: float
    calibrator_model_flux_jy: float = Field(description="intrinsic flux at the band centre")
    refant: str
    tables: dict[str, Path] = Field(description="caltable path by kind: prior_phase, bandpass, gain")
    apply_tables: list[Path] = Field(description="tables to pass to applycal, in order")
    qa: CalibrationQA
    plots: dict[str, Path]
    mid_mjd: float
    valid_start_mjd: float
    valid_end_mjd: float
    pointing_dec_deg: float = Field(description="ICRS declination of the calibrator transit's phase centre")
    casa_log: Path


def _table():
    from casatools import table

    return table()


def station_number(antenna_name: str) -> int | None:
    """Station number from an antenna name such as ``DSA-103``; None if it carries no number."""
    match = re.search(r"(\d+)\s*$", antenna_name)
    return int(match.group(1)) if match else None


def is_outrigger(antenna_name: str) -> bool:
    """True for stations 103–117."""
    number = station_number(antenna_name)
    return number is not None and number >= FIRST_OUTRIGGER


def read_ms_summary(ms: Path) -> MsSummary:
    """Times, phase centre, meridian RA at mid-time, band edges and antenna names of ``ms``."""
    tb = _table()
    ms = Path(ms)
    if not (ms / "table.dat").exists():
        raise InvalidInputError(f"{ms} is not a Measurement Set (no table.dat)")
    tb.open(str(ms))
    try:
        times = np.unique(tb.getcol("TIME"))
        exposure = float(np.median(tb.getcol("EXPOSURE", 0, 1)))
    finally:
        tb.close()
    tb.open(f"{ms}/FIELD")
    try:
        phase_dir = tb.getcol("PHASE_DIR")[:, 0, 0]
    finally:
        tb.close()
    tb.open(f"{ms}/SPECTRAL_WINDOW")
    try:
        # CHAN_FREQ is (chan, spw) and may be ragged across windows; gather them one by one.
        freqs = np.concatenate([tb.getcell("CHAN_FREQ", i) for i in range(tb.nrows())])
    finally:
        tb.close()
    tb.open(f"{ms}/ANTENNA")
    try:
        names = [str(n) for n in tb.getcol("NAME")]
    finally:
        tb.close()
    start = (times.min() - exposure / 2) / SECONDS_PER_DAY
    end = (times.max() + exposure / 2) / SECONDS_PER_DAY
    mid = 0.5 * (times.min() + times.max()) / SECONDS_PER_DAY
    ra_pc = float(np.degrees(phase_dir[0]) % 360.0)
    dec_pc = float(np.degrees(phase_dir[1]))
    return MsSummary(
        path=ms,
        start_mjd=float(start),
        end_mjd=float(end),
        mid_mjd=float(mid),
        phase_centre_ra_deg=ra_pc,
        phase_centre_dec_deg=dec_pc,
        meridian_ra_deg=meridian_icrs(Time(mid, format="mjd", scale="utc"), dec_pc)[0],
        freq_min_hz=float(freqs.min()),
        freq_max_hz=float(freqs.max()),
        antenna_names=names,
    )


def find_calibrator(
    summary: MsSummary,
    catalogue: Sequence[Calibrator] | None = None,
    min_response: float = DEFAULT_MIN_RESPONSE,
) -> CalibratorInBeam:
    """The brightest apparent catalogue calibrator in the beam at mid-time.

    Raises :class:`NoCalibratorInBeamError` when there is none.
    """
    found = calibrators_in_beam(
        summary.meridian_ra_deg,
        summary.phase_centre_dec_deg,
        summary.centre_freq_hz,
        catalogue if catalogue is not None else load_catalogue(),
        min_response=min_response,
    )
    if not found:
        nearest = nearest_calibrator(
            summary.phase_centre_dec_deg,
            Time(summary.mid_mjd, format="mjd", scale="utc"),
            catalogue if catalogue is not None else load_catalogue(),
        )
        raise NoCalibratorInBeamError(
            summary.path, summary.meridian_ra_deg, summary.phase_centre_dec_deg, nearest
        )
    return found[0]


def _cross_flags(ms: Path) -> Iterator[tuple[NDArray[np.int_], NDArray[np.int_], NDArray[np.bool_]]]:
    """ANTENNA1, ANTENNA2 and FLAG (with FLAG_ROW folded in, shaped pol × chan × row) of the
    cross-correlations of ``ms``, a chunk of rows at a time."""
    tb = _table()
    tb.open(str(ms))
    try:
        nrows = tb.nrows()
        for start in range(0, nrows, _ROW_CHUNK):
            n = min(_ROW_CHUNK, nrows - start)
            a1 = tb.getcol("ANTENNA1", start, n)
            a2 = tb.getcol("ANTENNA2", start, n)
            flag = tb.getcol("FLAG", start, n) | tb.getcol("FLAG_ROW", start, n)[None, None, :]
            cross = a1 != a2
            yield a1[cross], a2[cross], flag[:, :, cross]
    finally:
        tb.close()


def unflagged_per_antenna(ms: Path) -> dict[int, int]:
    """Unflagged cross-correlation samples (rows x channels x pols) touching each antenna."""
    counts: dict[int, int] = {}
    for a1, a2, flag in _cross_flags(ms):
        good = (~flag).sum(axis=(0, 1))
        for ants in (a1, a2):
            for ant, total in enumerate(np.bincount(ants, weights=good)):
                counts[ant] = counts.get(ant, 0) + int(total)
    return counts


def data_flag_fractions(ms: Path, antenna_names: list[str]) -> tuple[dict[str, float], dict[str, float]]:
    """Flagged fraction of the cross-correlations per antenna name and per subband (sb00 the highest).

    The MS holds the 16 subbands as one ascending band, so subband k is the k-th sixteenth from the top.
    """
    n_ant = len(antenna_names)
    flagged_ant = np.zeros(n_ant)
    total_ant = np.zeros(n_ant)
    flagged_chan: NDArray[np.float64] | None = None
    n_cross = 0
    for a1, a2, flag in _cross_flags(ms):
        per_row = flag.mean(axis=(0, 1))
        for ants in (a1, a2):
            flagged_ant += np.bincount(ants, weights=per_row, minlength=n_ant)[:n_ant]
            total_ant += np.bincount(ants, minlength=n_ant)[:n_ant]
        per_chan = flag.mean(axis=0).sum(axis=1)
        flagged_chan = per_chan if flagged_chan is None else flagged_chan + per_chan
        n_cross += a1.size
    by_antenna = {
        name: round(float(flagged_ant[i] / total_ant[i]), 5)
        for i, name in enumerate(antenna_names)
        if total_ant[i] > 0
    }
    by_subband: dict[str, float] = {}
    if flagged_chan is not None and n_cross and flagged_chan.size % N_SUBBANDS == 0:
        per_sub = (flagged_chan / n_cross).reshape(N_SUBBANDS, -1).mean(axis=1)
        by_subband = {subband_name(N_SUBBANDS - 1 - k): round(float(f), 5) for k, f in enumerate(per_sub)}
    return by_antenna, by_subband


def choose_refant(
    ms: Path, antenna_names: Sequence[str], policy: RefantPolicy = RefantPolicy.EXCLUDE_OUTRIGGERS
) -> str:
    """The antenna with the most unflagged data, restricted or ordered by ``policy``.

    With ``exclude-outriggers`` an outrigger is used only if no core antenna has data at all.
    """
    counts = unflagged_per_antenna(ms)
    return _choose_refant(counts, antenna_names, policy, ms)


def _choose_refant(
    counts: dict[int, int], antenna_names: Sequence[str], policy: RefantPolicy, ms: Path
) -> str:
    candidates = [(counts.get(i, 0), name) for i, name in enumerate(antenna_names) if counts.get(i, 0) > 0]
    if not candidates:
        raise InvalidInputError(f"{ms}: every cross-correlation is flagged; nothing to calibrate")
    core = [c for c in candidates if not is_outrigger(c[1])]
    outer = [c for c in candidates if is_outrigger(c[1])]
    if policy is RefantPolicy.EXCLUDE_OUTRIGGERS:
        pool = core or outer
    elif policy is RefantPolicy.PREFER_OUTRIGGERS:
        pool = outer or core
    else:
        pool = candidates
    # Ties go to the lowest antenna index (max keeps the first of equal counts).
    return max(pool, key=lambda c: c[0])[1]


def write_calibrator_model(ms: Path, summary: MsSummary, cal: Calibrator, drift_beam: bool = True) -> None:
    """Fill MODEL_DATA with ``cal`` as a point source, attenuated by the primary beam.

    The beam is applied per integration and channel, because the source drifts through the fixed beam
    during the transit. The model is computed here, not by CASA's ``ft`` (``science/point_model.py``).
    """

    def spectrum(freqs: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(cal.flux_jy * (freqs / cal.ref_freq_hz) ** cal.spectral_index)

    source = SkyCoord(cal.ra_deg * u.deg, cal.dec_deg * u.deg)

    def drift(times_mjd: NDArray[np.float64], freqs: NDArray[np.float64]) -> NDArray[np.float64]:
        centres = SkyCoord(
            beam_centre_ra_deg(summary, times_mjd) * u.deg, summary.phase_centre_dec_deg * u.deg
        )
        return airy_response(centres.separation(source).rad[:, None], freqs[None, :])

    write_point_model(ms, cal.ra_deg, cal.dec_deg, spectrum, drift if drift_beam else None)


def beam_centre_ra_deg(summary: MsSummary, time_mjd: NDArray[np.float64]) -> NDArray[np.float64]:
    """RA of the fixed (meridian) beam centre at each time: it moves at the sidereal rate."""
    dt_s = (np.asarray(time_mjd) - summary.mid_mjd) * SECONDS_PER_DAY
    return np.asarray((summary.meridian_ra_deg + SIDEREAL_DEG_PER_S * dt_s) % 360.0)


def _phase_rms_deg(sols: CalSolutions) -> float:
    """RMS scatter in time of each antenna's phase about its own mean, pooled over antennas and pols."""
    ok = sols.unflagged()
    deviations: list[NDArray[np.float64]] = []
    for ant in np.unique(sols.antenna):
        rows = sols.antenna == ant
        g = sols.gains[rows]
        good = ok[rows]
        for p in range(g.shape[2]):
            for c in range(g.shape[1]):
                vals = g[good[:, c, p], c, p]
                if vals.size < 2:
                    continue
                mean = vals.sum() / np.abs(vals.sum()) if np.abs(vals.sum()) > 0 else 1.0
                deviations.append(np.angle(vals * np.conj(mean), deg=True))
    if not deviations:
        return float("nan")
    pooled = np.concatenate(deviations)
    return float(np.sqrt(np.mean(pooled**2)))


def assess_solutions(
    apply_sols: Sequence[CalSolutions], phase_sols: CalSolutions, thresholds: QAThresholds
) -> CalibrationQA:
    """QA of a solve: worst flagged fraction and median SNR over the tables to apply, and phase rms."""
    flagged = max(float(1.0 - s.unflagged().mean()) for s in apply_sols)
    medians = [float(np.median(s.snr[s.unflagged()])) for s in apply_sols if s.unflagged().any()]
    median_snr = min(medians) if len(medians) == len(apply_sols) else 0.0
    phase_rms = _phase_rms_deg(phase_sols)
    failures = [c.failure for c in qa_checks(flagged, median_snr, phase_rms, thresholds) if not c.passed]
    return CalibrationQA(
        flagged_fraction=flagged,
        median_snr=median_snr,
        phase_rms_deg=phase_rms,
        thresholds=thresholds,
        passed=not failures,
        failures=failures,
    )


def _require_table(path: Path, step: str, log_path: Path) -> Path:
    if not (path / "table.dat").exists():
        raise CalibrationError(f"{step} wrote no table {path.name}; see the CASA log {log_path}")
    return path


def solve_calibration(
    ms: Path,
    out_dir: Path,
    *,
    log_dir: Path,
    mode: Literal["bandpass", "full"] = "full",
    catalogue: Sequence[Calibrator] | None = None,
    refant: str | None = None,
    refant_policy: RefantPolicy = RefantPolicy.EXCLUDE_OUTRIGGERS,
    min_response: float = DEFAULT_MIN_RESPONSE,
    gain_solint: str = "inf",
    uvrange: str = "",
    validity_hours: float = VALIDITY_HOURS,
    thresholds: QAThresholds | None = None,
    drift_beam: bool = True,
) -> CalibrationResult:
    """Solve calibration on the calibrator transit in ``ms`` and write caltables into ``out_dir``.

    ``mode="full"`` solves per-integration phases, the bandpass (with those phases applied) and then
    amplitude+phase gains with ``gain_solint``; apply the bandpass and gain tables. ``mode="bandpass"``
    stops after the bandpass; apply it with the per-integration phase table.

    Raises :class:`NoCalibratorInBeamError` when no catalogue calibrator is in the beam,
    :class:`CalibrationQAError` when the solutions fail ``thresholds``; in both cases no caltable
    is left in ``out_dir``. Writes MODEL_DATA into ``ms``.
    """
    casa_log = casa_env.configure(log_dir)
    ms = Path(ms).resolve()
    out_dir = Path(out_dir).resolve()
    thresholds = thresholds or QAThresholds()
    bound = log.bind(ms=str(ms), mode=mode)

    summary = read_ms_summary(ms)
    found = find_calibrator(summary, catalogue, min_response=min_response)
    cal = found.calibrator
    counts = unflagged_per_antenna(ms)
    active = {ant for ant, n in counts.items() if n > 0}
    if refant is not None and refant not in summary.antenna_names:
        raise InvalidInputError(
            f"{ms}: reference antenna {refant!r} is not in the Measurement Set; it has "
            f"{', '.join(summary.antenna_names)}"
        )
    refant = refant or _choose_refant(counts, summary.antenna_names, refant_policy, ms)
    bound = bound.bind(calibrator=cal.name, refant=refant)
    bound.info("calibrator in beam", offset_deg=round(found.offset_deg, 3), response=round(found.response, 3))

    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = f"{ms.stem}_{cal.name}"
    workdir = out_dir / f".solve-{prefix}-{uuid.uuid4().hex[:8]}"
    workdir.mkdir()
    try:
        from casatasks import bandpass, gaincal

        write_calibrator_model(ms, summary, cal, drift_beam=drift_beam)
        scratch = {
            "prior_phase": workdir / f"{prefix}.g0",
            "bandpass": workdir / f"{prefix}.bcal",
            "gain": workdir / f"{prefix}.gcal",
        }
        common = {"vis": str(ms), "refant": refant, "uvrange": uvrange, "minsnr": 3.0}
        gaincal(caltable=str(scratch["prior_phase"]), calmode="p", solint="int", gaintype="G", **common)
        _require_table(scratch["prior_phase"], "gaincal (phase)", casa_log)
        bandpass(
            caltable=str(scratch["bandpass"]),
            solint="inf",
            combine="scan",
            bandtype="B",
            gaintable=[str(scratch["prior_phase"])],
            **common,
        )
        _require_table(scratch["bandpass"], "bandpass", casa_log)
        if mode == "full":
            gaincal(
                caltable=str(scratch["gain"]),
                calmode="ap",
                solint=gain_solint,
                gaintype="G",
                gaintable=[str(scratch["bandpass"])],
                **common,
            )
            _require_table(scratch["gain"], "gaincal (amplitude+phase)", casa_log)
            apply_kinds = ["bandpass", "gain"]
        else:
            del scratch["gain"]
            apply_kinds = ["bandpass", "prior_phase"]

        sols = {kind: read_caltable(path).for_antennas(active) for kind, path in scratch.items()}
        by_antenna, by_subband = data_flag_fractions(ms, summary.antenna_names)
        plots = {
            "flag_fractions": plot_flag_fractions(
                by_antenna, by_subband, out_dir / f"{prefix}_flags.png", f"{cal.name}: flagged data"
            ),
            "bandpass_amplitude": plot_bandpass_amplitude(
                sols["bandpass"], out_dir / f"{prefix}_bandpass_amp.png", f"{cal.name}: bandpass amplitude"
            ),
            "gain_phase": plot_gain_phase_vs_time(
                sols["prior_phase"], out_dir / f"{prefix}_gain_phase.png", f"{cal.name}: phase per int"
            ),
            "gain_amplitude": plot_gain_amplitude_per_antenna(
                sols.get("gain", sols["bandpass"]),
                out_dir / f"{prefix}_gain_amp.png",
                f"{cal.name}: gain amplitude per antenna",
            ),
        }
        qa = assess_solutions([sols[k] for k in apply_kinds], sols["prior_phase"], thresholds).model_copy(
            update={"data_flagged_by_antenna": by_antenna, "data_flagged_by_subband": by_subband}
        )
        most_flagged = max(by_antenna.items(), key=lambda kv: kv[1], default=("none", 0.0))
        bound.info(
            "calibration QA",
            **qa.model_dump(exclude={"thresholds", "data_flagged_by_antenna", "data_flagged_by_subband"}),
            most_flagged_antenna=f"{most_flagged[0]} {most_flagged[1]:.3f}",
        )
        if not qa.passed:
            raise CalibrationQAError(ms, qa)

        tables: dict[str, Path] = {}
        for kind, path in scratch.items():
            final = out_dir / path.name
            if final.exists():
                shutil.rmtree(final)
            path.rename(final)
            tables[kind] = final
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    half = validity_hours / 24.0
    return CalibrationResult(
        ms_path=ms,
        mode=mode,
        calibrator=cal.name,
        calibrator_offset_deg=found.offset_deg,
        calibrator_model_flux_jy=cal.flux_at(summary.centre_freq_hz),
        refant=refant,
        tables=tables,
        apply_tables=[tables[k] for k in apply_kinds],
        qa=qa,
        plots=plots,
        mid_mjd=summary.mid_mjd,
        valid_start_mjd=summary.mid_mjd - half,
        valid_end_mjd=summary.mid_mjd + half,
        pointing_dec_deg=summary.phase_centre_dec_deg,
        casa_log=casa_log,
    )
