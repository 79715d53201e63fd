"""Apply caltables to a target Measurement Set, and choose which solve applies to a target.

:func:`select_caltable` is the pure rule the scheduler uses with records read from the database:
the nearest earlier solve that passed QA, whose validity window covers the target time.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, TypeVar

import structlog
from pydantic import BaseModel

from science import casa_env
from science.errors import InvalidInputError

log = structlog.get_logger(__name__)

_ROW_CHUNK = 20_000


class ApplyCalibrationError(RuntimeError):
    """applycal ran but left no CORRECTED_DATA (see the CASA log named in the message)."""


class ApplyResult(BaseModel):
    """The outcome of :func:`apply_calibration`."""

    ms_path: Path
    caltables: list[Path]
    flagged_fraction_before: float
    flagged_fraction_after: float
    casa_log: Path


class CaltableRecord(Protocol):
    """What :func:`select_caltable` needs from a stored solve (any object with these attributes)."""

    @property
    def mid_mjd(self) -> float: ...
    @property
    def valid_start_mjd(self) -> float: ...
    @property
    def valid_end_mjd(self) -> float: ...
    @property
    def qa_passed(self) -> bool: ...


R = TypeVar("R", bound=CaltableRecord)


class CaltableCandidate(BaseModel):
    """A stored solve as :func:`select_caltable` sees it; database rows may be mapped onto this."""

    key: str = ""
    mid_mjd: float
    valid_start_mjd: float
    valid_end_mjd: float
    qa_passed: bool
    apply_tables: list[Path] = []


def flagged_fraction(ms: Path) -> float:
    """Fraction of visibility samples (row x channel x pol) flagged in ``ms``."""
    from casatools import table

    tb = table()
    tb.open(str(ms))
    flagged = total = 0
    try:
        nrows = tb.nrows()
        for start in range(0, nrows, _ROW_CHUNK):
            n = min(_ROW_CHUNK, nrows - start)
            flags = tb.getcol("FLAG", start, n) | tb.getcol("FLAG_ROW", start, n)[None, None, :]
            flagged += int(flags.sum())
            total += flags.size
    finally:
        tb.close()
    return flagged / total if total else 1.0


def apply_calibration(
    ms: Path,
    caltables: Sequence[Path],
    *,
    log_dir: Path,
    interp: Sequence[str] | None = None,
    calwt: bool = False,
) -> ApplyResult:
    """Apply ``caltables`` (in order) to ``ms``, writing CORRECTED_DATA; report the flagging after.

    Solutions that are flagged in a table flag the data they would correct, so the flagged
    fraction after applycal shows how much of the target the calibration could not cover.
    """
    casa_log = casa_env.configure(log_dir)
    ms = Path(ms).resolve()
    tables = [Path(t).resolve() for t in caltables]
    if not (ms / "table.dat").exists():
        raise InvalidInputError(f"{ms} is not a Measurement Set (no table.dat)")
    if not tables:
        raise InvalidInputError(f"no caltables given to apply to {ms}")
    missing = [str(t) for t in tables if not (t / "table.dat").exists()]
    if missing:
        raise InvalidInputError(f"caltables not found: {', '.join(missing)}")

    from casatasks import applycal

    before = flagged_fraction(ms)
    # 'linear' interpolates in time between solutions and holds the nearest one outside them,
    # which is what a target observed after its calibrator needs.
    applycal(
        vis=str(ms),
        gaintable=[str(t) for t in tables],
        interp=list(interp) if interp is not None else ["linear"] * len(tables),
        calwt=[calwt] * len(tables),
        flagbackup=False,
    )
    if not _has_column(ms, "CORRECTED_DATA"):
        raise ApplyCalibrationError(f"applycal left no CORRECTED_DATA in {ms}; see the CASA log {casa_log}")
    after = flagged_fraction(ms)
    log.info("applied calibration", ms=str(ms), tables=[t.name for t in tables], flagged_after=after)
    return ApplyResult(
        ms_path=ms,
        caltables=tables,
        flagged_fraction_before=before,
        flagged_fraction_after=after,
        casa_log=casa_log,
    )


def _has_column(ms: Path, column: str) -> bool:
    from casatools import table

    tb = table()
    tb.open(str(ms))
    try:
        return column in tb.colnames()
    finally:
        tb.close()


# Mid-times of the same observation computed by different tools (pyuvdata at conversion, CASA at the
# solve) can differ in their last digits; within a second they are the same instant.
SAME_TIME_DAYS = 1.0 / 86400.0
# The oldest solve, before a target, that may still be applied to it.
MAX_AGE_HOURS = 12.0


def select_caltable(
    candidates: Sequence[R], target_mjd: float, max_age_hours: float = MAX_AGE_HOURS
) -> R | None:
    """The solve to apply to an observation at ``target_mjd``, or None.

    Eligible: QA passed, solved at or before the target (mid-time), no more than ``max_age_hours``
    earlier, and with a validity window that contains the target. Among those, the latest wins.
    """
    max_age_days = max_age_hours / 24.0
    eligible = [
        c
        for c in candidates
        if c.qa_passed
        and c.mid_mjd <= target_mjd + SAME_TIME_DAYS
        and target_mjd - c.mid_mjd <= max_age_days
        and c.valid_start_mjd - SAME_TIME_DAYS <= target_mjd <= c.valid_end_mjd + SAME_TIME_DAYS
    ]
    if not eligible:
        return None
    return max(eligible, key=lambda c: c.mid_mjd)


def why_not_applicable(chosen: CaltableRecord, target_mjd: float) -> str | None:
    """Why a solve chosen by hand cannot calibrate an observation at ``target_mjd``, or None if it can.

    A hand-picked solve need not be the latest before the target, but it must have passed QA and its
    validity window must contain the target.
    """
    if not chosen.qa_passed:
        return "its QA failed"
    if not chosen.valid_start_mjd - SAME_TIME_DAYS <= target_mjd <= chosen.valid_end_mjd + SAME_TIME_DAYS:
        return (
            f"the target (MJD {target_mjd:.5f}) is outside its validity window "
            f"(MJD {chosen.valid_start_mjd:.5f} to {chosen.valid_end_mjd:.5f})"
        )
    return None
