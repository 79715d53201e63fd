"""Storage queries (``migrations/0009_storage.sql``): the products the pruner may consider, the paths
unfinished tasks still need, what was removed, and the disk guard's last probe of each path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row

# Each product with its files and the facts the retention rules ask about.
RAW_FILES = """
SELECT f.path, f.file_time, coalesce(g.status = 'converted', false) AS converted
FROM products.stream_files f LEFT JOIN products.stream_groups g ON g.group_id = f.group_id
"""
MEASUREMENT_SETS = """
SELECT m.path, m.mid_time,
       EXISTS (SELECT 1 FROM products.images i WHERE i.ms_id = m.id OR i.ms_path = m.path) AS imaged,
       EXISTS (SELECT 1 FROM products.images i JOIN products.photometry p ON p.image_id = i.id
               WHERE i.ms_id = m.id OR i.ms_path = m.path) AS measured
FROM products.ms_index m
"""
CALTABLES = "SELECT ms_path, tables, apply_tables, plots, valid_from FROM products.caltables"
IMAGES = """
SELECT i.path, i.pb_path, i.pbcor_path, i.residual_path, i.psf_path, i.model_path, i.preview_path, i.mid_time,
       EXISTS (SELECT 1 FROM products.photometry p WHERE p.image_id = i.id OR p.image_path = i.path)
           AS measured
FROM products.images i
"""
MOSAICS = "SELECT path, noise_path, preview_path, mid_mjd FROM products.mosaics"

# Every absolute path in the params of tasks that have not finished, except under keys that name where a
# task writes (OUTPUT_KEYS): the pruner leaves those paths, what lies in them and what holds them alone.
NEEDED_PATHS = """
WITH RECURSIVE walk(value) AS (
    SELECT t.params FROM absurd.tasks t WHERE t.state IN ('waiting', 'pending', 'running', 'sleeping')
    UNION ALL
    SELECT child.value
    FROM walk,
         LATERAL (SELECT e.value FROM jsonb_each(walk.value) e
                  WHERE jsonb_typeof(walk.value) = 'object' AND e.key <> ALL(%(output_keys)s)
                  UNION ALL
                  SELECT a.value FROM jsonb_array_elements(walk.value) a
                  WHERE jsonb_typeof(walk.value) = 'array') child
)
SELECT DISTINCT value #>> '{}' FROM walk
WHERE jsonb_typeof(value) = 'string' AND value #>> '{}' LIKE '/%%'
"""
# Params that name a directory a task writes into, not a product it reads: a pending create-image must
# not keep every image in its output directory.
OUTPUT_KEYS = ["output_dir", "caltable_dir", "log_dir", "mosaic_dir", "image_dir"]

RECORD_REMOVAL = """
INSERT INTO products.storage_removals (kind, product, paths, bytes, night, reason, task_id)
VALUES (%(kind)s, %(product)s, %(paths)s, %(bytes)s, %(night)s, %(reason)s, %(task_id)s)
"""
REMOVALS = """
SELECT kind, product, paths, bytes, night, reason, task_id, removed_at
FROM products.storage_removals ORDER BY removed_at DESC, id DESC LIMIT %s
"""

GUARD_STATE = "SELECT * FROM products.storage_guard ORDER BY path"
# Locked for the guard's pass, so a task marking its path full waits for the pass instead of being undone.
GUARD_STATE_LOCKED = "SELECT * FROM products.storage_guard ORDER BY path FOR UPDATE"
# A task that found no room: its path is critical (until the guard sees it above its resume level) and
# the guard holds the task's breaker with the path's writers.
MARK_FULL = """
INSERT INTO products.storage_guard (path, level, free_bytes, total_bytes, held_keys)
VALUES (%(path)s, 'critical', %(free_bytes)s, %(total_bytes)s, ARRAY[%(key)s])
ON CONFLICT (path) DO UPDATE SET
    changed_at = CASE WHEN products.storage_guard.level = 'critical'
                      THEN products.storage_guard.changed_at ELSE now() END,
    level = 'critical', free_bytes = excluded.free_bytes, total_bytes = excluded.total_bytes,
    held_keys = ARRAY(SELECT DISTINCT k FROM unnest(products.storage_guard.held_keys || excluded.held_keys) k
                      ORDER BY k),
    checked_at = now()
"""
SAVE_GUARD_STATE = """
INSERT INTO products.storage_guard (path, level, free_bytes, total_bytes, held_keys)
VALUES (%(path)s, %(level)s, %(free_bytes)s, %(total_bytes)s, %(held_keys)s)
ON CONFLICT (path) DO UPDATE SET
    changed_at = CASE WHEN products.storage_guard.level IS DISTINCT FROM excluded.level
                      THEN now() ELSE products.storage_guard.changed_at END,
    level = excluded.level, free_bytes = excluded.free_bytes, total_bytes = excluded.total_bytes,
    held_keys = excluded.held_keys, checked_at = now()
"""


def _rows(conn: psycopg.Connection, query: str, *args: Any) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, args).fetchall()


def raw_files(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every registered subband file, with whether its group was converted."""
    return _rows(conn, RAW_FILES)


def measurement_sets(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every recorded MS, with whether it was imaged and measured."""
    return _rows(conn, MEASUREMENT_SETS)


def caltables(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every recorded solve with its tables and plots."""
    return _rows(conn, CALTABLES)


def images(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every recorded image with its companion files, and whether photometry was stored on it."""
    return _rows(conn, IMAGES)


def mosaics(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every recorded mosaic with its noise map and preview."""
    return _rows(conn, MOSAICS)


def needed_paths(conn: psycopg.Connection) -> set[str]:
    """Absolute paths named anywhere in the params of waiting, pending, running or sleeping tasks."""
    return {row[0] for row in conn.execute(NEEDED_PATHS, {"output_keys": OUTPUT_KEYS}).fetchall()}


def record_removal(
    conn: psycopg.Connection,
    *,
    kind: str,
    paths: Sequence[str],
    bytes_freed: int,
    night: Any,
    reason: str,
    task_id: int | None,
) -> None:
    """Record one removed product."""
    conn.execute(
        RECORD_REMOVAL,
        {
            "kind": kind,
            "product": paths[0],
            "paths": list(paths),
            "bytes": bytes_freed,
            "night": night,
            "reason": reason,
            "task_id": task_id,
        },
    )


def removals(conn: psycopg.Connection, limit: int = 50) -> list[dict[str, Any]]:
    """The most recent removals, newest first."""
    return _rows(conn, REMOVALS, limit)


def guard_state(conn: psycopg.Connection, lock: bool = False) -> list[dict[str, Any]]:
    """The disk guard's last probe of every path (``lock``: locked until the transaction ends)."""
    return _rows(conn, GUARD_STATE_LOCKED if lock else GUARD_STATE)


def mark_full(conn: psycopg.Connection, path: str, free: int, total: int, key: str) -> None:
    """Record that task ``key`` found no room under the guarded ``path``."""
    conn.execute(MARK_FULL, {"path": path, "free_bytes": free, "total_bytes": total, "key": key})


def save_guard_state(
    conn: psycopg.Connection, path: str, level: str, free: int, total: int, held: Sequence[str]
) -> None:
    """Record a probe of ``path``."""
    conn.execute(
        SAVE_GUARD_STATE,
        {"path": path, "level": level, "free_bytes": free, "total_bytes": total, "held_keys": list(held)},
    )
