"""The pruner: deletes finished tasks (with their runs and checkpoints) older than the retention.

A failed task with an open dead-letter entry is kept, and so is every task of a workflow still in
progress (see ``absurd.cleanup`` and docs/state-machine.md). Every worker runs it, a minute after start
and then every ``interval_s`` (an hour); the built-in ``cleanup`` task runs the same deletion on demand.
"""

from __future__ import annotations

import psycopg
import structlog
from pydantic import BaseModel, ConfigDict, Field

from absurd import queries
from absurd.maintenance.retention import DEFAULT_RETENTION_S

log = structlog.get_logger("absurd.maintenance.pruner")


class PrunerSettings(BaseModel):
    """What the pruner keeps, and how much it deletes per statement and per pass."""

    model_config = ConfigDict(extra="forbid")
    retention_s: float = Field(DEFAULT_RETENTION_S, gt=0, description="finished tasks older than this go")
    interval_s: float = Field(3600.0, gt=0, description="seconds between passes")
    batch: int = Field(1000, ge=1, description="tasks deleted per statement, to keep locks short")
    max_batches: int = Field(100, ge=1, description="statements per pass; a larger backlog takes more passes")


def delete_finished(
    conn: psycopg.Connection, older_than_s: float, batch: int, max_batches: int | None = None
) -> int:
    """Delete finished tasks older than ``older_than_s`` in statements of ``batch`` rows, until one
    deletes fewer or ``max_batches`` have run; return how many were deleted. ``conn`` must autocommit,
    so that each statement's locks are released before the next."""
    deleted, batches = 0, 0
    while max_batches is None or batches < max_batches:
        row = conn.execute(queries.CLEANUP, (older_than_s, batch)).fetchone()
        n = int(row[0]) if row else 0
        deleted += n
        batches += 1
        if n < batch:
            break
    return deleted


class Pruner:
    """Deletes finished tasks past the retention period."""

    name = "pruner"
    # Not at start: a worker in a restart loop would otherwise add a cleanup to every start.
    first_run_s = 60.0

    def __init__(self, settings: PrunerSettings | None = None) -> None:
        self.settings = settings or PrunerSettings()

    @property
    def interval_s(self) -> float:
        """Seconds between passes."""
        return self.settings.interval_s

    def run_once(self, conn: psycopg.Connection) -> int:
        """Delete up to ``batch * max_batches`` finished tasks past retention; return how many."""
        s = self.settings
        deleted = delete_finished(conn, s.retention_s, s.batch, s.max_batches)
        if deleted:
            log.info("deleted finished tasks past retention", count=deleted, retention_s=s.retention_s)
        return deleted
