"""Load schedules into Postgres: add the new, update the changed, remove those no file declares.

The files are the truth: ``enabled`` too is set from them, so a lasting change belongs in the file.
A change is shown as a unified diff of the schedule's canonical YAML.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import psycopg
import yaml
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from absurd.schedules import queries
from absurd.schedules.loader import LoadedSchedule
from absurd.schedules.spec import Schedule


@dataclass
class Change:
    """One schedule added, updated or removed, with the diff that shows it."""

    action: Literal["add", "update", "remove"]
    name: str
    diff: list[str] = field(default_factory=list)


def canonical(schedule: Schedule) -> dict[str, Any]:
    """The schedule as plain data with every default filled in; equal schedules give equal data."""
    return {
        "name": schedule.name,
        "description": schedule.description,
        "enabled": schedule.enabled,
        "trigger": schedule.trigger.model_dump(exclude_none=True),
        "catch_up": schedule.catch_up.model_dump(),
        "workflow": schedule.workflow.model_dump(mode="json"),
    }


def checksum(schedule: Schedule) -> str:
    """SHA-256 of the canonical form."""
    return hashlib.sha256(json.dumps(canonical(schedule), sort_keys=True).encode()).hexdigest()


def from_row(row: dict[str, Any]) -> Schedule:
    """The schedule a stored row holds."""
    trigger: dict[str, Any] = {
        "cron": {"cron": row["cron"], "timezone": row["timezone"]},
        "interval": {"every": row["interval_s"]},
        "event": {"event": row["event_name"]},
    }[row["trigger_kind"]]
    return Schedule.model_validate(
        {
            "name": row["name"],
            "description": row["description"],
            "enabled": row["enabled"],
            "trigger": trigger,
            "catch_up": {"policy": row["catch_up"], "limit": row["catch_up_limit"]},
            "workflow": row["template"],
        }
    )


def _yaml_lines(schedule: Schedule | None) -> list[str]:
    if schedule is None:
        return []
    return yaml.safe_dump(canonical(schedule), sort_keys=True).splitlines()


def _diff(name: str, old: Schedule | None, new: Schedule | None, where: str) -> list[str]:
    return list(
        difflib.unified_diff(
            _yaml_lines(old), _yaml_lines(new), fromfile=f"database: {name}", tofile=where, lineterm=""
        )
    )


def _values(
    item: LoadedSchedule, row: dict[str, Any] | None, now: datetime, event_head: int
) -> dict[str, Any]:
    """Column values for ``item``; the firing state carries over unless the trigger or enabled changed."""
    s = item.schedule
    old = from_row(row) if row is not None else None
    restart = old is None or old.trigger != s.trigger or (s.enabled and not old.enabled)
    upcoming = s.trigger.next_times(now, 1)
    return {
        "name": s.name,
        "description": s.description,
        "enabled": s.enabled,
        "trigger_kind": s.trigger.kind,
        "cron": s.trigger.cron,
        "timezone": s.trigger.timezone,
        "interval_s": s.trigger.every,
        "event_name": s.trigger.event,
        "catch_up": s.catch_up.policy,
        "catch_up_limit": s.catch_up.limit,
        "template": Jsonb(s.workflow.model_dump(mode="json")),
        "source_file": str(item.file),
        "source_line": item.line,
        "checksum": checksum(s),
        "event_cursor": event_head if restart or row is None else row["event_cursor"],
        "next_fire_at": (upcoming[0] if upcoming else None)
        if restart or row is None
        else row["next_fire_at"],
    }


def sync(
    conn: psycopg.Connection, loaded: list[LoadedSchedule], dry_run: bool = False, now: datetime | None = None
) -> list[Change]:
    """Make the database's schedules those of ``loaded``; return the changes (made unless ``dry_run``).
    Runs in one transaction, serialised with concurrent syncs."""
    now = now or datetime.now(UTC)
    changes: list[Change] = []
    with conn.transaction(force_rollback=dry_run), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(queries.SYNC_LOCK)
        stored = {r["name"]: r for r in cur.execute(queries.ALL_SCHEDULES_LOCKED).fetchall()}
        head_row = cur.execute(queries.EVENT_LOG_HEAD).fetchone()
        event_head = int(next(iter(head_row.values()))) if head_row else 0
        for item in loaded:
            name = item.schedule.name
            row = stored.get(name)
            where = f"{item.file}:{item.line}"
            if row is None:
                changes.append(Change("add", name, _diff(name, None, item.schedule, where)))
                cur.execute(queries.INSERT_SCHEDULE, _values(item, None, now, event_head))
            elif canonical(from_row(row)) != canonical(item.schedule):
                changes.append(Change("update", name, _diff(name, from_row(row), item.schedule, where)))
                cur.execute(queries.UPDATE_SCHEDULE, _values(item, row, now, event_head))
            else:
                cur.execute(queries.UPDATE_SOURCE, (str(item.file), item.line, name))
        declared = {item.schedule.name for item in loaded}
        for name, row in stored.items():
            if name not in declared:
                changes.append(Change("remove", name, _diff(name, from_row(row), None, "(no file)")))
                cur.execute(queries.DELETE_SCHEDULE, (name,))
    return changes
