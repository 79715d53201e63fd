"""Archival reprocessing's SQL: runs, the units they found, and the steps they submitted.

The tables and the exactly-once rule are described in ``migrations/0011_reprocess.sql``. Functions take
a connection and run inside whatever transaction the caller holds.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

# Serialises submissions of one unit at one version across commands, until the transaction ends.
_LOCK_UNIT = "SELECT pg_advisory_xact_lock(hashtextextended('contimg-reprocess:' || %s || ':' || %s, 0))"

_INSERT_RUN = """
INSERT INTO products.reprocess_runs (request_key, input_dir, output_dir, start_time, end_time, steps,
                                     priority, force, settings)
VALUES (%(request_key)s, %(input_dir)s, %(output_dir)s, %(start_time)s, %(end_time)s, %(steps)s,
        %(priority)s, %(force)s, %(settings)s)
ON CONFLICT (request_key) WHERE request_key IS NOT NULL DO NOTHING
RETURNING id
"""

_RUN_BY_KEY = "SELECT id FROM products.reprocess_runs WHERE request_key = %s"

_RUN = "SELECT * FROM products.reprocess_runs WHERE id = %s"

_LIST_RUNS = "SELECT * FROM products.reprocess_runs ORDER BY id DESC LIMIT %s"

_REOPEN_RUN = "UPDATE products.reprocess_runs SET cancelled_at = NULL, submitted_at = NULL WHERE id = %s"

_MARK_SUBMITTED = "UPDATE products.reprocess_runs SET submitted_at = now() WHERE id = %s"

_CANCEL_RUN = "UPDATE products.reprocess_runs SET cancelled_at = now() WHERE id = %s AND cancelled_at IS NULL"

# The newest version any product or reprocess step of this unit has: an MS the streaming converter
# reconverted (group.vN.ms) counts as well as earlier reprocessing.
_LATEST_VERSION = """
SELECT greatest((SELECT max(version) FROM products.reprocess_steps WHERE unit = %(unit)s),
                (SELECT max(version) FROM products.ms_index WHERE group_id = %(unit)s))
"""

_UNIT_VERSION = "SELECT version FROM products.reprocess_units WHERE run_id = %s AND unit = %s"

_ADD_UNIT = """
INSERT INTO products.reprocess_units (run_id, unit, kind, night, version)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (run_id, unit) DO NOTHING
"""

_RECORDED_STEPS = "SELECT step, workflow_id FROM products.reprocess_steps WHERE unit = %s AND version = %s"

_RECORD_STEPS = """
INSERT INTO products.reprocess_steps (unit, version, step, run_id, workflow_id)
SELECT %s, %s, step, %s, %s FROM unnest(%s::text[]) AS step
"""

# The newest task of a step in a workflow (a DLQ requeue's copy has the higher id); none if pruned.
_STEP_TASK = """
SELECT state, result FROM absurd.tasks
WHERE workflow_id = %s AND step_name = %s
ORDER BY id DESC LIMIT 1
"""

_PROGRESS = """
SELECT kind, state, count(*) AS n FROM products.reprocess_progress WHERE run_id = %s GROUP BY kind, state
"""

_FINISH_TIMES = """
SELECT min(finished_at) AS first_finished, max(finished_at) AS last_finished
FROM products.reprocess_progress
WHERE run_id = %s AND kind = 'observation' AND state = 'done'
"""

_TASKS_BY_STEP = """
SELECT s.step, t.state, count(*) AS n
FROM products.reprocess_steps s
JOIN absurd.tasks t ON t.workflow_id = s.workflow_id AND t.step_name = s.step
WHERE s.run_id = %s
GROUP BY s.step, t.state
"""

_RUN_WORKFLOWS = "SELECT DISTINCT workflow_id FROM products.reprocess_steps WHERE run_id = %s ORDER BY 1"

# Tasks still to run in the observation workflows of one night of a run. A workflow blocked on a dead
# letter counts as settled: its waiting tasks run only if an operator retries it, which a mosaic
# cannot wait for.
_OPEN_IN_NIGHT = """
SELECT count(*)
FROM products.reprocess_units u
JOIN products.reprocess_steps s ON s.unit = u.unit AND s.version = u.version
JOIN absurd.workflow_status w ON w.id = s.workflow_id
JOIN absurd.tasks t ON t.workflow_id = s.workflow_id AND t.step_name = s.step
WHERE u.run_id = %s AND u.night = %s AND u.kind = 'observation' AND w.state = 'running'
  AND t.state IN ('waiting', 'pending', 'running', 'sleeping')
"""


def lock_unit(conn: psycopg.Connection, unit: str, version: int) -> None:
    """Hold the unit's submission lock until the caller's transaction ends."""
    conn.execute(_LOCK_UNIT, (unit, str(version)))


def open_run(conn: psycopg.Connection, request_key: str | None, **values: Any) -> tuple[int, bool]:
    """The run of this request (created if new; reopened if it was cancelled) and whether it is new.

    ``request_key`` None (a --force run) always makes a new run.
    """
    params = {**values, "request_key": request_key, "settings": Jsonb(values.get("settings", {}))}
    row = conn.execute(_INSERT_RUN, params).fetchone()
    if row is not None:
        return int(row[0]), True
    found = conn.execute(_RUN_BY_KEY, (request_key,)).fetchone()
    assert found is not None
    conn.execute(_REOPEN_RUN, (found[0],))
    return int(found[0]), False


def reopen_run(conn: psycopg.Connection, run_id: int) -> None:
    """Clear a run's cancelled and submitted stamps before it is submitted again."""
    conn.execute(_REOPEN_RUN, (run_id,))


def get_run(conn: psycopg.Connection, run_id: int) -> dict[str, Any] | None:
    """A run's row, or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_RUN, (run_id,)).fetchone()


def list_runs(conn: psycopg.Connection, limit: int = 20) -> list[dict[str, Any]]:
    """The newest runs first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_LIST_RUNS, (limit,)).fetchall()


def mark_submitted(conn: psycopg.Connection, run_id: int) -> None:
    """Every unit of the run has been offered for submission."""
    conn.execute(_MARK_SUBMITTED, (run_id,))


def mark_cancelled(conn: psycopg.Connection, run_id: int) -> bool:
    """Stamp the run cancelled; False if it was already."""
    return conn.execute(_CANCEL_RUN, (run_id,)).rowcount > 0


def latest_version(conn: psycopg.Connection, unit: str) -> int | None:
    """The newest product version of ``unit`` anyone made or submitted, or None."""
    row = conn.execute(_LATEST_VERSION, {"unit": unit}).fetchone()
    return int(row[0]) if row and row[0] is not None else None


def unit_version(conn: psycopg.Connection, run_id: int, unit: str) -> int | None:
    """The version this run gave ``unit``, if it has seen it before."""
    row = conn.execute(_UNIT_VERSION, (run_id, unit)).fetchone()
    return int(row[0]) if row else None


def add_unit(conn: psycopg.Connection, run_id: int, unit: str, kind: str, night: date, version: int) -> None:
    """Record that the run covers ``unit`` at ``version`` (kept if already there)."""
    conn.execute(_ADD_UNIT, (run_id, unit, kind, night, version))


def recorded_steps(conn: psycopg.Connection, unit: str, version: int) -> dict[str, int]:
    """Step → workflow id, for the steps of ``unit`` at ``version`` already submitted (by any run)."""
    return {str(s): int(w) for s, w in conn.execute(_RECORDED_STEPS, (unit, version)).fetchall()}


def record_steps(
    conn: psycopg.Connection, unit: str, version: int, steps: list[str], run_id: int, workflow_id: int
) -> None:
    """Record the steps just submitted in ``workflow_id``; a step recorded twice violates the key."""
    conn.execute(_RECORD_STEPS, (unit, version, run_id, workflow_id, steps))


def step_task(conn: psycopg.Connection, workflow_id: int, step: str) -> tuple[str, Any] | None:
    """(state, result) of the newest task of ``step`` in ``workflow_id``; None if it was pruned."""
    row = conn.execute(_STEP_TASK, (workflow_id, step)).fetchone()
    return (str(row[0]), row[1]) if row else None


def progress(conn: psycopg.Connection, run_id: int) -> dict[str, Any]:
    """The numbers behind the progress display: units by kind and state, finish times, tasks by step."""
    with conn.cursor(row_factory=dict_row) as cur:
        return {
            "units": cur.execute(_PROGRESS, (run_id,)).fetchall(),
            "times": cur.execute(_FINISH_TIMES, (run_id,)).fetchone(),
            "tasks": cur.execute(_TASKS_BY_STEP, (run_id,)).fetchall(),
        }


def run_workflows(conn: psycopg.Connection, run_id: int) -> list[int]:
    """The workflows the run submitted."""
    return [int(r[0]) for r in conn.execute(_RUN_WORKFLOWS, (run_id,)).fetchall()]


def night_open_tasks(conn: psycopg.Connection, run_id: int, night: date) -> int:
    """Tasks not yet finished in the run's observation workflows of ``night``."""
    row = conn.execute(_OPEN_IN_NIGHT, (run_id, night)).fetchone()
    return int(row[0]) if row else 0
