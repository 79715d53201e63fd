"""The streaming converter's SQL: named queries on ``products.stream_files`` and ``products.stream_groups``.

The tables and their state machine are described in ``migrations/0005_stream.sql``. Functions take a
connection and run inside whatever transaction the caller holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from contimg.stream.watch import SettledFile

_TRY_LOCK = "SELECT pg_try_advisory_lock(hashtextextended('contimg-stream:' || %s, 0))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended('contimg-stream:' || %s, 0))"

_REGISTER_FILE = """
INSERT INTO products.stream_files (path, subband, file_time, size_bytes, arrived_at, first_seen_at)
VALUES (%(path)s, %(subband)s, %(file_time)s, %(size_bytes)s, %(arrived_at)s, %(first_seen_at)s)
ON CONFLICT (path) DO NOTHING
RETURNING id
"""

_REGISTERED_PATHS = "SELECT path FROM products.stream_files WHERE starts_with(path, %s)"

_NEW_FILES = """
SELECT path, subband, file_time, arrived_at FROM products.stream_files
WHERE status = 'new' AND starts_with(path, %s)
ORDER BY file_time, subband
"""

# The sealed group a new file would have joined: its file-name times and the file's fit in one window.
_SEALED_GROUP_FOR = """
SELECT g.group_id, g.status,
       EXISTS (SELECT 1 FROM products.stream_files f
               WHERE f.group_id = g.group_id AND f.subband = %(subband)s) AS has_subband
FROM products.stream_groups g
WHERE g.incoming_dir = %(dir)s
  AND g.min_file_time <= %(t)s + make_interval(secs => %(width_s)s)
  AND g.max_file_time >= %(t)s - make_interval(secs => %(width_s)s)
  AND greatest(g.max_file_time, %(t)s) - least(g.min_file_time, %(t)s) <= make_interval(secs => %(width_s)s)
ORDER BY abs(extract(epoch FROM g.group_time - %(t)s))
LIMIT 1
"""

_MARK_LATE = """
UPDATE products.stream_files SET group_id = %(group_id)s, status = %(status)s, late = true
WHERE path = %(path)s AND status = 'new'
"""

_INSERT_GROUP = """
INSERT INTO products.stream_groups (group_id, group_time, min_file_time, max_file_time, incoming_dir,
                                    n_files, subbands_missing, first_arrival_at, last_arrival_at, status,
                                    convert_task_id, spawned_at, error)
VALUES (%(group_id)s, %(group_time)s, %(min_file_time)s, %(max_file_time)s, %(incoming_dir)s,
        %(n_files)s, %(subbands_missing)s, %(first_arrival_at)s, %(last_arrival_at)s, %(status)s,
        %(convert_task_id)s, CASE WHEN %(convert_task_id)s::bigint IS NULL THEN NULL ELSE now() END,
        %(error)s)
"""

_ASSIGN_FILES = """
UPDATE products.stream_files SET group_id = %s, status = 'grouped'
WHERE path = ANY(%s) AND status = 'new'
"""

# Spawned groups whose conversion has ended (or whose task was cleaned away).
_FINISHED_CONVERSIONS = """
SELECT g.group_id, g.convert_task_id, t.state, t.result, t.last_error
FROM products.stream_groups g
LEFT JOIN absurd.tasks t ON t.id = g.convert_task_id
WHERE g.status = 'spawned' AND g.incoming_dir = %s
  AND (t.id IS NULL OR t.state IN ('completed', 'failed', 'cancelled'))
ORDER BY g.group_time
"""

_MARK_CONVERTED = """
UPDATE products.stream_groups g
SET status = 'converted', ms_path = m.path, mid_mjd = m.mid_mjd, converted_at = m.recorded_at,
    new_ms_emitted_at = now(), latency_s = extract(epoch FROM m.recorded_at - g.last_arrival_at)
FROM products.ms_index m
WHERE g.group_id = %s AND g.status = 'spawned' AND m.path = %s
RETURNING g.group_id, m.path AS ms_path, m.mid_mjd, m.start_mjd, m.end_mjd, m.status AS ms_status,
          m.subbands_missing, g.convert_task_id, g.latency_s, g.version
"""

_MARK_FAILED = """
UPDATE products.stream_groups SET status = 'failed', error = %s
WHERE group_id = %s AND status = 'spawned'
"""

# Groups that ended (converted, failed or skipped) and have a late subband not yet converted with them.
_REGROUP_CANDIDATES = """
SELECT g.group_id, g.version,
       array_agg(f.path ORDER BY f.subband) AS paths,
       array_agg(f.subband ORDER BY f.subband) AS subbands
FROM products.stream_groups g
JOIN products.stream_files f ON f.group_id = g.group_id AND f.status IN ('grouped', 'late')
WHERE g.incoming_dir = %s AND g.status IN ('converted', 'failed', 'skipped')
  AND EXISTS (SELECT 1 FROM products.stream_files l
              WHERE l.group_id = g.group_id AND l.status = 'late' AND l.reconverted_in IS NULL)
GROUP BY g.group_id, g.version
ORDER BY g.group_id
"""

_RESPAWN_GROUP = """
UPDATE products.stream_groups
SET status = 'spawned', version = %(version)s, convert_task_id = %(task_id)s, spawned_at = now(),
    n_files = %(n_files)s, subbands_missing = %(missing)s, ms_path = NULL, mid_mjd = NULL,
    converted_at = NULL, new_ms_emitted_at = NULL, latency_s = NULL, error = NULL,
    last_arrival_at = greatest(last_arrival_at, (SELECT max(arrived_at) FROM products.stream_files
                                                 WHERE group_id = %(group_id)s AND status = 'late'))
WHERE group_id = %(group_id)s AND version = %(version)s - 1
"""

_MARK_RECONVERTED = """
UPDATE products.stream_files SET reconverted_in = %s
WHERE group_id = %s AND status = 'late' AND reconverted_in IS NULL
"""

_GROUP_COUNTS = """
SELECT status, count(*) AS n, count(*) FILTER (WHERE cardinality(subbands_missing) > 0) AS n_incomplete
FROM products.stream_groups GROUP BY status
"""

_FILE_COUNTS = "SELECT status, count(*) AS n FROM products.stream_files GROUP BY status"

_NEW_FILE_TIMES = "SELECT path, subband, file_time FROM products.stream_files WHERE status = 'new'"

_LATE_FILES = """
SELECT path, group_id, status, registered_at FROM products.stream_files
WHERE late ORDER BY registered_at DESC LIMIT %s
"""

_FAILED_GROUPS = """
SELECT group_id, convert_task_id, error FROM products.stream_groups
WHERE status IN ('failed', 'skipped') ORDER BY sealed_at DESC LIMIT %s
"""

_RECENT_CONVERSIONS = """
SELECT count(*) FILTER (
           WHERE converted_at > now() - make_interval(secs => %(throughput_window_s)s)) AS n_recent,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_s) AS latency_p50_s,
       max(latency_s) AS latency_max_s
FROM products.stream_groups
WHERE status = 'converted' AND converted_at > now() - make_interval(secs => %(latency_window_s)s)
"""


@dataclass(frozen=True)
class NewFile:
    """A registered file not yet in a sealed group."""

    path: Path
    subband: int
    file_time: datetime
    arrived_at: datetime


@dataclass(frozen=True)
class SealedMatch:
    """The sealed group a late file belongs to."""

    group_id: str
    status: str
    has_subband: bool


def try_lock(conn: psycopg.Connection, incoming_dir: Path) -> bool:
    """Take the session lock that makes one daemon the owner of ``incoming_dir``; False if held."""
    row = conn.execute(_TRY_LOCK, (str(incoming_dir),)).fetchone()
    return bool(row and row[0])


def unlock(conn: psycopg.Connection, incoming_dir: Path) -> None:
    """Release the lock taken by ``try_lock``."""
    conn.execute(_UNLOCK, (str(incoming_dir),))


def register_file(conn: psycopg.Connection, settled: SettledFile) -> bool:
    """Record a settled file; False if its path was registered already (nothing changes then)."""
    row = conn.execute(
        _REGISTER_FILE,
        {
            "path": str(settled.file.path),
            "subband": settled.file.subband,
            "file_time": settled.file.timestamp,
            "size_bytes": settled.size_bytes,
            "arrived_at": settled.arrived_at,
            "first_seen_at": settled.first_seen_at,
        },
    ).fetchone()
    return row is not None


def registered_paths(conn: psycopg.Connection, incoming_dir: Path) -> set[Path]:
    """Every registered path under ``incoming_dir``."""
    prefix = str(incoming_dir).rstrip("/") + "/"
    return {Path(p) for (p,) in conn.execute(_REGISTERED_PATHS, (prefix,)).fetchall()}


def new_files(conn: psycopg.Connection, incoming_dir: Path) -> list[NewFile]:
    """Registered files of ``incoming_dir`` not yet in a sealed group, by file-name time."""
    prefix = str(incoming_dir).rstrip("/") + "/"
    rows = conn.execute(_NEW_FILES, (prefix,)).fetchall()
    return [NewFile(Path(p), int(s), t, a) for p, s, t, a in rows]


def sealed_group_for(
    conn: psycopg.Connection, incoming_dir: Path, file_time: datetime, subband: int, width_s: float
) -> SealedMatch | None:
    """The sealed group whose time window would take a file named ``file_time``, if any."""
    row = conn.execute(
        _SEALED_GROUP_FOR,
        {"dir": str(incoming_dir), "t": file_time, "subband": subband, "width_s": width_s},
    ).fetchone()
    return SealedMatch(str(row[0]), str(row[1]), bool(row[2])) if row else None


def mark_late(conn: psycopg.Connection, path: Path, group_id: str, duplicate: bool) -> None:
    """Attach a file that arrived after its group was sealed, as 'late' or 'duplicate'."""
    conn.execute(
        _MARK_LATE, {"path": str(path), "group_id": group_id, "status": "duplicate" if duplicate else "late"}
    )


def insert_group(conn: psycopg.Connection, **values: Any) -> None:
    """Insert a sealed group (see ``_INSERT_GROUP`` for the fields)."""
    conn.execute(_INSERT_GROUP, values)


def assign_files(conn: psycopg.Connection, group_id: str, paths: list[Path]) -> None:
    """Put new files into a sealed group."""
    conn.execute(_ASSIGN_FILES, (group_id, [str(p) for p in paths]))


def finished_conversions(conn: psycopg.Connection, incoming_dir: Path) -> list[dict[str, Any]]:
    """Spawned groups whose convert task has ended: group_id, convert_task_id, state, result, last_error."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_FINISHED_CONVERSIONS, (str(incoming_dir),)).fetchall()


def mark_converted(conn: psycopg.Connection, group_id: str, ms_path: str) -> dict[str, Any] | None:
    """Mark a spawned group converted from its ``ms_index`` row; None if it is not spawned any more,
    or the MS is not recorded."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_MARK_CONVERTED, (group_id, ms_path)).fetchone()


@dataclass(frozen=True)
class Regroup:
    """A group that ended and has late subbands to convert with it: version ``version + 1`` is due."""

    group_id: str
    version: int
    paths: list[Path]
    subbands: list[int]


def regroup_candidates(conn: psycopg.Connection, incoming_dir: Path) -> list[Regroup]:
    """Ended groups of ``incoming_dir`` with a late subband that no conversion has taken in yet."""
    rows = conn.execute(_REGROUP_CANDIDATES, (str(incoming_dir),)).fetchall()
    return [Regroup(g, int(v), [Path(p) for p in paths], list(subs)) for g, v, paths, subs in rows]


def respawn_group(
    conn: psycopg.Connection, group_id: str, version: int, task_id: int, n_files: int, missing: list[str]
) -> bool:
    """Put an ended group back to 'spawned' as ``version``, and mark its late files taken in."""
    done = conn.execute(
        _RESPAWN_GROUP,
        {
            "group_id": group_id,
            "version": version,
            "task_id": task_id,
            "n_files": n_files,
            "missing": missing,
        },
    ).rowcount
    if done:
        conn.execute(_MARK_RECONVERTED, (version, group_id))
    return done > 0


def mark_failed(conn: psycopg.Connection, group_id: str, error: str) -> bool:
    """Mark a spawned group failed with its reason; False if it was not spawned any more."""
    return conn.execute(_MARK_FAILED, (error, group_id)).rowcount > 0


def status_rows(
    conn: psycopg.Connection, throughput_window_s: float, latency_window_s: float, limit: int
) -> dict[str, Any]:
    """The raw numbers behind ``contimg stream status``."""
    with conn.cursor(row_factory=dict_row) as cur:
        return {
            "groups": cur.execute(_GROUP_COUNTS).fetchall(),
            "files": cur.execute(_FILE_COUNTS).fetchall(),
            "new_files": cur.execute(_NEW_FILE_TIMES).fetchall(),
            "late_files": cur.execute(_LATE_FILES, (limit,)).fetchall(),
            "failed_groups": cur.execute(_FAILED_GROUPS, (limit,)).fetchall(),
            "recent": cur.execute(
                _RECENT_CONVERSIONS,
                {"throughput_window_s": throughput_window_s, "latency_window_s": latency_window_s},
            ).fetchone(),
        }
