"""A task's write that finds no room: it is reported (the path and the free space), leaves nothing
behind (the science functions write to a temporary name and remove it on failure), opens the task's
breaker, and the task sleeps without using up an attempt; once the disk guard closes the breaker the task
is claimed and tries again.

``room_to_write`` checks before the write too: a task whose estimated output would take the disk below its
critical level does not start writing. That matters because casacore, on a full disk, aborts the process
rather than raise: the check keeps the worker out of that path in all but a race with another writer.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog

import absurd
from contimg.storage.guard import free_space, human, open_breaker
from contimg.storage.policy import StoragePolicy, load_policy
from contimg.store import storage as store

log = structlog.get_logger("contimg.storage.nospace")

NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# casacore and CASA report a full disk as a RuntimeError carrying the C library's message.
NO_SPACE_TEXT = "No space left on device"


def is_no_space(exc: BaseException) -> bool:
    """True for an error that means the disk (or a quota) is full."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in NO_SPACE_ERRNOS:
            return True
        if NO_SPACE_TEXT in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _pause(ctx: absurd.TaskContext, path: Path, why: str, policy: StoragePolicy) -> None:
    """Report, open the task's breaker, and sleep (raises absurd's Suspended)."""
    free, total = free_space(path)
    reason = f"no room to write in {path}: {why}; {human(free)} free of {human(total)}"
    log.error(
        "no room to write; task paused until the disk guard frees its breaker",
        task_id=ctx.task_id,
        task=ctx.name,
        path=str(path),
        free_bytes=free,
        why=why,
    )
    guarded = policy.guarded_path_of(path)
    with ctx.connection() as conn:
        if guarded is not None:
            # The guard keeps the breaker open until the path is above its resume level.
            store.mark_full(conn, str(guarded.path), free, total, ctx.name)
        open_breaker(conn, ctx.name, f"{ctx.name} task {ctx.task_id}: {reason}", policy.guard.hold_s)
    # A new name on every attempt: each time the write finds no room is a sleep of its own.
    ctx.sleep_for(f"no-space:{ctx.attempt}", policy.guard.retry_s)


@contextmanager
def room_to_write(
    ctx: absurd.TaskContext, path: Path, needed_bytes: int = 0, policy: StoragePolicy | None = None
) -> Iterator[None]:
    """Run the body (a write under ``path``) only if ``needed_bytes`` fit and, on a guarded path, leave it
    above its critical level; and turn a full-disk error inside it into a pause of the task."""
    policy = policy or load_policy()
    guarded = policy.guarded_path_of(path)
    free, total = free_space(path)
    # On a guarded path the write must leave its critical level free; elsewhere it need only fit.
    floor = policy.levels(guarded)[1].bytes_of(total) if guarded else 0
    if free - needed_bytes < floor:
        _pause(ctx, path, f"needs about {human(needed_bytes)} and must leave {human(floor)} free", policy)
    try:
        yield
    except Exception as exc:
        if not is_no_space(exc):
            raise
        _pause(ctx, path, f"the write failed: {exc}", policy)
