"""The queue as the dashboard reads it: the overview's figures and the task list by cursor.

Every query here is bounded: counts come from the partial view of live states or from a time window,
never a ``COUNT(*)`` over the whole history, and the task list pages by id (a cursor), not OFFSET.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

# Live states only: finished history can hold millions of rows, so it is counted over the last hour.
_LIVE_COUNTS = """
SELECT state, count(*) AS n
FROM absurd.tasks WHERE state IN ('pending', 'running', 'sleeping', 'waiting')
GROUP BY state
"""
# Pending tasks whose time has come (not those in a retry's backoff or before their not-before time), the
# oldest's wait in each band, as absurd_queue_oldest_pending_age_seconds measures it: live work (priority 0
# or more), and background work (an archive's reprocessing) that waits behind it by design.
_OLDEST_DUE = """
SELECT extract(epoch FROM now() - min(available_at) FILTER (WHERE priority >= 0)) AS foreground_s,
       extract(epoch FROM now() - min(available_at) FILTER (WHERE priority < 0)) AS background_s
FROM absurd.tasks WHERE state = 'pending' AND available_at <= now()
"""
_LAST_HOUR = """
SELECT count(*) FILTER (WHERE state = 'completed') AS completed,
       count(*) FILTER (WHERE state = 'failed') AS failed,
       count(*) FILTER (WHERE state = 'cancelled') AS cancelled
FROM absurd.tasks WHERE finished_at > now() - interval '1 hour'
"""
# Over tasks finished in the window: run time (start to finish) and wait (spawn to start) percentiles.
_WINDOW_METRICS = """
SELECT count(*) FILTER (WHERE state = 'completed') AS completed,
       count(*) FILTER (WHERE state = 'failed') AS failed,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at))
           FILTER (WHERE state = 'completed') AS run_p50_s,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at))
           FILTER (WHERE state = 'completed') AS run_p95_s,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - created_at))
           FILTER (WHERE state = 'completed') AS wait_p50_s,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - created_at))
           FILTER (WHERE state = 'completed') AS wait_p95_s
FROM absurd.tasks WHERE finished_at > now() - make_interval(secs => %s)
"""
_STREAM_GROUPS = """
SELECT count(*) FILTER (WHERE status = 'spawned') AS spawned,
       count(*) FILTER (WHERE status = 'converted') AS converted,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status = 'skipped') AS skipped,
       count(*) FILTER (WHERE cardinality(subbands_missing) > 0) AS incomplete,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_s) AS latency_p50_s,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_s) AS latency_p95_s
FROM products.stream_groups WHERE sealed_at > now() - make_interval(secs => %s)
"""
_STREAM_FILES = """
SELECT (SELECT count(*) FROM products.stream_files WHERE status = 'new') AS waiting,
       count(*) FILTER (WHERE status = 'late') AS late,
       count(*) FILTER (WHERE status = 'duplicate') AS duplicate
FROM products.stream_files WHERE late AND registered_at > now() - make_interval(secs => %s)
"""
_RECENT_GROUPS = """
SELECT group_id, group_time, n_files, subbands_missing, status, version, convert_task_id, ms_path,
       latency_s, error, sealed_at
FROM products.stream_groups ORDER BY id DESC LIMIT %s
"""
_OPEN_DLQ = "SELECT count(*) FROM absurd.dlq WHERE resolved_at IS NULL"
_LIVE_WORKERS = """
SELECT id, hostname, pid, queues, concurrency, started_at, heartbeat_at,
       extract(epoch FROM now() - heartbeat_at) AS heartbeat_age_s
FROM absurd.workers WHERE stopped_at IS NULL AND heartbeat_at > now() - interval '5 minutes'
ORDER BY id
"""
_LAST_PRODUCT = """
SELECT id, path, mid_time, recorded_at, extract(epoch FROM now() - recorded_at) AS age_s
FROM products.images ORDER BY recorded_at DESC, id DESC LIMIT 1
"""
_NOW = "SELECT now()"

# Filters are parameters; a NULL filter matches everything. ``before`` is the cursor (an id).
_TASK_PAGE = """
SELECT id, queue, name, state, attempts, failures, workflow_id, step_name, created_at, started_at,
       finished_at, extract(epoch FROM finished_at - started_at) AS duration_s,
       last_error->>'message' AS error
FROM absurd.tasks
WHERE (%(queue)s::text IS NULL OR queue = %(queue)s)
  AND (%(state)s::text IS NULL OR state = %(state)s)
  AND (%(name)s::text IS NULL OR name = %(name)s)
  AND (%(before)s::bigint IS NULL OR id < %(before)s)
ORDER BY id DESC LIMIT %(limit)s
"""


class Overview(BaseModel):
    """What the operations overview shows, as of ``now`` (the database's clock)."""

    now: datetime
    live: dict[str, int]
    oldest_pending_s: float | None = Field(
        description="how long the oldest due pending task of priority 0 or more has waited; null if none"
    )
    oldest_background_s: float | None = Field(
        description="the same for negative priorities (background work such as reprocessing)"
    )
    last_hour: dict[str, int]
    open_dlq: int
    workers: list[dict[str, Any]]
    last_image: dict[str, Any] | None
    stalled: bool
    stall_after_s: float


def overview(conn: psycopg.Connection, stall_after_s: float) -> Overview:
    """The overview's figures; ``stalled`` when no image has been recorded for ``stall_after_s``."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_LIVE_COUNTS).fetchall()
        oldest = cur.execute(_OLDEST_DUE).fetchone() or {}
        hour = cur.execute(_LAST_HOUR).fetchone() or {}
        workers = cur.execute(_LIVE_WORKERS).fetchall()
        last_image = cur.execute(_LAST_PRODUCT).fetchone()
    now_row = conn.execute(_NOW).fetchone()
    dlq_row = conn.execute(_OPEN_DLQ).fetchone()
    assert now_row is not None and dlq_row is not None
    now = now_row[0]
    live = {s: 0 for s in ("pending", "running", "sleeping", "waiting")}
    for r in rows:
        live[r["state"]] = int(r["n"])
    stalled = last_image is None or float(last_image["age_s"]) > stall_after_s
    return Overview(
        now=now,
        live=live,
        oldest_pending_s=_seconds(oldest.get("foreground_s")),
        oldest_background_s=_seconds(oldest.get("background_s")),
        last_hour={k: int(v or 0) for k, v in hour.items()},
        open_dlq=int(dlq_row[0]),
        workers=workers,
        last_image=last_image,
        stalled=stalled,
        stall_after_s=stall_after_s,
    )


def _seconds(value: Any) -> float | None:
    return None if value is None else float(value)


def task_page(
    conn: psycopg.Connection,
    queue: str | None = None,
    state: str | None = None,
    name: str | None = None,
    before: int | None = None,
    limit: int = 50,
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of tasks, newest first, and the cursor of the next page (None on the last)."""
    args = {"queue": queue, "state": state, "name": name, "before": before, "limit": limit + 1}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_TASK_PAGE, args).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (int(rows[-1]["id"]) if more and rows else None)


class Throughput(BaseModel):
    """Outcomes and timings of the tasks that finished in the last ``window_s`` seconds."""

    window_s: float
    completed: int
    failed: int
    per_hour: float
    error_rate: float | None
    run_p50_s: float | None
    run_p95_s: float | None
    wait_p50_s: float | None
    wait_p95_s: float | None


def throughput(conn: psycopg.Connection, window_s: float = 3600.0) -> Throughput:
    """Throughput, error rate and latency percentiles over a window (index on finished_at)."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_WINDOW_METRICS, (window_s,)).fetchone() or {}
    completed, failed = int(row.get("completed") or 0), int(row.get("failed") or 0)
    return Throughput(
        window_s=window_s,
        completed=completed,
        failed=failed,
        per_hour=completed * 3600.0 / window_s,
        error_rate=failed / (completed + failed) if completed + failed else None,
        **{k: row.get(k) for k in ("run_p50_s", "run_p95_s", "wait_p50_s", "wait_p95_s")},
    )


class StreamStatus(BaseModel):
    """The streaming converter over a window: groups by outcome, late and duplicate files, latency."""

    window_s: float
    groups: dict[str, int]
    latency_p50_s: float | None
    latency_p95_s: float | None
    files_waiting: int
    late_files: int
    duplicate_files: int
    recent: list[dict[str, Any]]


def stream_status(conn: psycopg.Connection, window_s: float = 86400.0, recent: int = 30) -> StreamStatus:
    """What the streaming converter did in the window, and its latest groups."""
    with conn.cursor(row_factory=dict_row) as cur:
        groups = cur.execute(_STREAM_GROUPS, (window_s,)).fetchone() or {}
        files = cur.execute(_STREAM_FILES, (window_s,)).fetchone() or {}
        rows = cur.execute(_RECENT_GROUPS, (recent,)).fetchall()
    counts = ("spawned", "converted", "failed", "skipped", "incomplete")
    return StreamStatus(
        window_s=window_s,
        groups={k: int(groups.get(k) or 0) for k in counts},
        latency_p50_s=groups.get("latency_p50_s"),
        latency_p95_s=groups.get("latency_p95_s"),
        files_waiting=int(files.get("waiting") or 0),
        late_files=int(files.get("late") or 0),
        duplicate_files=int(files.get("duplicate") or 0),
        recent=rows,
    )
