"""The schedule file format: pydantic models of ``schedules/*.yaml``.

A file holds ``schedules:``, a list of schedules. Each has a name, a description, ``enabled``, a
trigger (``cron`` with ``timezone``, ``every``, or ``event``), a catch-up policy, and a ``workflow``
in the format of ``absurd.workflow_spec`` (its ``name`` defaults to the schedule's). A step's options
left out (queue, timeout, retries) are its task type's when the files are loaded with a registry
(``absurd schedule sync`` with ABSURD_REGISTRY), else the engine's defaults.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from absurd.schedules import cron
from absurd.workflow_spec import STEP_NAME, WorkflowSpec

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
TriggerKind = Literal["cron", "interval", "event"]
Policy = Literal["skip", "fire_once", "fire_all"]


class Trigger(BaseModel):
    """When a schedule fires: exactly one of ``cron`` (with ``timezone``), ``every`` or ``event``."""

    model_config = ConfigDict(extra="forbid")
    cron: str | None = Field(None, description="five cron fields, read in `timezone`")
    timezone: str | None = Field(None, description="IANA zone of a cron trigger; default UTC")
    every: float | None = Field(None, gt=0, description="seconds, or a duration such as 15m, 6h, 1d")
    event: str | None = Field(None, min_length=1, description="fire once per emission of this event")

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None and (problem := cron.cron_problem(value)):
            raise ValueError(problem)
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}; use an IANA name such as UTC") from None
        return value

    @field_validator("every", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, str):
            match = DURATION.match(value)
            if not match:
                raise ValueError(f"{value!r} is not a duration; write seconds, or e.g. 30s, 15m, 6h, 1d")
            return float(match.group(1)) * UNIT_S[match.group(2)]
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Trigger:
        given = [k for k in ("cron", "every", "event") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of cron, every or event (got {', '.join(given) or 'none'})")
        if self.timezone is not None and self.cron is None:
            raise ValueError("timezone applies only to a cron trigger")
        if self.cron is not None and self.timezone is None:
            self.timezone = "UTC"
        return self

    @property
    def kind(self) -> TriggerKind:
        """``cron``, ``interval`` or ``event``."""
        if self.cron is not None:
            return "cron"
        return "interval" if self.every is not None else "event"

    def describe(self) -> str:
        """A short human description, for tables."""
        if self.cron is not None:
            return f"cron {self.cron} ({self.timezone})"
        if self.every is not None:
            return f"every {self.every:g} s"
        return f"event {self.event}"

    def next_times(self, after: datetime, n: int = 1) -> list[datetime]:
        """The next ``n`` fire times strictly after ``after``; none for an event trigger."""
        if self.cron is not None:
            assert self.timezone is not None
            return cron.cron_after(self.cron, self.timezone, after, n)
        if self.every is not None:
            return cron.interval_after(self.every, after, n)
        return []

    def previous_time(self, before: datetime) -> datetime | None:
        """The latest fire time strictly before ``before``; None for an event trigger."""
        # In UTC: subtracting from an aware datetime would drop its fold in a repeated hour.
        just_before = before.astimezone(UTC) - timedelta(microseconds=1)
        found = self.times_between(datetime.fromtimestamp(0, UTC), just_before, 1)
        return found[0] if found else None

    def times_between(self, start: datetime, end: datetime, newest: int) -> list[datetime]:
        """Fire times in ``[start, end]``, oldest first, at most the ``newest`` latest."""
        if self.cron is not None:
            assert self.timezone is not None
            return cron.cron_between(self.cron, self.timezone, start, end, newest)
        if self.every is not None:
            return cron.interval_between(self.every, start, end, newest)
        return []


class CatchUp(BaseModel):
    """What happens to fires missed while no scheduler ran: ``skip`` them, fire the latest one once
    (``fire_once``), or fire each of them, at most ``limit`` (``fire_all``)."""

    model_config = ConfigDict(extra="forbid")
    policy: Policy = "fire_once"
    limit: int = Field(10, ge=1, le=1000, description="most missed fires that fire_all makes up")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        """Accept ``catch_up: skip`` as well as ``catch_up: {policy: fire_all, limit: 5}``."""
        return {"policy": value} if isinstance(value, str) else value

    def choose(self, due: list[datetime], now: datetime, grace_s: float) -> list[tuple[datetime, str]]:
        """The fires to make from the ``due`` times (oldest first), each with its kind: a time at most
        ``grace_s`` old is on time (``scheduled``); older ones were missed (``catch_up``)."""
        on_time = [t for t in due if (now - t).total_seconds() <= grace_s]
        missed = [t for t in due if (now - t).total_seconds() > grace_s]
        if self.policy == "skip":
            missed = []
        elif self.policy == "fire_once":
            missed = missed[-1:]
        else:
            missed = missed[-self.limit :]
        return [(t, "catch_up") for t in missed] + [(t, "scheduled") for t in on_time]


class Schedule(BaseModel):
    """One schedule: a trigger and the workflow it starts."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=STEP_NAME)
    description: str = ""
    enabled: bool = True
    trigger: Trigger
    catch_up: CatchUp = Field(default_factory=CatchUp)
    workflow: WorkflowSpec

    @model_validator(mode="before")
    @classmethod
    def _workflow_named(cls, value: Any) -> Any:
        """The workflow's name defaults to the schedule's."""
        if isinstance(value, dict) and isinstance(value.get("workflow"), dict):
            workflow = value["workflow"]
            if "name" not in workflow and isinstance(value.get("name"), str):
                value = {**value, "workflow": {**workflow, "name": value["name"]}}
        return value


class ScheduleFile(BaseModel):
    """A schedule file: ``schedules:`` and the list."""

    model_config = ConfigDict(extra="forbid")
    schedules: list[dict[str, Any]] = Field(min_length=1)
