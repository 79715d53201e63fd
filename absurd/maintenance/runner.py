"""The runner a daemon drives: runs each maintenance duty when it is due, and outlives its failures."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager

import psycopg
import structlog

from absurd.daemon import DATABASE_DOWN
from absurd.maintenance.duty import MaintenanceDuty

log = structlog.get_logger("absurd.maintenance")


class MaintenanceRunner:
    """Runs ``duties`` when due. A daemon with a loop of its own calls ``run_due`` from it (the
    scheduler); one without gives the runner a thread that calls ``run_forever`` (the worker).

    ``context`` (such as the daemon's id) is bound to every line the duties log.
    """

    def __init__(
        self,
        duties: Iterable[MaintenanceDuty],
        context: Mapping[str, object] | None = None,
        retry_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.duties = list(duties)
        self.retry_s = retry_s
        self._context = dict(context or {})
        self._clock = clock
        start = clock()
        self._due = {duty.name: start + duty.first_run_s for duty in self.duties}

    def run_due(self, conn: psycopg.Connection) -> dict[str, int]:
        """Run every duty whose time has come on ``conn`` (autocommit); return rows handled by name.
        A duty that fails is logged and tried again after ``retry_s``; the others still run."""
        done: dict[str, int] = {}
        with structlog.contextvars.bound_contextvars(**self._context):
            for duty in self.duties:
                now = self._clock()
                if now < self._due[duty.name]:
                    continue
                try:
                    done[duty.name] = duty.run_once(conn)
                    self._due[duty.name] = now + duty.interval_s
                except DATABASE_DOWN as exc:
                    log.warning("maintenance skipped; database unavailable", duty=duty.name, error=str(exc))
                    self._due[duty.name] = now + min(self.retry_s, duty.interval_s)
                except Exception:
                    # A bug or a bad row must not end the duty for the life of the daemon.
                    log.exception("maintenance pass failed; retrying", duty=duty.name)
                    self._due[duty.name] = now + min(self.retry_s, duty.interval_s)
        return done

    def seconds_to_next(self) -> float:
        """Seconds until the next duty is due (0 when one is due now)."""
        if not self._due:
            return self.retry_s
        return max(0.0, min(self._due.values()) - self._clock())

    def run_forever(
        self,
        connection: Callable[[], AbstractContextManager[psycopg.Connection]],
        stop: threading.Event,
    ) -> None:
        """Run due duties on a connection borrowed from ``connection`` until ``stop`` is set."""
        while True:
            wait = self.retry_s
            try:
                with connection() as conn:
                    self.run_due(conn)
                wait = self.seconds_to_next()
            except DATABASE_DOWN as exc:
                with structlog.contextvars.bound_contextvars(**self._context):
                    log.warning("maintenance skipped; database unavailable", error=str(exc))
            if stop.wait(wait):
                return
