"""Make one fire of a schedule: record it and submit its workflow in the caller's transaction.

``absurd.fire_schedule`` inserts the fire under a unique index and submits the workflow only when
the insert won, so any number of schedulers may try the same fire and exactly one succeeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from absurd.schedules import queries
from absurd.workflow_spec import SpecError, WorkflowSpec, to_submission


@dataclass(frozen=True)
class Fired:
    """The outcome of one attempt to fire: the fire's id (None when another scheduler made it),
    and the error when its workflow could not be built."""

    fire_id: int | None
    error: str | None = None


# Params every fire adds, so that templates can name their window: ${params.fire_time} and so on.
FIRE_PARAMS = ("fire_time", "fire_date", "previous_fire_time")


def fire_params(fire_time: datetime, previous: datetime | None) -> dict[str, Any]:
    """The params a fire adds: its time (ISO, UTC), its UTC date, and the trigger's time before it
    (None for event and manual fires of event schedules)."""
    utc = fire_time.astimezone(UTC)
    return {
        "fire_time": utc.isoformat(),
        "fire_date": utc.date().isoformat(),
        "previous_fire_time": previous.astimezone(UTC).isoformat() if previous else None,
    }


def event_context(payload: Any) -> dict[str, Any]:
    """What ``${event.KEY}`` reads: the payload, or ``{"value": payload}`` when it is not an object."""
    return payload if isinstance(payload, dict) else {"value": payload}


def fire(
    conn: psycopg.Connection,
    schedule: str,
    template: dict[str, Any],
    fire_time: datetime,
    kind: str,
    scheduler_id: str,
    event_id: int | None = None,
    event: dict[str, Any] | None = None,
    previous: datetime | None = None,
) -> Fired:
    """Fire ``schedule`` for ``fire_time`` (or for event ``event_id``) unless that fire exists.
    ``previous`` is the trigger's fire time before this one, offered to the template."""
    spec = WorkflowSpec.model_validate(template)
    params = {**spec.params, **fire_params(fire_time, previous)}
    try:
        tasks: Jsonb | None = Jsonb(to_submission(spec, params, event))
        error = None
    except SpecError as exc:
        # Recorded as a failed fire, once: retrying the same event or time would fail the same way.
        tasks, error = None, f"cannot build the workflow: {'; '.join(exc.problems)}"
    row = conn.execute(
        queries.FIRE,
        (schedule, fire_time, kind, event_id, scheduler_id, Jsonb(params), tasks, error),
    ).fetchone()
    fire_id = row[0] if row else None
    return Fired(int(fire_id) if fire_id is not None else None, error if fire_id is not None else None)
