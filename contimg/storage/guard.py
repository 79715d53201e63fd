"""The disk guard: probes the free space of each configured data path. Below the warning level it logs a
warning and sets a gauge; below the critical level it opens the circuit breakers of the tasks that write
there (``absurd breaker``), so their queued tasks wait instead of failing, and closes them again once the
path has more than its resume level free. The streaming converter is not a task and keeps registering
arrivals meanwhile; the conversions it spawns wait behind the breaker.

It runs as its own daemon, ``contimg storage guard`` (deploy/contimg-storage-guard.service).
A breaker the guard opens has a cooldown of ``hold_s``: if the guard stops, the breaker half-opens on its
own and lets one trial task through (which finds no room, and sleeps). While the path stays full the guard
opens it again at each probe. It closes only the breakers it opened.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import psycopg
import structlog

from absurd import queries
from absurd.client import Client
from absurd.daemon import Daemon, default_daemon_id
from absurd.errors import NotFoundError
from absurd.options import GateConfig
from contimg.storage.inventory import inventory
from contimg.storage.metrics import StorageMetrics
from contimg.storage.policy import GuardedPath, StoragePolicy, Threshold
from contimg.storage.usage import usage
from contimg.store import storage as store

log = structlog.get_logger("contimg.storage.guard")

LEVELS = ("ok", "warning", "critical")


def existing_ancestor(path: Path) -> Path:
    """``path``, or its nearest ancestor that exists (a directory not yet made is on its parent's disk)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_space(path: Path) -> tuple[int, int]:
    """Bytes free (to an unprivileged writer) and the file system's size, for the disk ``path`` is on."""
    usage = shutil.disk_usage(existing_ancestor(path))
    return usage.free, usage.total


def level_of(
    free: int, total: int, warning: Threshold, critical: Threshold, resume: Threshold, previous: str | None
) -> str:
    """'critical' below the critical level, and for a path already critical until it is above ``resume``
    (so a writer let go at the edge does not flap the breakers); 'warning' below the warning level."""
    if free < critical.bytes_of(total):
        return "critical"
    if previous == "critical" and free < resume.bytes_of(total):
        return "critical"
    if free < warning.bytes_of(total):
        return "warning"
    return "ok"


def human(n: float) -> str:
    """Bytes as a short figure: 1.5 GB, 320 MB."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


@dataclass(frozen=True)
class Probe:
    """One path's free space and level."""

    guarded: GuardedPath
    free: int
    total: int
    level: str
    critical_bytes: int

    @property
    def path(self) -> str:
        """The path as configured."""
        return str(self.guarded.path)


def ensure_gates(conn: psycopg.Connection, keys: set[str]) -> None:
    """Give every writer task a gate with a breaker, so the tasks spawned from now on can be held; an
    operator's own settings on an existing gate are kept."""
    client = Client(conn=conn)
    for key in sorted(keys):
        try:
            client.gate(key, transitions=0)
        except NotFoundError:
            client.configure_gate(GateConfig(key=key, breaker_enabled=True))
            log.info("breaker created for the disk guard", key=key)


def _breaker_state(conn: psycopg.Connection, key: str) -> str | None:
    try:
        return str(Client(conn=conn).gate(key, transitions=0)["breaker_state"])
    except NotFoundError:
        return None


def open_breaker(conn: psycopg.Connection, key: str, reason: str, hold_s: float) -> bool:
    """Open the breaker ``key`` (created if missing) for ``hold_s``; False when it was open already."""
    state = _breaker_state(conn, key)
    if state is None:
        ensure_gates(conn, {key})
    elif state == "open":
        return False
    conn.execute(queries.SET_BREAKER_STATE, (key, "open", reason, hold_s))
    return True


def close_breaker(conn: psycopg.Connection, key: str, reason: str) -> bool:
    """Close the breaker ``key``; False when it was not open or half-open."""
    if _breaker_state(conn, key) in (None, "closed"):
        return False
    conn.execute(queries.SET_BREAKER_STATE, (key, "closed", reason, None))
    return True


class DiskGuard:
    """Probes the policy's data paths and moves the writers' breakers; ``check`` is one pass."""

    def __init__(self, dsn: str, policy: StoragePolicy, metrics: StorageMetrics | None = None) -> None:
        self.dsn = dsn
        self.policy = policy
        self.metrics = metrics or StorageMetrics()
        self._gates_ready = False

    def probe(self, previous: dict[str, str]) -> list[Probe]:
        """Free space and level of every guarded path."""
        probes = []
        for guarded in self.policy.guard.paths:
            free, total = free_space(guarded.path)
            warning, critical, resume = self.policy.levels(guarded)
            level = level_of(free, total, warning, critical, resume, previous.get(str(guarded.path)))
            probes.append(Probe(guarded, free, total, level, critical.bytes_of(total)))
        return probes

    def check(self, conn: psycopg.Connection) -> list[Probe]:
        """One pass on an autocommit connection: probe, log level changes, open and close breakers."""
        if not self._gates_ready:
            ensure_gates(conn, {w for g in self.policy.guard.paths for w in g.writers})
            self._gates_ready = True
        with conn.transaction():
            return self._check(conn)

    def _check(self, conn: psycopg.Connection) -> list[Probe]:
        before = {row["path"]: row for row in store.guard_state(conn, lock=True)}
        probes = self.probe({path: row["level"] for path, row in before.items()})
        wanted: dict[str, Probe] = {}
        held: dict[str, list[str]] = {}
        for p in probes:
            self.metrics.observe_path(p.path, p.free, p.total, p.level)
            was = before.get(p.path, {}).get("level", "ok")
            fields = {"path": p.path, "free": human(p.free), "free_bytes": p.free, "total": human(p.total)}
            if p.level == "critical":
                # The path's writers, and any task that found no room there (nospace.py).
                keys = list(dict.fromkeys([*p.guarded.writers, *before.get(p.path, {}).get("held_keys", [])]))
                held[p.path] = keys
                for key in keys:
                    wanted.setdefault(key, p)
                if was != "critical":
                    log.error("disk critical: pausing its writers", writers=keys, **fields)
            elif p.level == "warning" and was == "ok":
                log.warning("disk space low", **fields)
            elif p.level == "ok" and was != "ok":
                log.info("disk space back to normal", **fields)
        held_before = {key for row in before.values() for key in row["held_keys"]}
        for key, p in wanted.items():
            reason = (
                f"disk guard: {p.path} has {human(p.free)} free, below its critical level "
                f"{human(p.critical_bytes)}"
            )
            if open_breaker(conn, key, reason, self.policy.guard.hold_s):
                log.warning("breaker opened: no room to write", key=key, path=p.path, free=human(p.free))
        for key in sorted(held_before - set(wanted)):
            if close_breaker(conn, key, "disk guard: space returned"):
                log.info("breaker closed: room to write again", key=key)
        for p in probes:
            store.save_guard_state(conn, p.path, p.level, p.free, p.total, held.get(p.path, []))
        return probes


class DiskGuardDaemon(Daemon):
    """``contimg storage guard``: a DiskGuard pass every ``interval_s`` until SIGTERM, with sd_notify and
    the storage gauges on the daemon's metrics endpoint (free space per path at every pass, bytes per
    product kind every ``USAGE_EVERY`` passes, since that walks every product)."""

    kind = "disk guard"
    USAGE_EVERY = 20

    def __init__(
        self, policy: StoragePolicy, dsn: str | None = None, metrics_port: int | None = None
    ) -> None:
        super().__init__(log, {"guard": default_daemon_id()}, dsn, metrics_port=metrics_port)
        self.policy = policy
        self.guard = DiskGuard(self.dsn, policy, StorageMetrics(self.metrics.registry))
        self.passes = 0

    def _ready_status(self) -> str:
        return f"guarding {len(self.policy.guard.paths)} data paths"

    def _started_fields(self) -> dict[str, object]:
        return {
            "paths": [str(g.path) for g in self.policy.guard.paths],
            "interval_s": self.policy.guard.interval_s,
        }

    def _serve(self) -> None:
        while not self._stopping.is_set():
            self._retry(self._pass, "probe the data paths")
            if self._pause(self.policy.guard.interval_s):
                return

    def _pass(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=10) as conn:
            self.guard.check(conn)
            if self.metrics_port is not None and self.passes % self.USAGE_EVERY == 0:
                counted = usage(inventory(conn))
                self.guard.metrics.observe_kinds({k.kind: k.bytes for k in counted.by_kind})
        self.passes += 1
