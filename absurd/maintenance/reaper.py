"""The reaper: reclaims runs whose lease expired, because the worker holding them died or stalled, and
marks stopped a worker or scheduler that died and has been replaced on its host.

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
    retire_after_s: float = Field(
        120.0, gt=0, description="a daemon silent this long, replaced on its host since, is marked stopped"
    )


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
        """Reclaim up to ``batch`` expired runs, and retire the daemons that died and were replaced on their
        host (0019_replaced_daemons.sql); return how many runs were reclaimed."""
        row = conn.execute(queries.REAP_EXPIRED, (self.settings.batch,)).fetchone()
        reclaimed = int(row[0]) if row and row[0] else 0
        if reclaimed:
            log.warning("reclaimed runs with expired leases", count=reclaimed)
        for kind, daemon_id in conn.execute(
            queries.RETIRE_REPLACED, (self.settings.retire_after_s,)
        ).fetchall():
            log.info("a daemon that died was replaced on its host; marked stopped", kind=kind, id=daemon_id)
        return reclaimed
