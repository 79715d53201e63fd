"""The reaper: reclaims runs whose lease expired, because the worker holding them died or stalled.

Each expired run fails with reason ``lease_expired`` and its task goes back to ``pending`` (or to
``failed`` at ``max_lease_expiries``); see ``absurd.reap_expired`` and docs/state-machine.md. Every
worker runs it: at start, so a worker restarted after a crash reclaims at once, then every
``interval_s`` (5 s). Reapers on several workers share the rows (SKIP LOCKED).
"""

from __future__ import annotations

import psycopg
import structlog
from pydantic import BaseModel, ConfigDict, Field

from absurd import queries

log = structlog.get_logger("absurd.maintenance.reaper")


class ReaperSettings(BaseModel):
    """How often the reaper runs and how much it takes per pass."""

    model_config = ConfigDict(extra="forbid")
    interval_s: float = Field(5.0, gt=0, description="seconds between passes")
    batch: int = Field(1000, ge=1, description="most runs reclaimed per pass")


class Reaper:
    """Reclaims runs whose lease has expired."""

    name = "reaper"
    first_run_s = 0.0

    def __init__(self, settings: ReaperSettings | None = None) -> None:
        self.settings = settings or ReaperSettings()

    @property
    def interval_s(self) -> float:
        """Seconds between passes."""
        return self.settings.interval_s

    def run_once(self, conn: psycopg.Connection) -> int:
        """Reclaim up to ``batch`` expired runs; return how many."""
        row = conn.execute(queries.REAP_EXPIRED, (self.settings.batch,)).fetchone()
        reclaimed = int(row[0]) if row and row[0] else 0
        if reclaimed:
            log.warning("reclaimed runs with expired leases", count=reclaimed)
        return reclaimed
