"""Spawn options and retry policies: the pydantic boundary of ``spawn``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ExponentialBackoff(BaseModel):
    """Delay before retry n is uniform in [0, min(cap_s, base_s·2^(n−1))] (full jitter)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["exponential"] = "exponential"
    base_s: float = Field(1.0, gt=0)
    cap_s: float = Field(300.0, gt=0)


class FixedDelay(BaseModel):
    """The same delay before every retry."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["fixed"] = "fixed"
    base_s: float = Field(5.0, ge=0)


class NoRetry(BaseModel):
    """The first failure is final."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["none"] = "none"


RetryPolicy = Annotated[ExponentialBackoff | FixedDelay | NoRetry, Field(discriminator="kind")]


class SpawnOptions(BaseModel):
    """How a task is queued and retried. Every field has a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    queue: str = Field("default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    priority: int = 0
    not_before: datetime | None = None
    max_attempts: int = Field(3, ge=1)
    retry: RetryPolicy = ExponentialBackoff()
    timeout_s: float | None = Field(None, gt=0)
    idempotency_key: str | None = None
    headers: dict[str, Any] = Field(default_factory=dict)

    def merged(self, **overrides: Any) -> SpawnOptions:
        """A copy with the given fields replaced (``None`` values are ignored), validated again."""
        data = self.model_dump()
        data.update({k: v for k, v in overrides.items() if v is not None})
        return SpawnOptions.model_validate(data)
