"""What the calibration wizard reads: the Measurement Sets to solve on, a solve's stored caltable (by
its id or by the task that solved it), and the Measurement Sets a caltable's validity covers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel

from science.applycal import SAME_TIME_DAYS

_MS_CHOICES = """
SELECT id, path, group_id, mid_time, mid_mjd, ra_deg, dec_deg, n_antennas, n_channels, status,
       calibrated_with
FROM products.ms_index WHERE superseded_by IS NULL
ORDER BY mid_mjd DESC, id DESC LIMIT %s
"""
_MS_COVERED = """
SELECT id, path, group_id, mid_time, mid_mjd, dec_deg, calibrated_with
FROM products.ms_index
WHERE superseded_by IS NULL AND mid_mjd BETWEEN %(start)s AND %(end)s
ORDER BY mid_mjd, id LIMIT %(limit)s
"""
_CALTABLE_COLUMNS = """
SELECT id, ms_path, mode, calibrator, calibrator_offset_deg, calibrator_flux_jy, refant, tables,
       apply_tables, mid_mjd, valid_start_mjd, valid_end_mjd, valid_from, valid_until, qa_passed, qa,
       plots, task_id, recorded_at, pointing_dec_deg
FROM products.caltables
"""
_CALTABLE = _CALTABLE_COLUMNS + "WHERE id = %s"
_CALTABLE_OF_TASK = _CALTABLE_COLUMNS + "WHERE task_id = %s"
_CALTABLE_FOR = _CALTABLE_COLUMNS + "WHERE ms_path = %s AND mode = %s"


class Caltable(BaseModel):
    """A stored solve, as the wizard's review shows it."""

    id: int
    ms_path: str
    mode: str
    calibrator: str
    calibrator_offset_deg: float
    calibrator_flux_jy: float
    refant: str
    tables: dict[str, str]
    apply_tables: list[str]
    mid_mjd: float
    valid_start_mjd: float
    valid_end_mjd: float
    valid_from: datetime
    valid_until: datetime
    qa_passed: bool
    qa: dict[str, Any]
    plots: dict[str, str]
    task_id: int | None
    recorded_at: datetime
    pointing_dec_deg: float | None


def ms_choices(conn: psycopg.Connection, limit: int = 200) -> list[dict[str, Any]]:
    """The newest current (not superseded) Measurement Sets, to pick one to solve on."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_MS_CHOICES, (limit,)).fetchall()


def ms_covered(conn: psycopg.Connection, caltable: Caltable, limit: int = 200) -> list[dict[str, Any]]:
    """Current Measurement Sets whose mid-time lies in the caltable's validity window."""
    window = {
        "start": caltable.valid_start_mjd - SAME_TIME_DAYS,
        "end": caltable.valid_end_mjd + SAME_TIME_DAYS,
        "limit": limit,
    }
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_MS_COVERED, window).fetchall()


def _one(conn: psycopg.Connection, query: str, params: tuple[Any, ...]) -> Caltable | None:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query, params).fetchone()
    return Caltable.model_validate(row) if row else None


def caltable(conn: psycopg.Connection, caltable_id: int) -> Caltable | None:
    """The solve stored as ``caltable_id``, or None."""
    return _one(conn, _CALTABLE, (caltable_id,))


def caltable_of_task(conn: psycopg.Connection, task_id: int) -> Caltable | None:
    """The caltable a solve-calibration task recorded, or None (not done, nothing solved, or replaced
    since by a later solve of the same MS and mode)."""
    return _one(conn, _CALTABLE_OF_TASK, (task_id,))


def caltable_for(conn: psycopg.Connection, ms_path: str, mode: str) -> Caltable | None:
    """The caltable stored now for this MS and mode (one per pair), or None."""
    return _one(conn, _CALTABLE_FOR, (ms_path, mode))
