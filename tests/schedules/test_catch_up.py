"""The scheduler under a settable clock: on-time fires, and each catch-up policy after downtime."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from absurd.scheduler import Scheduler, SchedulerSettings
from tests.schedules.conftest import Clock, count

HOURLY = """
schedules:
  - name: hourly
    trigger: {{cron: "0 * * * *", timezone: UTC}}
    catch_up: {policy}
    workflow:
      tasks:
        - name: say
          type: echo
          params: {{at: "${{params.fire_time}}", previous: "${{params.previous_fire_time}}"}}
"""
T0 = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)


def fire_times(dsn: str) -> list[tuple[datetime, str]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT fire_time, kind FROM absurd.schedule_fires ORDER BY fire_time").fetchall()
    return [(r[0], r[1]) for r in rows]


def test_on_time_fires_once_each_and_passes_its_window(dsn: str, sync_text: Callable[..., None]) -> None:
    sync_text(HOURLY.format(policy="skip"), now=T0)
    clock = Clock(T0)
    scheduler = Scheduler(SchedulerSettings(), dsn, clock=clock)
    for minutes in range(0, 181, 5):  # three hours in 5-minute ticks
        clock.now = T0 + timedelta(minutes=minutes)
        scheduler.tick()
    expected = [datetime(2026, 5, 1, h, tzinfo=UTC) for h in (10, 11, 12)]
    assert fire_times(dsn) == [(t, "scheduled") for t in expected]
    with psycopg.connect(dsn, autocommit=True) as conn:
        params = conn.execute(
            "SELECT t.params FROM absurd.tasks t "
            "JOIN absurd.schedule_fires f ON f.workflow_id = t.workflow_id WHERE f.fire_time = %s",
            (expected[1],),
        ).fetchone()
    assert params is not None
    assert params[0] == {"at": "2026-05-01T11:00:00+00:00", "previous": "2026-05-01T10:00:00+00:00"}
    assert count(dsn, "SELECT count(*) FROM absurd.workflows WHERE name = 'hourly'") == 3


@pytest.mark.parametrize(
    ("policy", "expected_hours"),
    [
        ("skip", []),
        ("fire_once", [15]),
        ("fire_all", list(range(10, 16))),
        ("{policy: fire_all, limit: 2}", [14, 15]),
    ],
)
def test_downtime_follows_the_policy(
    dsn: str, sync_text: Callable[..., None], policy: str, expected_hours: list[int]
) -> None:
    sync_text(HOURLY.format(policy=policy), now=T0)
    # The scheduler was down from 09:30 until 15:30: the fires at 10:00..15:00 were missed.
    back = T0 + timedelta(hours=6)
    Scheduler(SchedulerSettings(grace_s=60), dsn, clock=Clock(back)).tick()
    missed = [(datetime(2026, 5, 1, h, tzinfo=UTC), "catch_up") for h in expected_hours]
    assert fire_times(dsn) == missed
    # Afterwards the schedule is back on its times: 16:00 fires on time, once.
    later = Scheduler(SchedulerSettings(), dsn, clock=Clock(back + timedelta(minutes=30, seconds=5)))
    later.tick()
    later.tick()
    assert fire_times(dsn)[-1] == (datetime(2026, 5, 1, 16, tzinfo=UTC), "scheduled")
    assert count(dsn, "SELECT count(*) FROM absurd.workflows") == len(missed) + 1


def test_a_late_tick_within_grace_is_on_time(dsn: str, sync_text: Callable[..., None]) -> None:
    sync_text(HOURLY.format(policy="skip"), now=T0)
    Scheduler(SchedulerSettings(grace_s=60), dsn, clock=Clock(T0 + timedelta(minutes=30, seconds=45))).tick()
    assert fire_times(dsn) == [(datetime(2026, 5, 1, 10, tzinfo=UTC), "scheduled")]


def test_disabled_schedules_do_not_fire_and_enabling_skips_the_gap(
    dsn: str, sync_text: Callable[..., None]
) -> None:
    from absurd.schedules import store

    sync_text(HOURLY.format(policy="fire_all"), now=T0)
    with psycopg.connect(dsn, autocommit=True) as conn:
        store.set_enabled(conn, "hourly", False, now=T0)
        Scheduler(SchedulerSettings(), dsn, clock=Clock(T0 + timedelta(hours=3))).tick()
        assert fire_times(dsn) == []
        store.set_enabled(conn, "hourly", True, now=T0 + timedelta(hours=3))
    Scheduler(SchedulerSettings(), dsn, clock=Clock(T0 + timedelta(hours=3, minutes=31))).tick()
    assert fire_times(dsn) == [(datetime(2026, 5, 1, 13, tzinfo=UTC), "scheduled")]
