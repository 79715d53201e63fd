"""What may go: the pure decision of the retention pruner.

Given the products found on disk (``Candidate``), the policy, the time and the paths that unfinished
tasks name in their params, ``decide`` says for each product whether it may be removed and why. It
reads no disk and no database, so every rule is tested on its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import PurePath

from contimg.storage.policy import Kind, StoragePolicy

SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True)
class Candidate:
    """One product on disk: its kind, its files (the first is its name), their total size, when they were
    last written, the night it belongs to, and the facts the policy may require (``converted``, ...)."""

    kind: Kind
    paths: tuple[str, ...]
    bytes: int
    modified: datetime
    night: date | None = None
    facts: frozenset[str] = field(default_factory=frozenset)

    @property
    def product(self) -> str:
        """The product's main path."""
        return self.paths[0]


@dataclass(frozen=True)
class Decision:
    """Whether a candidate may go, and the reason either way."""

    candidate: Candidate
    remove: bool
    reason: str


def _related(a: str, b: str) -> bool:
    """True when one path is the other or lies inside it."""
    pa, pb = PurePath(os.path.normpath(a)), PurePath(os.path.normpath(b))
    return pa == pb or pa.is_relative_to(pb) or pb.is_relative_to(pa)


def needed_by(candidate: Candidate, needed: Iterable[str]) -> str | None:
    """The first path an unfinished task names that is, holds or lies in one of the candidate's files."""
    for path in needed:
        if any(_related(own, path) for own in candidate.paths):
            return path
    return None


def decide_one(candidate: Candidate, policy: StoragePolicy, now: datetime, needed: Iterable[str]) -> Decision:
    """The decision for one candidate (see ``decide``)."""
    rule = policy.retention[candidate.kind]
    if rule.keep_days is None:
        return Decision(candidate, False, f"{candidate.kind} are kept for ever")
    age_days = (now - candidate.modified).total_seconds() / SECONDS_PER_DAY
    if age_days < rule.keep_days:
        return Decision(
            candidate, False, f"{age_days:.1f} d old; {candidate.kind} are kept {rule.keep_days:g} d"
        )
    missing = [c for c in rule.require if c not in candidate.facts]
    if missing:
        return Decision(candidate, False, f"not yet {' and '.join(missing)}")
    held = needed_by(candidate, needed)
    if held is not None:
        return Decision(candidate, False, f"an unfinished task needs {held}")
    done = f", {' and '.join(rule.require)}" if rule.require else ""
    return Decision(candidate, True, f"{age_days:.1f} d old (keep {rule.keep_days:g} d){done}")


def decide(
    candidates: Iterable[Candidate], policy: StoragePolicy, now: datetime, needed: Iterable[str]
) -> list[Decision]:
    """Decide every candidate. A product may go when its kind has a retention, it is at least that old
    (from its newest file), every condition the rule requires holds, and no pending, running, sleeping
    or waiting task names one of its files (or a directory holding one, or a file inside it)."""
    needed = list(needed)
    return [decide_one(c, policy, now, needed) for c in candidates]
