"""LISTEN for spawn notifications so idle workers wake at once instead of waiting for a poll."""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg
import structlog

from absurd.database import connect

log = structlog.get_logger("absurd.wakeup")
CHANNEL = "absurd_wake"


class WakeListener:
    """Calls ``on_work`` whenever work may have arrived on one of ``queues`` (and once after each connect);
    reconnects on failure."""

    def __init__(
        self, dsn: str, queues: set[str], on_work: Callable[[], None], stopping: threading.Event
    ) -> None:
        self.dsn = dsn
        self.queues = queues
        self.on_work = on_work
        self.stopping = stopping

    def run(self) -> None:
        """Listen until ``stopping`` is set."""
        delay = 0.5
        while not self.stopping.is_set():
            try:
                with connect(self.dsn) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    delay = 0.5
                    # Something may have arrived while we were not listening.
                    self.on_work()
                    while not self.stopping.is_set():
                        for note in conn.notifies(timeout=1.0):
                            # An empty payload means "any queue" (reaped or released runs).
                            if not note.payload or note.payload in self.queues:
                                self.on_work()
            except (psycopg.OperationalError, Exception) as exc:
                if self.stopping.is_set():
                    return
                log.warning("notification listener lost its connection; reconnecting", error=str(exc))
                self.stopping.wait(delay)
                delay = min(delay * 2, 10.0)
