"""The scheduler daemon: fires due schedules and event triggers, exactly once however many run.

Each tick:
1. For each cron or interval schedule whose ``next_fire_at`` has come, lock its row (SKIP LOCKED, so
   schedulers share the work), work out the due fire times, apply its catch-up policy, make each fire,
   and move ``next_fire_at`` on, all in one transaction.
2. For each logged event that an enabled event schedule has not yet fired for, make that fire.

A fire is a row unique by (schedule, fire time) or (schedule, event id), inserted in the same
transaction as its workflow; a second scheduler's insert conflicts and submits nothing.

Between ticks it heartbeats, and runs its maintenance duty: the event pruner (absurd/maintenance/).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import structlog
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field

from absurd.daemon import DATABASE_DOWN, Daemon, default_daemon_id
from absurd.database import connect
from absurd.maintenance import MaintenanceRunner
from absurd.maintenance.event_pruner import EventPruner, EventPrunerSettings
from absurd.schedules import queries
from absurd.schedules.fire import event_context, fire
from absurd.schedules.sync import from_row

log = structlog.get_logger("absurd.scheduler")


class SchedulerSettings(BaseModel):
    """How a scheduler behaves."""

    model_config = ConfigDict(extra="forbid")
    tick_s: float = Field(1.0, gt=0, description="how often due schedules and new events are checked")
    grace_s: float = Field(60.0, ge=0, description="a fire at most this late is on time, not missed")
    heartbeat_s: float = Field(10.0, gt=0)
    batch: int = Field(100, ge=1, description="most schedules or events handled per tick")
    event_pruner: EventPrunerSettings = Field(default_factory=EventPrunerSettings)
    metrics_port: int | None = Field(None, ge=0, le=65535)
    scheduler_id: str | None = None


class Scheduler(Daemon):
    """One scheduler process. ``run()`` blocks until ``stop()`` or SIGTERM/SIGINT; ``tick()`` does one
    pass and may be driven by a test with its own clock."""

    kind = "scheduler"

    def __init__(
        self,
        settings: SchedulerSettings | None = None,
        dsn: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings or SchedulerSettings()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.scheduler_id = self.settings.scheduler_id or default_daemon_id()
        super().__init__(
            log, {"scheduler_id": self.scheduler_id}, dsn, metrics_port=self.settings.metrics_port
        )
        self._conn: psycopg.Connection | None = None
        self.maintenance = MaintenanceRunner([EventPruner(self.settings.event_pruner)], context=self.identity)
        self.fired = 0

    @property
    def conn(self) -> psycopg.Connection:
        """The scheduler's connection, reopened after a failure."""
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = connect(self.dsn)
        return self._conn

    # One pass ------------------------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> int:
        """Fire what is due at ``now`` (default: the clock) and what new events ask for; returns the
        number of fires this scheduler made."""
        now = now or self.clock()
        made = self._fire_due(now) + self._fire_events()
        self.fired += made
        return made

    def _fire_due(self, now: datetime) -> int:
        made = 0
        names = [
            r[0] for r in self.conn.execute(queries.DUE_SCHEDULES, (now, self.settings.batch)).fetchall()
        ]
        for name in names:
            try:
                made += self._fire_schedule(name, now)
            except DATABASE_DOWN:
                raise
            except Exception as exc:
                # One bad schedule must not stop the others: its failure is recorded and it moves on.
                self._log.exception("schedule could not fire", schedule=name)
                made += self._record_failure(name, now, None, f"{type(exc).__name__}: {exc}")
        return made

    def _fire_schedule(self, name: str, now: datetime) -> int:
        made = 0
        with self.conn.transaction(), self.conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(queries.LOCK_DUE_SCHEDULE, (name, now)).fetchone()
            if row is None:
                return 0  # another scheduler holds it, or has just fired it
            schedule = from_row(row)
            policy = schedule.catch_up
            # Enough of the latest due times for any policy: the catch-up limit plus those on time.
            on_time_bound = int(self.settings.grace_s / (schedule.trigger.every or 60.0)) + 2
            due = schedule.trigger.times_between(row["next_fire_at"], now, policy.limit + on_time_bound)
            chosen = policy.choose(due, now, self.settings.grace_s)
            for fire_time, kind in chosen:
                previous = schedule.trigger.previous_time(fire_time)
                made += self._fire_one(name, row["template"], fire_time, kind, previous=previous)
            skipped = len(due) - len(chosen)
            if skipped:
                self._log.warning("missed fires skipped by catch-up policy", schedule=name, skipped=skipped)
            upcoming = schedule.trigger.next_times(now, 1)
            cur.execute(queries.SET_NEXT_FIRE, (upcoming[0] if upcoming else None, name))
        return made

    def _record_failure(self, name: str, now: datetime, event: dict[str, Any] | None, error: str) -> int:
        """Record a fire that failed (no workflow, with the error) and move the schedule past it, so the
        next tick does not fail the same way. ``event`` is the pending event row for event schedules."""
        try:
            with self.conn.transaction(), self.conn.cursor(row_factory=dict_row) as cur:
                if event is not None:
                    fire_time, kind, event_id = event["emitted_at"], "event", event["event_id"]
                else:
                    row = cur.execute(queries.LOCK_DUE_SCHEDULE, (name, now)).fetchone()
                    if row is None:
                        return 0
                    fire_time, kind, event_id = row["next_fire_at"], "scheduled", None
                    try:
                        upcoming = from_row(row).trigger.next_times(now, 1)
                        following = upcoming[0] if upcoming else None
                    except Exception:
                        following = now + timedelta(hours=1)
                    cur.execute(queries.SET_NEXT_FIRE, (following, name))
                cur.execute(
                    queries.FIRE, (name, fire_time, kind, event_id, self.scheduler_id, Jsonb({}), None, error)
                )
        except DATABASE_DOWN:
            raise
        except Exception:
            self._log.exception("could not record the failed fire", schedule=name)
            return 0
        self.metrics.fire_errors.labels(name).inc()
        return 1

    def _fire_events(self) -> int:
        made = 0
        with self.conn.cursor(row_factory=dict_row) as cur:
            pending = cur.execute(queries.PENDING_EVENTS, (self.settings.batch,)).fetchall()
        for row in pending:
            try:
                with self.conn.transaction():
                    made += self._fire_one(
                        row["name"],
                        row["template"],
                        row["emitted_at"],
                        "event",
                        event_id=row["event_id"],
                        event=event_context(row["payload"]),
                    )
            except DATABASE_DOWN:
                raise
            except Exception as exc:
                self._log.exception("event could not fire its schedule", schedule=row["name"])
                made += self._record_failure(
                    row["name"], row["emitted_at"], row, f"{type(exc).__name__}: {exc}"
                )
        return made

    def _fire_one(
        self,
        name: str,
        template: dict[str, object],
        fire_time: datetime,
        kind: str,
        event_id: int | None = None,
        event: dict[str, object] | None = None,
        previous: datetime | None = None,
    ) -> int:
        fired = fire(self.conn, name, template, fire_time, kind, self.scheduler_id, event_id, event, previous)
        if fired.fire_id is None:
            return 0
        if fired.error:
            self.metrics.fire_errors.labels(name).inc()
            self._log.error("schedule fired without a workflow", schedule=name, error=fired.error)
        else:
            self.metrics.fires.labels(name, kind).inc()
            self._log.info(
                "schedule fired", schedule=name, kind=kind, fire_time=fire_time.isoformat(), event_id=event_id
            )
        return 1

    # The daemon (run() and stop() are the Daemon's; a stop lets the tick in progress finish) -----

    def _start(self) -> None:
        self._retry(
            lambda: self.conn.execute(
                queries.REGISTER_SCHEDULER, (self.scheduler_id, socket.gethostname(), os.getpid())
            ),
            "register scheduler",
        )

    def _ready_status(self) -> str:
        return "scheduling"

    def _started_fields(self) -> dict[str, object]:
        return {"tick_s": self.settings.tick_s}

    def _serve(self) -> None:
        next_beat = time.monotonic() + self.settings.heartbeat_s
        backoff = 0.5
        while not self._stopping.is_set():
            wait = self.settings.tick_s
            try:
                self.tick()
                if time.monotonic() >= next_beat:
                    self.conn.execute(queries.SCHEDULER_HEARTBEAT, (self.scheduler_id,))
                    next_beat = time.monotonic() + self.settings.heartbeat_s
                self.maintenance.run_due(self.conn)
                backoff = 0.5
            except DATABASE_DOWN as exc:
                self._log.warning("tick failed; database unavailable", error=str(exc), retry_in_s=backoff)
                self.sd.status(f"database unavailable: {exc}".splitlines()[0])
                wait, backoff = backoff, min(backoff * 2, 10.0)
            self._pause(wait)

    def _shutdown(self) -> None:
        try:
            self.conn.execute(queries.SCHEDULER_STOPPED, (self.scheduler_id,))
        except Exception as exc:
            self._log.warning("could not mark scheduler stopped", error=str(exc))
        if self._conn is not None:
            self._conn.close()

    def _stopped_fields(self) -> dict[str, object]:
        return {"fired": self.fired}
