"""Read and change stored schedules: list, show, enable, disable, and fire one by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from absurd.errors import NotFoundError
from absurd.schedules import queries
from absurd.schedules.fire import Fired, event_context, fire
from absurd.schedules.sync import from_row


def list_schedules(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every stored schedule, by name."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(queries.ALL_SCHEDULES).fetchall()


def get_schedule(conn: psycopg.Connection, name: str, fires: int = 0) -> dict[str, Any]:
    """One stored schedule, with its ``fires`` most recent fires under ``recent_fires``."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(queries.SCHEDULE, (name,)).fetchone()
        if row is None:
            raise NotFoundError(f"no schedule named {name!r}; `absurd schedule list` shows them")
        row["recent_fires"] = cur.execute(queries.RECENT_FIRES, (name, fires)).fetchall() if fires else []
    return row


def set_enabled(conn: psycopg.Connection, name: str, enabled: bool, now: datetime | None = None) -> None:
    """Enable or disable a schedule. Enabling starts afresh: nothing missed while disabled fires."""
    now = now or datetime.now(UTC)
    schedule = from_row(get_schedule(conn, name))
    upcoming = schedule.trigger.next_times(now, 1) if enabled else []
    with conn.transaction():
        head = conn.execute(queries.EVENT_LOG_HEAD).fetchone()
        conn.execute(
            queries.SET_ENABLED,
            {
                "name": name,
                "enabled": enabled,
                "next_fire_at": upcoming[0] if upcoming else None,
                "event_cursor": int(head[0]) if head else 0,
            },
        )


def trigger_now(
    conn: psycopg.Connection, name: str, actor: str, payload: Any = None
) -> tuple[Fired, int | None]:
    """Fire a schedule now, whatever its trigger (``payload`` plays the event for an event schedule).
    Returns the fire and the workflow it started."""
    row = get_schedule(conn, name)
    with conn.transaction():
        now_row = conn.execute(queries.DB_NOW).fetchone()
        assert now_row is not None
        event = event_context(payload) if payload is not None else None
        previous = from_row(row).trigger.previous_time(now_row[0])
        fired = fire(conn, name, row["template"], now_row[0], "manual", actor, event=event, previous=previous)
        workflow = conn.execute(queries.FIRE_WORKFLOW, (fired.fire_id,)).fetchone()
    return fired, (workflow[0] if workflow else None)
