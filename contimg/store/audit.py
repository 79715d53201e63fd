"""The dashboard's audit log (``web.audit_log``): every mutating action, done or refused."""

from __future__ import annotations

from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

Role = Literal["viewer", "operator"]

_INSERT = """
INSERT INTO web.audit_log (actor, role, action, target, allowed, details)
VALUES (%s, %s, %s, %s, %s, %s) RETURNING id
"""
_RECENT = """
SELECT id, at, actor, role, action, target, allowed, details
FROM web.audit_log ORDER BY id DESC LIMIT %s
"""


def record(
    conn: psycopg.Connection,
    actor: str,
    role: Role,
    action: str,
    target: str,
    allowed: bool,
    details: dict[str, Any] | None = None,
) -> int:
    """Write one audit row on ``conn`` (inside the caller's transaction, if any); returns its id."""
    row = conn.execute(_INSERT, (actor, role, action, target, allowed, Jsonb(details or {}))).fetchone()
    assert row is not None
    return int(row[0])


def recent(conn: psycopg.Connection, limit: int = 100) -> list[dict[str, Any]]:
    """The newest audit rows first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_RECENT, (limit,)).fetchall()
