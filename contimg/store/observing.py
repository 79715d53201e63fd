"""What the pipeline has produced lately, for the alerting metrics: the newest subband file, the newest
Measurement Set, and whether a solve valid for that MS (its time and its declination) exists.

The products database holds all of it; the streaming converter's metrics endpoint reads it per scrape.
"""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel

from science.applycal import MAX_AGE_HOURS, SAME_TIME_DAYS, select_caltable

_NEWEST_FILE = "SELECT max(registered_at) FROM products.stream_files"
_NEWEST_MS = """
SELECT path, recorded_at, mid_mjd, dec_deg FROM products.ms_index
WHERE superseded_by IS NULL ORDER BY recorded_at DESC, id DESC LIMIT 1
"""
_SOLVES_BEFORE = """
SELECT id, qa_passed, mid_mjd, valid_start_mjd, valid_end_mjd, pointing_dec_deg
FROM products.caltables
WHERE qa_passed AND mid_mjd BETWEEN %(earliest)s AND %(target)s
"""


class Solve(BaseModel):
    """The columns of a solve that decide whether it may be applied to an observation."""

    id: int
    qa_passed: bool
    mid_mjd: float
    valid_start_mjd: float
    valid_end_mjd: float
    pointing_dec_deg: float | None


class Observing(BaseModel):
    """The newest products and the calibration that would be applied to the newest MS."""

    newest_file_at: datetime | None
    newest_ms_at: datetime | None
    newest_ms_dec_deg: float | None
    # None when there is no MS yet: there is nothing to calibrate.
    solve: Solve | None
    calibration_valid: bool | None

    @property
    def dec_offset_deg(self) -> float | None:
        """How far in declination the chosen solve was made from the newest MS, when both are known."""
        if self.solve is None or self.solve.pointing_dec_deg is None or self.newest_ms_dec_deg is None:
            return None
        return abs(self.newest_ms_dec_deg - self.solve.pointing_dec_deg)


def observing_state(conn: psycopg.Connection) -> Observing:
    """Read the newest file and MS, and choose a solve for that MS as apply-calibration would."""
    newest_file = conn.execute(_NEWEST_FILE).fetchone()
    with conn.cursor(row_factory=dict_row) as cur:
        ms = cur.execute(_NEWEST_MS).fetchone()
        if ms is None:
            return Observing(
                newest_file_at=newest_file[0] if newest_file else None,
                newest_ms_at=None,
                newest_ms_dec_deg=None,
                solve=None,
                calibration_valid=None,
            )
        target = float(ms["mid_mjd"])
        rows = cur.execute(
            _SOLVES_BEFORE,
            {"earliest": target - MAX_AGE_HOURS / 24.0, "target": target + SAME_TIME_DAYS},
        ).fetchall()
    solve = select_caltable([Solve.model_validate(r) for r in rows], target)
    return Observing(
        newest_file_at=newest_file[0] if newest_file else None,
        newest_ms_at=ms["recorded_at"],
        newest_ms_dec_deg=ms["dec_deg"],
        solve=solve,
        calibration_valid=solve is not None,
    )
