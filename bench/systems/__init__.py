"""Queue systems the side-by-side benchmark (``python -m bench.peers``) can drive, behind one interface.

``engine`` is this project's queue; ``pgq`` is PgQueuer (the optional ``bench`` extra) and ``pgq_worker``
the worker process it is drained by. ``measure`` times a drain and a steady load on any of them.
"""

from __future__ import annotations

import subprocess
from typing import Protocol


class System(Protocol):
    """One queue system, set up in a database: it can be emptied, fed no-op jobs and drained."""

    label: str

    def reset(self) -> None:
        """Empty the system's tables, so each measurement starts from the same state."""

    def enqueue(self, n: int, batch: int) -> None:
        """Add ``n`` no-op jobs in batches of ``batch``, each batch one call of the system's bulk API."""

    def spawn_one(self) -> None:
        """Add one no-op job, as an application would for a single event."""

    def analyze(self) -> None:
        """Refresh the planner's statistics on the system's tables."""

    def launch(self, processes: int) -> list[subprocess.Popen[bytes]]:
        """Start ``processes`` worker processes the way an operator would."""

    def unfinished(self) -> bool:
        """Whether any job is not yet done. Polled every 50 ms through a drain, so it must cost the same
        however many jobs are queued or done: it reads one index entry, not a count."""

    def any_done(self) -> bool:
        """Whether any job has been done since the last reset (as cheap as ``unfinished``)."""

    def completed(self) -> int:
        """How many jobs have been done successfully since the last reset."""

    def clock(self) -> float:
        """The database's clock, as a Unix epoch."""

    def latencies_ms(self, since: float) -> list[float]:
        """Spawn-to-start of each job created after ``since`` (a database epoch), database clock."""

    def close(self) -> None:
        """Release the system's connections."""
