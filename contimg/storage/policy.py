"""The storage policy: how long each kind of product is kept, and the free-space levels the disk guard
watches on each data path. Read from a YAML file (``CONTIMG_STORAGE_CONFIG``) or built from the
deployment's directories (``CONTIMG_DATA_DIR``, ``CONTIMG_MS_DIR``, ``CONTIMG_INCOMING_DIR``).

Light curves, photometry and the products database are not product kinds here: they are never removed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from absurd.errors import ConfigurationError

CONFIG_ENV = "CONTIMG_STORAGE_CONFIG"

# The product kinds the pruner knows, in the order `contimg storage` lists them.
Kind = Literal["raw", "ms", "caltables", "images", "image_aux", "mosaics", "previews"]
KINDS: tuple[Kind, ...] = ("raw", "ms", "caltables", "images", "image_aux", "mosaics", "previews")

# What must be true of a product before it may go, by kind (the facts the inventory finds).
# raw: its group was converted. ms: an image was made from it / photometry was stored on that image.
# images, image_aux: photometry was stored on the image.
Condition = Literal["converted", "imaged", "measured"]
CONDITIONS: dict[Kind, frozenset[str]] = {
    "raw": frozenset({"converted"}),
    "ms": frozenset({"imaged", "measured"}),
    "caltables": frozenset(),
    "images": frozenset({"measured"}),
    "image_aux": frozenset({"measured"}),
    "mosaics": frozenset(),
    "previews": frozenset(),
}

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%|[KMGT]i?B|B)?\s*$", re.IGNORECASE)
_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


class Threshold(BaseModel):
    """A free-space level: a fraction of the file system, or an absolute number of bytes."""

    model_config = ConfigDict(frozen=True)
    percent: float | None = Field(None, ge=0, le=100)
    bytes: int | None = Field(None, ge=0)

    def bytes_of(self, total: int) -> int:
        """The level in bytes on a file system of ``total`` bytes."""
        if self.percent is not None:
            return int(total * self.percent / 100)
        return int(self.bytes or 0)

    def __str__(self) -> str:
        return f"{self.percent:g}%" if self.percent is not None else f"{self.bytes} B"


def parse_threshold(value: object) -> object:
    """'10%', '50 GB', '2GiB', '1048576' or 1048576 (bytes) as a Threshold; anything else is left to fail."""
    if isinstance(value, Threshold | dict):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"bytes": int(value)}
    if isinstance(value, str):
        match = _SIZE.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a size: write e.g. '10%', '50 GB' or '2GiB'")
        number, unit = float(match.group(1)), (match.group(2) or "B").lower()
        if unit == "%":
            return {"percent": number}
        return {"bytes": int(number * _UNITS[unit])}
    raise ValueError(f"{value!r} is not a size: write e.g. '10%', '50 GB' or '2GiB'")


Size = Annotated[Threshold, BeforeValidator(parse_threshold)]


class Rule(BaseModel):
    """How long one kind of product is kept. ``keep_days: null`` keeps it for ever."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    keep_days: float | None = Field(ge=0, description="age (days since last written) after which it may go")
    require: tuple[Condition, ...] = Field(
        (), description="what must be true first, e.g. an MS must be imaged and measured"
    )


DEFAULT_RULES: dict[Kind, Rule] = {
    # Subband files: once their group is converted, a few days for a reconversion by hand.
    "raw": Rule(keep_days=3, require=("converted",)),
    # An MS may go once imaged and its photometry stored; a week leaves room to re-image.
    "ms": Rule(keep_days=7, require=("imaged", "measured")),
    "caltables": Rule(keep_days=30),
    # Residual and PSF images are for checking a night; the image and its beam are kept longer.
    "image_aux": Rule(keep_days=14, require=("measured",)),
    "images": Rule(keep_days=180, require=("measured",)),
    "mosaics": Rule(keep_days=None),
    "previews": Rule(keep_days=None),
}


class GuardedPath(BaseModel):
    """A data path the disk guard probes, and the tasks whose breakers it opens when the path fills."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    path: Path
    writers: tuple[str, ...] = Field((), description="task names that write here (their breakers)")
    warning: Size | None = None
    critical: Size | None = None
    resume: Size | None = None


class GuardSettings(BaseModel):
    """The disk guard: levels (per path, or these defaults), how often it probes, how long it holds."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    warning: Size = Field(default_factory=lambda: Threshold(percent=15))
    critical: Size = Field(default_factory=lambda: Threshold(percent=5))
    resume: Size = Field(
        default_factory=lambda: Threshold(percent=10),
        description="a path that went critical lets its writers go again only above this",
    )
    interval_s: float = Field(30.0, gt=0, description="seconds between probes")
    hold_s: float = Field(
        600.0, gt=0, description="cooldown of a breaker the guard opens; it re-opens it while still full"
    )
    retry_s: float = Field(30.0, gt=0, description="a task that found no room sleeps this long, then retries")
    paths: tuple[GuardedPath, ...] = ()


class StoragePolicy(BaseModel):
    """The whole storage configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    retention: dict[Kind, Rule] = Field(default_factory=lambda: dict(DEFAULT_RULES))
    guard: GuardSettings = Field(default_factory=GuardSettings)

    @model_validator(mode="after")
    def _complete(self) -> StoragePolicy:
        # A kind left out of the file keeps its default rule; a condition that does not apply is refused.
        for kind in KINDS:
            self.retention.setdefault(kind, DEFAULT_RULES[kind])
        for kind, rule in self.retention.items():
            wrong = set(rule.require) - CONDITIONS[kind]
            if wrong:
                allowed = ", ".join(sorted(CONDITIONS[kind])) or "none"
                raise ValueError(f"retention.{kind}.require: {', '.join(sorted(wrong))} (allowed: {allowed})")
        return self

    def levels(self, guarded: GuardedPath) -> tuple[Threshold, Threshold, Threshold]:
        """The warning, critical and resume levels of one path."""
        g = self.guard
        return (guarded.warning or g.warning, guarded.critical or g.critical, guarded.resume or g.resume)

    def guarded_path_of(self, path: Path) -> GuardedPath | None:
        """The guarded path that ``path`` lies in (the deepest one), if any."""
        resolved = Path(os.path.abspath(path))
        found = [g for g in self.guard.paths if resolved.is_relative_to(Path(os.path.abspath(g.path)))]
        return max(found, key=lambda g: len(Path(os.path.abspath(g.path)).parts), default=None)


def default_paths(env: dict[str, str] | None = None) -> tuple[GuardedPath, ...]:
    """The data paths of a deployment (deploy/contimg.env) and the tasks that write to each."""
    env = dict(os.environ if env is None else env)
    data = Path(env.get("CONTIMG_DATA_DIR", "/data/dsa110"))
    return (
        GuardedPath(path=Path(env.get("CONTIMG_INCOMING_DIR", data / "incoming"))),
        GuardedPath(
            path=Path(env.get("CONTIMG_MS_DIR", data / "ms")), writers=("convert-uvh5", "apply-calibration")
        ),
        GuardedPath(path=data / "caltables", writers=("solve-calibration",)),
        GuardedPath(path=data / "images", writers=("create-image",)),
        GuardedPath(path=data / "mosaics", writers=("create-mosaic",)),
    )


def _problem(err: Any) -> str:
    loc = [str(part) for part in err["loc"]]
    if loc and loc[-1] == "[key]":
        # A mapping key that is not allowed: the key itself is what was wrong.
        return f"{'.'.join(loc[:-1])}: not a product kind; kinds are {', '.join(KINDS)}"
    return f"{'.'.join(loc) or '(top level)'}: {err['msg']}"


def load_policy(path: Path | None = None) -> StoragePolicy:
    """The policy in ``path`` (else ``$CONTIMG_STORAGE_CONFIG``, else the defaults for this deployment's
    directories). A bad file raises ConfigurationError naming the file and each bad key."""
    if path is None and os.environ.get(CONFIG_ENV):
        path = Path(os.environ[CONFIG_ENV])
    if path is None:
        return StoragePolicy(guard=GuardSettings(paths=default_paths()))
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise ConfigurationError(f"cannot read the storage policy {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{path}: expected a mapping with 'retention' and/or 'guard'")
    guard = raw.get("guard")
    if isinstance(guard, dict) and "paths" not in guard:
        raw = {**raw, "guard": {**guard, "paths": [g.model_dump() for g in default_paths()]}}
    elif guard is None:
        raw = {**raw, "guard": {"paths": [g.model_dump() for g in default_paths()]}}
    try:
        return StoragePolicy.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_problem(err) for err in exc.errors())
        raise ConfigurationError(f"{path}: {problems}") from None
