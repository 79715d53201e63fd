"""Cron and interval fire times: DST changes in America/Los_Angeles, month ends, and the scheduler
firing them under a settable clock."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg

from absurd.scheduler import Scheduler, SchedulerSettings
from absurd.schedules.cron import cron_after, cron_between, interval_after, interval_between
from tests.schedules.conftest import Clock

LA = ZoneInfo("America/Los_Angeles")


def local(times: list[datetime], zone: ZoneInfo = LA) -> list[str]:
    return [t.astimezone(zone).isoformat() for t in times]


def test_daily_time_in_the_skipped_hour_fires_once_right_after_spring_forward() -> None:
    # 2026-03-08 02:00 PST jumps to 03:00 PDT: 02:30 does not exist that day.
    got = cron_after("30 2 * * *", "America/Los_Angeles", datetime(2026, 3, 7, 12, tzinfo=LA), 3)
    assert local(got) == [
        "2026-03-08T03:00:00-07:00",
        "2026-03-09T02:30:00-07:00",
        "2026-03-10T02:30:00-07:00",
    ]


def test_daily_time_in_the_repeated_hour_fires_once_at_fall_back() -> None:
    # 2026-11-01 02:00 PDT falls back to 01:00 PST: 01:30 happens twice; a daily job runs once.
    got = cron_after("30 1 * * *", "America/Los_Angeles", datetime(2026, 10, 31, 12, tzinfo=LA), 3)
    assert local(got) == [
        "2026-11-01T01:30:00-07:00",
        "2026-11-02T01:30:00-08:00",
        "2026-11-03T01:30:00-08:00",
    ]
    back = cron_between(
        "30 1 * * *",
        "America/Los_Angeles",
        datetime(2026, 10, 31, tzinfo=UTC),
        datetime(2026, 11, 3, tzinfo=UTC),
        10,
    )
    assert local(back) == [
        "2026-10-31T01:30:00-07:00",
        "2026-11-01T01:30:00-07:00",
        "2026-11-02T01:30:00-08:00",
    ]


def test_hourly_fires_every_real_hour_across_both_changes() -> None:
    fall = cron_after("0 * * * *", "America/Los_Angeles", datetime(2026, 11, 1, 0, 30, tzinfo=LA), 4)
    assert [t.astimezone(UTC).hour for t in fall] == [8, 9, 10, 11]  # 01:00 PDT, 01:00 PST, 02:00, 03:00
    spring = cron_after("0 * * * *", "America/Los_Angeles", datetime(2026, 3, 8, 0, 30, tzinfo=LA), 3)
    assert local(spring) == [
        "2026-03-08T01:00:00-08:00",
        "2026-03-08T03:00:00-07:00",
        "2026-03-08T04:00:00-07:00",
    ]
    utc = [t.astimezone(UTC) for t in spring]
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(utc))


def test_month_ends() -> None:
    start = datetime(2026, 1, 5, tzinfo=UTC)
    assert [t.date().isoformat() for t in cron_after("0 13 31 * *", "UTC", start, 4)] == [
        "2026-01-31",
        "2026-03-31",
        "2026-05-31",
        "2026-07-31",
    ]
    assert [t.date().isoformat() for t in cron_after("0 0 L * *", "UTC", start, 4)] == [
        "2026-01-31",
        "2026-02-28",
        "2026-03-31",
        "2026-04-30",
    ]
    leap = cron_after("0 0 L 2 *", "UTC", start, 3)
    assert [t.date().isoformat() for t in leap] == ["2026-02-28", "2027-02-28", "2028-02-29"]


def test_weekday_zero_is_sunday_only() -> None:
    # The old matcher took 0 as both Sunday and Monday.
    got = cron_after("0 12 * * 0", "UTC", datetime(2026, 5, 1, tzinfo=UTC), 3)
    assert [t.strftime("%A %d") for t in got] == ["Sunday 03", "Sunday 10", "Sunday 17"]


def test_interval_times_are_aligned_to_the_epoch() -> None:
    after = datetime(2026, 5, 1, 10, 7, 12, tzinfo=UTC)
    assert interval_after(900, after, 2) == [
        datetime(2026, 5, 1, 10, 15, tzinfo=UTC),
        datetime(2026, 5, 1, 10, 30, tzinfo=UTC),
    ]
    span = interval_between(
        900, datetime(2026, 5, 1, 10, tzinfo=UTC), datetime(2026, 5, 1, 11, tzinfo=UTC), 3
    )
    assert [t.minute for t in span] == [30, 45, 0]


def test_scheduler_fires_a_los_angeles_schedule_right_across_fall_back(
    dsn: str, sync_text: Callable[..., None]
) -> None:
    sync_text(
        """
        schedules:
          - name: la-nightly
            trigger: {cron: "30 1 * * *", timezone: America/Los_Angeles}
            catch_up: skip
            workflow:
              tasks: [{name: a, type: noop}]
        """,
        now=datetime(2026, 10, 30, 12, tzinfo=UTC),
    )
    clock = Clock(datetime(2026, 10, 30, 12, tzinfo=UTC))
    scheduler = Scheduler(SchedulerSettings(), dsn, clock=clock)
    while clock.now < datetime(2026, 11, 3, 12, tzinfo=UTC):
        clock.now += timedelta(minutes=10)
        scheduler.tick()
    with psycopg.connect(dsn, autocommit=True) as conn:
        fired = [
            r[0] for r in conn.execute("SELECT fire_time FROM absurd.schedule_fires ORDER BY 1").fetchall()
        ]
    assert local(fired) == [
        "2026-10-31T01:30:00-07:00",
        "2026-11-01T01:30:00-07:00",
        "2026-11-02T01:30:00-08:00",
        "2026-11-03T01:30:00-08:00",
    ]
