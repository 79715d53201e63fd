"""The event pruner: deletes event-log rows older than the retention.

The event log holds every emission so that event schedules see each one once; an event older than the
retention has long been fired for (or its schedule was off). Every scheduler runs it, at start and then
every ``interval_s`` (an hour).
"""

from __future__ import annotations

import psycopg
import structlog
from pydantic import BaseModel, ConfigDict, Field

from absurd.maintenance.retention import DEFAULT_RETENTION_S
from absurd.schedules import queries

log = structlog.get_logger("absurd.maintenance.event_pruner")


class EventPrunerSettings(BaseModel):
    """What the event pruner keeps and how often it runs."""

    model_config = ConfigDict(extra="forbid")
    retention_s: float = Field(DEFAULT_RETENTION_S, gt=0, description="event-log rows older than this go")
    interval_s: float = Field(3600.0, gt=0, description="seconds between passes")


class EventPruner:
    """Deletes event-log rows past the retention period."""

    name = "event_pruner"
    first_run_s = 0.0

    def __init__(self, settings: EventPrunerSettings | None = None) -> None:
        self.settings = settings or EventPrunerSettings()

    @property
    def interval_s(self) -> float:
        """Seconds between passes."""
        return self.settings.interval_s

    def run_once(self, conn: psycopg.Connection) -> int:
        """Delete the event-log rows past retention; return how many."""
        deleted = conn.execute(queries.PRUNE_EVENT_LOG, (self.settings.retention_s,)).rowcount
        if deleted > 0:
            log.info("deleted event-log rows past retention", count=deleted)
        return max(deleted, 0)
