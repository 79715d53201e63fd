"""What a maintenance duty is: a named job on the database that a daemon runs every so often."""

from __future__ import annotations

from typing import Protocol

import psycopg


class MaintenanceDuty(Protocol):
    """One duty. ``run_once`` does one bounded pass on an autocommit connection and returns how many
    rows it handled; a ``MaintenanceRunner`` decides when, from ``first_run_s`` and ``interval_s``."""

    @property
    def name(self) -> str:
        """Short name for logs, such as ``reaper``."""
        ...

    @property
    def interval_s(self) -> float:
        """Seconds between passes."""
        ...

    @property
    def first_run_s(self) -> float:
        """Seconds after the daemon starts before the first pass (0: at once)."""
        ...

    def run_once(self, conn: psycopg.Connection) -> int:
        """Do one pass; return the number of rows reclaimed or deleted."""
        ...
