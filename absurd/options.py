"""Spawn options and retry policies: the pydantic boundary of ``spawn``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Each model here is built when first used (defer_build), not at import: a worker uses only the defaults
# of SpawnOptions, and builds neither the gate config nor a validator of its own for each retry policy.
# (Inline configs, so that pydantic's mypy plugin sees which models are frozen.)


class ExponentialBackoff(BaseModel):
    """Delay before retry n is uniform in [0, min(cap_s, base_s·2^(n−1))] (full jitter)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    kind: Literal["exponential"] = "exponential"
    base_s: float = Field(1.0, gt=0)
    cap_s: float = Field(300.0, gt=0)


class FixedDelay(BaseModel):
    """The same delay before every retry."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    kind: Literal["fixed"] = "fixed"
    base_s: float = Field(5.0, ge=0)


class NoRetry(BaseModel):
    """The first failure is final."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    kind: Literal["none"] = "none"


# A queue's name: what spawn options and workflow steps accept.
QUEUE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"

RetryPolicy = Annotated[ExponentialBackoff | FixedDelay | NoRetry, Field(discriminator="kind")]


class SpawnOptions(BaseModel):
    """How a task is queued and retried. Every field has a default."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    queue: str = Field("default", pattern=QUEUE_NAME)
    priority: int = 0
    not_before: datetime | None = None
    max_attempts: int = Field(3, ge=1)
    retry: RetryPolicy = ExponentialBackoff()
    timeout_s: float | None = Field(None, gt=0)
    idempotency_key: str | None = None
    headers: dict[str, Any] = Field(default_factory=dict)
    gate: str | None = Field(
        None, description="concurrency-limit / circuit-breaker key; default: the task name"
    )
    gate_limit: int | None = Field(None, ge=1, description="limit for a gate created on first use")

    def merged(self, **overrides: Any) -> SpawnOptions:
        """A copy with the given fields replaced (``None`` values are ignored), validated again."""
        data = self.model_dump()
        data.update({k: v for k, v in overrides.items() if v is not None})
        return SpawnOptions.model_validate(data)


class GateConfig(BaseModel):
    """A gate: a concurrency limit and/or a circuit breaker on one key (a task name or a resource)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
    key: str = Field(min_length=1)
    max_running: int | None = Field(None, ge=1, description="at most this many running at once")
    breaker_enabled: bool = False
    failure_threshold: int = Field(5, ge=1, description="open after this many failures within window_s")
    window_s: float = Field(300.0, gt=0)
    failure_rate: float | None = Field(None, gt=0, le=1, description="or open at this failure rate ...")
    min_calls: int = Field(10, ge=1, description="... over at least this many calls")
    base_cooldown_s: float = Field(30.0, gt=0, description="open → half-open after this long")
    max_cooldown_s: float = Field(
        1800.0, gt=0, description="cooldowns double after failed trials, up to this"
    )
    half_open_trials: int = Field(1, ge=1, description="trial tasks let through while half-open")
