"""Fire times of cron and interval triggers. Cron semantics are croniter's; this module adds the
time zone handling operators expect from cron across daylight-saving changes.

- Spring forward: a time inside the skipped hour fires once, at the first valid time after it
  (croniter's behaviour; ``30 2 * * *`` fires at 03:00 on that day).
- Fall back: a time inside the repeated hour fires once when the hour field is fixed
  (``30 1 * * *``), and every real hour when it is a wildcard (``0 * * * *``), as Vixie cron does.

Every time returned is timezone-aware; comparisons and storage use the instant, not the wall clock.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

# Bounds the walk over missed fires after a long outage; older ones are never needed.
MAX_WALK = 10_000


def cron_problem(expr: str) -> str | None:
    """Why ``expr`` is not a five-field cron expression, or None when it is one."""
    fields = expr.split()
    if len(fields) != 5:
        return (
            f"cron expression {expr!r} has {len(fields)} fields; expected 5 (minute hour day month weekday)"
        )
    if not croniter.is_valid(expr):
        return f"cron expression {expr!r} is not valid"
    return None


def _repeated_wall_time(when: datetime, zone: ZoneInfo) -> bool:
    """True for the second occurrence of a wall time in the hour repeated when clocks fall back."""
    local = when.astimezone(zone)
    return local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()


def _skips_repeats(expr: str) -> bool:
    return "*" not in expr.split()[1]


def cron_after(expr: str, timezone: str, after: datetime, n: int = 1) -> list[datetime]:
    """The next ``n`` fire times of ``expr`` in ``timezone`` strictly after ``after``."""
    zone = ZoneInfo(timezone)
    it = croniter(expr, after.astimezone(zone))
    skip = _skips_repeats(expr)
    found: list[datetime] = []
    for _ in range(MAX_WALK):
        if len(found) >= n:
            break
        t: datetime = it.get_next(datetime)
        if skip and _repeated_wall_time(t, zone):
            continue
        found.append(t)
    return found


def cron_between(expr: str, timezone: str, start: datetime, end: datetime, newest: int) -> list[datetime]:
    """Fire times ``t`` with ``start <= t <= end``, oldest first, keeping at most the ``newest`` latest."""
    zone = ZoneInfo(timezone)
    # croniter's get_prev is strict, so start a microsecond past the end to include it.
    # Added in UTC: arithmetic on an aware datetime drops its fold (01:10 PST would become 01:10 PDT).
    it = croniter(expr, (end.astimezone(UTC) + timedelta(microseconds=1)).astimezone(zone))
    skip = _skips_repeats(expr)
    found: list[datetime] = []
    for _ in range(MAX_WALK):
        if len(found) >= newest:
            break
        t: datetime = it.get_prev(datetime)
        # In UTC: two datetimes sharing a tzinfo compare by wall clock and ignore fold, so in the hour
        # repeated at fall-back 01:30 PDT would not count as before 01:00 PST.
        if t.astimezone(UTC) < start.astimezone(UTC):
            break
        if skip and _repeated_wall_time(t, zone):
            continue
        found.append(t)
    return found[::-1]


def _epoch_s(when: datetime) -> float:
    return when.timestamp()


def interval_after(every_s: float, after: datetime, n: int = 1) -> list[datetime]:
    """The next ``n`` times strictly after ``after`` that are whole multiples of ``every_s`` since the
    Unix epoch, so that every scheduler computes the same fire times."""
    k = math.floor(_epoch_s(after) / every_s) + 1
    return [datetime.fromtimestamp((k + i) * every_s, UTC) for i in range(n)]


def interval_between(every_s: float, start: datetime, end: datetime, newest: int) -> list[datetime]:
    """Interval fire times ``t`` with ``start <= t <= end``, oldest first, at most the ``newest`` latest."""
    first = math.ceil(_epoch_s(start) / every_s)
    last = math.floor(_epoch_s(end) / every_s)
    first = max(first, last - newest + 1)
    return [datetime.fromtimestamp(k * every_s, UTC) for k in range(first, last + 1)]
