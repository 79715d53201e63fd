"""``prune-storage``: the retention pruner as a task, run daily by ``schedules/storage.yaml``.

It removes the products the storage policy lets go (contimg/storage/) and records each removal in
``products.storage_removals`` as it goes, so an interrupted run loses no record; a re-run finds only
what is left.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

import absurd
from contimg.storage.policy import load_policy
from contimg.storage.prune import PruneReport, prune

registry = absurd.Registry()


class PruneParams(BaseModel):
    """``prune-storage``: which policy, and whether only to report."""

    model_config = ConfigDict(extra="forbid")
    policy_path: Path | None = Field(
        None, description="storage policy YAML; default $CONTIMG_STORAGE_CONFIG or the built-in policy"
    )
    dry_run: bool = False


class PruneSummary(BaseModel):
    """What a prune task removed: counts and bytes by kind."""

    removed: int
    kept: int
    bytes_by_kind: dict[str, int]


@registry.task(
    "prune-storage",
    params=PruneParams,
    options=absurd.SpawnOptions(queue="default", timeout_s=3600, max_attempts=3),
)
def prune_storage(ctx: absurd.TaskContext, params: PruneParams) -> PruneSummary:
    """Remove what the storage policy lets go now, recording each removal."""
    policy = load_policy(params.policy_path)
    with ctx.connection() as conn:
        report: PruneReport = prune(conn, policy, dry_run=params.dry_run, task_id=ctx.task_id)
    return PruneSummary(removed=len(report.removed), kept=report.kept, bytes_by_kind=report.bytes_by_kind)
