"""The alert sinks file (YAML): who the VOEvents are from, and where they go.

    author:
      ivorn: ivo://dsa110.caltech.edu/contimg     # events are <ivorn>#alert-<id>
      contact_email: dsa110-ops@example.org
    role: observation                              # 'test' while commissioning
    sinks:
      - {name: archive, kind: directory, path: /data/dsa110/voevents}
      - {name: followup, kind: webhook, url: "https://example.org/voevents"}
      - {name: broker, kind: broker, host: voevent.example.org, port: 8098}

Workers read it from ``$CONTIMG_ALERT_SINKS``; without it, alerts are kept but not sent.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, model_validator

from science.errors import InvalidInputError

SINKS_ENV = "CONTIMG_ALERT_SINKS"
SINK_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"


class Author(BaseModel):
    """The VOEvent's Who: the publishing stream and its contact."""

    model_config = ConfigDict(extra="forbid")

    ivorn: str = Field(default="ivo://dsa110.caltech.edu/contimg", pattern=r"^ivo://[^#\s]+/[^#\s]+$")
    title: str = "DSA-110 continuum imaging pipeline"
    short_name: str = "DSA-110"
    contact_name: str | None = None
    contact_email: str | None = None


class DirectorySink(BaseModel):
    """One file per alert, written atomically (a temporary file renamed into place)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=SINK_NAME)
    kind: Literal["directory"]
    path: Path


class WebhookSink(BaseModel):
    """An HTTP POST of the document, with the event's IVORN as its ``Idempotency-Key``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=SINK_NAME)
    kind: Literal["webhook"]
    url: HttpUrl
    timeout_s: float = Field(default=10.0, gt=0)
    headers: dict[str, str] = Field(default_factory=dict, description="e.g. an Authorization header")


class BrokerSink(BaseModel):
    """A VOEvent broker that takes events from authors over the VOEvent Transport Protocol (TCP)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=SINK_NAME)
    kind: Literal["broker"]
    host: str
    port: int = Field(default=8098, ge=1, le=65535)
    timeout_s: float = Field(default=10.0, gt=0)


Sink = Annotated[DirectorySink | WebhookSink | BrokerSink, Field(discriminator="kind")]


class AlertSinks(BaseModel):
    """The whole file."""

    model_config = ConfigDict(extra="forbid")

    author: Author = Field(default_factory=Author)
    role: Literal["observation", "test", "utility"] = "observation"
    sinks: list[Sink] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> AlertSinks:
        names = [s.name for s in self.sinks]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"sink names must be unique; used more than once: {', '.join(twice)}")
        return self


def load_sinks(path: Path | str) -> AlertSinks:
    """Read a sinks file; InvalidInputError names the file and the field when it is wrong."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot read the alert sinks file: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return AlertSinks.model_validate(raw or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()
        )
        raise InvalidInputError(f"{path}: {problems}") from exc


def configured_sinks(path: Path | str | None = None) -> AlertSinks | None:
    """The sinks at ``path``, else at ``$CONTIMG_ALERT_SINKS``; None when neither is set."""
    chosen = path or os.environ.get(SINKS_ENV)
    return load_sinks(chosen) if chosen else None
