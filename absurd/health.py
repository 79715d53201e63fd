"""``absurd health``: is the deployment well? The database answers, the migrations are applied, and
workers and schedulers are alive by their heartbeats. A registered process that has not stopped
and has not beaten within ``stale_s`` is stale: it probably died without saying so."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from absurd.database import redact
from absurd.migrate import load_migrations, pending

PROCESSES = {
    "workers": """
        SELECT id, hostname, pid, heartbeat_at, extract(epoch FROM now() - heartbeat_at) AS silent_s
        FROM absurd.workers WHERE stopped_at IS NULL ORDER BY id""",
    "schedulers": """
        SELECT id, hostname, pid, heartbeat_at, extract(epoch FROM now() - heartbeat_at) AS silent_s
        FROM absurd.schedulers WHERE stopped_at IS NULL ORDER BY id""",
}


class Check(BaseModel):
    """One check: its name, whether it passed, and what it found."""

    name: str
    ok: bool
    detail: str
    items: list[dict[str, Any]] = Field(default_factory=list)


class HealthReport(BaseModel):
    """Every check; healthy when all passed."""

    healthy: bool
    checks: list[Check]


def check_health(
    dsn: str, stale_s: float = 60.0, min_workers: int = 1, min_schedulers: int = 1
) -> HealthReport:
    """Run the checks against ``dsn``. Later checks are skipped when the database cannot be read."""
    checks: list[Check] = []
    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else "connection failed"
        checks.append(Check(name="database", ok=False, detail=f"cannot connect to {redact(dsn)}: {message}"))
        return HealthReport(healthy=False, checks=checks)
    with conn:
        checks.append(Check(name="database", ok=True, detail=f"connected to {redact(dsn)}"))
        missing = pending(conn)
        total = len(load_migrations())
        checks.append(
            Check(
                name="migrations",
                ok=not missing,
                detail=f"{total - len(missing)} of {total} applied"
                + (f"; pending: {', '.join(missing)} (run `absurd migrate`)" if missing else ""),
            )
        )
        if missing:
            return HealthReport(healthy=False, checks=checks)
        for kind, minimum in (("workers", min_workers), ("schedulers", min_schedulers)):
            with conn.cursor(row_factory=dict_row) as cur:
                rows = cur.execute(PROCESSES[kind]).fetchall()
            for row in rows:
                row["silent_s"] = float(row["silent_s"])
                row["alive"] = row["silent_s"] <= stale_s
            alive = sum(1 for r in rows if r["alive"])
            stale = [r["id"] for r in rows if not r["alive"]]
            detail = f"{alive} alive (need {minimum})"
            if stale:
                detail += f"; stale (no heartbeat for over {stale_s:g} s): {', '.join(stale)}"
            checks.append(Check(name=kind, ok=alive >= minimum, detail=detail, items=rows))
    return HealthReport(healthy=all(c.ok for c in checks), checks=checks)
