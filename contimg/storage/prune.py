"""The retention pruner: take the inventory, decide, remove what may go, and record each removal.

The paths unfinished tasks need are read again just before each removal, so a task spawned while the
pruner runs (a reconversion, a re-image) keeps its inputs.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import psycopg
import structlog
from pydantic import BaseModel, Field

from contimg.storage.decide import Decision, decide, decide_one
from contimg.storage.inventory import inventory, remove
from contimg.storage.policy import StoragePolicy
from contimg.store import storage as store

log = structlog.get_logger("contimg.storage.prune")


class Removed(BaseModel):
    """One product removed (or, in a dry run, that would be)."""

    kind: str
    product: str
    paths: list[str]
    bytes: int
    night: str | None
    reason: str


class PruneReport(BaseModel):
    """What a prune removed, or would remove (``dry_run``), and how much each kind freed."""

    dry_run: bool
    removed: list[Removed] = Field(default_factory=list)
    kept: int = 0
    bytes_by_kind: dict[str, int] = Field(default_factory=dict)

    @property
    def bytes_freed(self) -> int:
        """Bytes freed in all."""
        return sum(self.bytes_by_kind.values())


def plan(conn: psycopg.Connection, policy: StoragePolicy, now: datetime | None = None) -> list[Decision]:
    """Every recorded product still on disk, with the policy's decision on it now."""
    return decide(inventory(conn), policy, now or datetime.now(UTC), store.needed_paths(conn))


def prune(
    conn: psycopg.Connection,
    policy: StoragePolicy,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    task_id: int | None = None,
) -> PruneReport:
    """Remove every product the policy lets go now (nothing in a dry run) and record each in
    ``products.storage_removals``. ``conn`` should autocommit: each removal is recorded as it happens."""
    now = now or datetime.now(UTC)
    report = PruneReport(dry_run=dry_run)
    freed: Counter[str] = Counter()
    for decision in plan(conn, policy, now):
        if not decision.remove:
            report.kept += 1
            continue
        candidate = decision.candidate
        if not dry_run:
            # Again, just before: a task spawned since the plan was made may need these files now.
            final = decide_one(candidate, policy, now, store.needed_paths(conn))
            if not final.remove:
                report.kept += 1
                continue
            size = remove(candidate)
            store.record_removal(
                conn,
                kind=candidate.kind,
                paths=candidate.paths,
                bytes_freed=size,
                night=candidate.night,
                reason=decision.reason,
                task_id=task_id,
            )
            log.info(
                "removed", kind=candidate.kind, product=candidate.product, bytes=size, reason=decision.reason
            )
        else:
            size = candidate.bytes
        freed[candidate.kind] += size
        report.removed.append(
            Removed(
                kind=candidate.kind,
                product=candidate.product,
                paths=list(candidate.paths),
                bytes=size,
                night=candidate.night.isoformat() if candidate.night else None,
                reason=decision.reason,
            )
        )
    report.bytes_by_kind = dict(freed)
    if not dry_run:
        log.info("prune done", removed=len(report.removed), kept=report.kept, bytes_freed=report.bytes_freed)
    return report
