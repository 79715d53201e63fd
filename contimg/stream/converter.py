"""The streaming converter: subband files in, ``convert-uvh5`` tasks out, ``new_ms`` when each MS lands.

One pass (``StreamDaemon.tick``), about once a second:

1. *Watch*: names the watcher reports (inotify) or a full listing (startup, polling, periodic rescan).
2. *Register*: files that have stopped growing go into ``products.stream_files``; a path registers once.
3. *Seal*: registered files not yet in a group are grouped with ``science.grouping`` (60 s
   tolerance). A group with all 16 subbands, or whose first file arrived more than the subband timeout
   ago, is sealed: ``convert-uvh5`` is spawned with the idempotency key ``convert-uvh5:<group id>`` and
   the group row written, in one transaction. A timed-out group is converted with its missing subbands
   flagged (policy ``flag``) or given up (policy ``skip``); it waits, for up to one more timeout, while a
   file that would join it is on disk but still settling (after a restart, the whole backlog is). A
   file that fits a group already sealed is recorded as late (a subband the group lacked) or duplicate
   (one it has), with a warning.
   *Reconvert*: a group that ended (converted, failed or skipped) and has a late subband is spawned
   again as version N+1 with all its files (idempotency key ``convert-uvh5:<group id>:vN``); its MS
   ``<group>.vN.ms`` supersedes the earlier one. Duplicates are never converted.
4. *Hand on*: for each spawned group whose task has ended, either the group is marked converted and
   ``new_ms`` emitted in the same transaction (so exactly once), or it is marked failed with the task's
   error.

All state is in Postgres, so a restarted daemon (even after SIGKILL) resumes without losing or
repeating anything. One daemon owns an incoming directory at a time (a session advisory lock); a
second one waits as a standby. SIGTERM and SIGINT end the loop after the current pass (the signal
handling, sd_notify and metrics endpoint are ``absurd.daemon.Daemon``'s).
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import structlog
from pydantic import BaseModel, ConfigDict, Field, field_validator

import absurd
from absurd.daemon import DATABASE_DOWN, Daemon
from absurd.database import connect
from contimg.stream import store
from contimg.stream.metrics import ObservingCollector
from contimg.stream.watch import DirectoryWatcher, SettleTracker, list_subband_files
from science.constants import GROUP_TOLERANCE_S, N_SUBBANDS, SUBBAND_WAIT_TIMEOUT_S, subband_name
from science.convert import IncompletePolicy
from science.grouping import SubbandFile, SubbandGroup, group_files

NEW_MS_EVENT = "new_ms"
CONVERT_TASK = "convert-uvh5"

log = structlog.get_logger(__name__)


class StreamSettings(BaseModel):
    """How the daemon runs (``contimg stream run`` fills this from its options)."""

    model_config = ConfigDict(extra="forbid")

    incoming_dir: Path = Field(description="directory the correlator writes subband files into")
    output_dir: Path = Field(description="where convert-uvh5 writes the Measurement Sets")
    dsn: str | None = Field(
        default=None, description="Postgres DSN; default: ABSURD_DSN or the embedded server"
    )
    subband_timeout_s: float = Field(
        default=SUBBAND_WAIT_TIMEOUT_S, gt=0, description="wait this long after a group's first file"
    )
    policy: IncompletePolicy = Field(
        default=IncompletePolicy.FLAG, description="a timed-out group: 'flag' converts it, 'skip' gives up"
    )
    poll: bool = Field(default=False, description="poll the directory even where inotify works")
    poll_interval_s: float = Field(default=2.0, gt=0, description="full listing period when polling")
    rescan_s: float = Field(default=60.0, gt=0, description="full listing period with inotify (a safety net)")
    settle_s: float = Field(default=1.0, ge=0, description="a file must be unchanged (and as old) this long")
    tick_s: float = Field(default=1.0, gt=0, description="time between passes")
    tolerance_s: float = Field(default=GROUP_TOLERANCE_S, gt=0, description="grouping tolerance")
    standby_s: float = Field(
        default=5.0, gt=0, description="retry period while another daemon owns the directory"
    )
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="serve Prometheus metrics (queue depths, newest products, calibration) on this port",
    )

    @field_validator("incoming_dir", "output_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # Paths are stored, and compared with what inotify reports.
        return value.resolve()

    @field_validator("policy")
    @classmethod
    def _not_wait(cls, value: IncompletePolicy) -> IncompletePolicy:
        if value is IncompletePolicy.WAIT:
            raise ValueError("policy must be 'flag' or 'skip': a timed-out group cannot wait longer")
        return value


class StreamDaemon(Daemon):
    """The streaming converter for one incoming directory. ``run()`` blocks until ``stop()`` or SIGTERM."""

    kind = "stream converter"

    def __init__(self, settings: StreamSettings) -> None:
        # The registry brings the science imports (a few seconds), and the convert task's queue and retries.
        from contimg.tasks.registry import registry

        super().__init__(
            log, {"incoming": str(settings.incoming_dir)}, settings.dsn, metrics_port=settings.metrics_port
        )
        self.settings = settings
        self.registry = registry
        self.metrics.registry.register(ObservingCollector(self.dsn))
        self._tracker = SettleTracker(settings.settle_s)
        self._registered: set[Path] = set()
        self._conn: psycopg.Connection | None = None
        self._watcher: DirectoryWatcher | None = None

    # Lifecycle (run() and stop() are the Daemon's; a stop ends the loop after the current pass) -----

    def _on_stop(self) -> None:
        if self._watcher is not None:
            self._watcher.wake()

    def _start(self) -> None:
        s = self.settings
        if not s.incoming_dir.is_dir():
            raise FileNotFoundError(
                f"incoming directory {s.incoming_dir} does not exist; create it or fix --incoming"
            )
        self._watcher = DirectoryWatcher(s.incoming_dir, s.poll, s.poll_interval_s, s.rescan_s)

    def _ready_status(self) -> str:
        return f"watching {self.settings.incoming_dir}"

    def _started_fields(self) -> dict[str, object]:
        s = self.settings
        assert self._watcher is not None
        return {
            "mode": self._watcher.mode,
            "output": str(s.output_dir),
            "subband_timeout_s": s.subband_timeout_s,
            "policy": s.policy.value,
        }

    def _serve(self) -> None:
        s = self.settings
        assert self._watcher is not None
        while not self._stopping.is_set():
            self._alive()
            try:
                if self._conn is None and not self._take_ownership():
                    self._pause(s.standby_s)
                    continue
                self.tick()
            except DATABASE_DOWN as exc:
                self._log.warning("database unreachable; reconnecting", error=str(exc))
                self._drop_connection()
                self._pause(s.standby_s)
                continue
            self._watcher.wait(s.tick_s)

    def _shutdown(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
        self._release()

    def _take_ownership(self) -> bool:
        conn = connect(self.dsn)
        if not store.try_lock(conn, self.settings.incoming_dir):
            conn.close()
            self._log.info("another stream converter owns this directory; standing by")
            return False
        self._conn = conn
        self._registered = store.registered_paths(conn, self.settings.incoming_dir)
        self._log.info("owning directory", registered_files=len(self._registered))
        return True

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _release(self) -> None:
        if self._conn is not None and not self._conn.closed:
            with contextlib.suppress(psycopg.Error):  # closing the session releases it anyway
                store.unlock(self._conn, self.settings.incoming_dir)
        self._drop_connection()

    # One pass -----------------------------------------------------------------------------------

    def tick(self) -> None:
        """One pass: watch, register, seal, hand on."""
        assert self._conn is not None and self._watcher is not None
        changes = self._watcher.changes()
        paths = list_subband_files(self.settings.incoming_dir) if changes is None else changes
        for path in paths:
            if path not in self._registered:
                self._tracker.offer(path)
        self._register(self._conn)
        self._seal(self._conn)
        self._reconvert_late(self._conn)
        self._hand_on(self._conn)

    def _register(self, conn: psycopg.Connection) -> None:
        for settled in self._tracker.settled():
            if store.register_file(conn, settled):
                self._log.info(
                    "registered subband file", path=str(settled.file.path), size_bytes=settled.size_bytes
                )
            self._registered.add(settled.file.path)

    def _seal(self, conn: psycopg.Connection) -> None:
        s = self.settings
        fresh: list[store.NewFile] = []
        for new in store.new_files(conn, s.incoming_dir):
            match = store.sealed_group_for(
                conn, s.incoming_dir, new.file_time, new.subband, 2 * s.tolerance_s
            )
            if match is None:
                fresh.append(new)
                continue
            store.mark_late(conn, new.path, match.group_id, duplicate=match.has_subband)
            self._log.warning(
                "late subband file: its group was already sealed"
                + ("; recorded, not converted" if match.has_subband else "; the group will be reconverted"),
                path=str(new.path),
                group_id=match.group_id,
                group_status=match.status,
                duplicate=match.has_subband,
            )
        if not fresh:
            return
        by_path = {f.path: f for f in fresh}
        parsed = [SubbandFile(path=f.path, timestamp=f.file_time, subband=f.subband) for f in fresh]
        now = datetime.now(UTC)
        width = timedelta(seconds=2 * s.tolerance_s)
        # Files on disk that have not settled yet (after a restart, the whole backlog) hold a timed-out
        # group they would join, for up to one more timeout: sealed without them, the group would lose
        # them as late files and might be named after the wrong file.
        settling = [
            f.timestamp
            for f, first_seen in self._tracker.pending()
            if (now - first_seen).total_seconds() < s.subband_timeout_s
        ]
        sealed_now: list[datetime] = []
        # Fullest groups first: a stray duplicate near a group sealed in this pass is left for the
        # next pass, which records it against that group instead of converting it on its own.
        for group in sorted(group_files(parsed, s.tolerance_s), key=lambda g: -len(g.files)):
            members = [by_path[p] for p in group.files.values()]
            if not group.is_complete:
                waited = (now - min(m.arrived_at for m in members)).total_seconds()
                if waited < s.subband_timeout_s:
                    continue
                last = max(m.file_time for m in members)
                if any(max(last, t) - min(group.timestamp, t) <= width for t in settling):
                    self._log.debug("timed out; waiting for a file still settling", group_id=group.group_id)
                    continue
            if any(abs(group.timestamp - t) <= width for t in sealed_now):
                continue
            self._seal_group(conn, group, members)
            sealed_now.append(group.timestamp)

    def _seal_group(
        self, conn: psycopg.Connection, group: SubbandGroup, members: list[store.NewFile]
    ) -> None:
        from contimg.tasks.params import ConvertParams

        s = self.settings
        bound = self._log.bind(group_id=group.group_id)
        skip = not group.is_complete and s.policy is IncompletePolicy.SKIP
        row: dict[str, Any] = {
            "group_id": group.group_id,
            "group_time": group.timestamp,
            "min_file_time": min(m.file_time for m in members),
            "max_file_time": max(m.file_time for m in members),
            "incoming_dir": str(s.incoming_dir),
            "n_files": len(members),
            "subbands_missing": group.missing,
            "first_arrival_at": min(m.arrived_at for m in members),
            "last_arrival_at": max(m.arrived_at for m in members),
            "status": "skipped" if skip else "spawned",
            "convert_task_id": None,
            "error": None,
        }
        with conn.transaction():
            if skip:
                row["error"] = (
                    f"timed out after {s.subband_timeout_s:.0f} s without {', '.join(group.missing)}; "
                    "policy skip"
                )
            else:
                params = ConvertParams(
                    input_files=[group.files[i] for i in sorted(group.files)],
                    output_dir=s.output_dir,
                    policy=IncompletePolicy.FLAG,
                )
                client = absurd.Client(conn=conn, registry=self.registry)
                row["convert_task_id"] = client.spawn(
                    CONVERT_TASK, params, idempotency_key=f"{CONVERT_TASK}:{group.group_id}"
                ).task_id
            store.insert_group(conn, **row)
            store.assign_files(conn, group.group_id, [m.path for m in members])
        if skip:
            bound.warning("group timed out incomplete; skipped", missing=group.missing)
        elif group.missing:
            bound.warning(
                "group timed out incomplete; converting with missing subbands flagged",
                missing=group.missing,
                task_id=row["convert_task_id"],
            )
        else:
            bound.info("group complete; conversion spawned", task_id=row["convert_task_id"])

    def _reconvert_late(self, conn: psycopg.Connection) -> None:
        """A group that ended without a subband that has since arrived is converted again, as version N+1.

        The new MS (``<group>.vN.ms``) supersedes the old one in ``ms_index`` and ``new_ms`` is emitted
        for it, so everything downstream runs again on it; light curves leave the superseded one out. A
        group still converting is left alone until it ends.
        """
        from contimg.tasks.params import ConvertParams

        s = self.settings
        for due in store.regroup_candidates(conn, s.incoming_dir):
            version = due.version + 1
            missing = [subband_name(i) for i in range(N_SUBBANDS) if i not in set(due.subbands)]
            params = ConvertParams(
                input_files=due.paths, output_dir=s.output_dir, policy=IncompletePolicy.FLAG, version=version
            )
            with conn.transaction():
                client = absurd.Client(conn=conn, registry=self.registry)
                task_id = client.spawn(
                    CONVERT_TASK, params, idempotency_key=f"{CONVERT_TASK}:{due.group_id}:v{version}"
                ).task_id
                respawned = store.respawn_group(conn, due.group_id, version, task_id, len(due.paths), missing)
            if respawned:
                self._log.warning(
                    "late subband arrived; reconverting the group as a new version",
                    group_id=due.group_id,
                    version=version,
                    task_id=task_id,
                    still_missing=missing,
                )

    def _hand_on(self, conn: psycopg.Connection) -> None:
        from contimg.tasks.params import ConvertResult

        for ended in store.finished_conversions(conn, self.settings.incoming_dir):
            group_id, task_id, state = ended["group_id"], ended["convert_task_id"], ended["state"]
            bound = self._log.bind(group_id=group_id, task_id=task_id)
            if state == "completed":
                ms_path = str(ConvertResult.model_validate(ended["result"]).record.ms_path)
                with conn.transaction():
                    done = store.mark_converted(conn, group_id, ms_path)
                    if done is not None:
                        absurd.emit_event(conn, NEW_MS_EVENT, new_ms_payload(done))
                    else:
                        store.mark_failed(
                            conn,
                            group_id,
                            f"convert-uvh5 task {task_id} completed but {ms_path} is not in ms_index",
                        )
                if done is not None:
                    bound.info("converted; new_ms emitted", ms=ms_path, latency_s=round(done["latency_s"], 1))
                else:
                    bound.error("conversion completed without an ms_index row", ms=ms_path)
                continue
            reason = _task_error(task_id, state, ended["last_error"])
            store.mark_failed(conn, group_id, reason)
            bound.error("conversion failed", reason=reason)


def new_ms_payload(done: dict[str, Any]) -> dict[str, Any]:
    """The ``new_ms`` event's payload, from a row returned by ``stream_store.mark_converted``."""
    return {
        "ms_path": done["ms_path"],
        "group_id": done["group_id"],
        "mid_mjd": done["mid_mjd"],
        "start_mjd": done["start_mjd"],
        "end_mjd": done["end_mjd"],
        "status": done["ms_status"],
        "subbands_missing": list(done["subbands_missing"]),
        "convert_task_id": done["convert_task_id"],
        "latency_s": done["latency_s"],
        "version": done["version"],
    }


def _task_error(task_id: int, state: str | None, last_error: Any) -> str:
    if state is None:
        return f"convert-uvh5 task {task_id} no longer exists (cleaned up before its end was seen)"
    message = last_error.get("message") if isinstance(last_error, dict) else None
    return f"convert-uvh5 task {task_id} {state}: {message or 'no error recorded'}"


# Status ---------------------------------------------------------------------------------------


class StreamStatus(BaseModel):
    """What ``contimg stream status`` shows (and ``--json`` prints)."""

    collecting_groups: int = Field(description="groups still waiting for subbands")
    collecting_files: int
    converting_groups: int = Field(description="spawned, conversion not yet ended")
    pending_groups: int = Field(description="collecting + converting")
    converted_groups: int
    failed_groups: int
    skipped_groups: int
    incomplete_groups: int = Field(description="sealed with missing subbands (flagged or skipped)")
    late_files: int
    duplicate_files: int
    throughput_per_hour: float = Field(description="groups converted in the last hour")
    latency_p50_s: float | None = Field(description="last subband arrival → MS recorded, last 24 h")
    latency_max_s: float | None
    recent_late: list[dict[str, Any]]
    recent_failures: list[dict[str, Any]]


def stream_status(
    conn: psycopg.Connection, limit: int = 10, tolerance_s: float = GROUP_TOLERANCE_S
) -> StreamStatus:
    """Counts, throughput and latency of the streaming converter, from the database alone."""
    raw = store.status_rows(conn, throughput_window_s=3600.0, latency_window_s=86400.0, limit=limit)
    groups = {r["status"]: r for r in raw["groups"]}
    files = {r["status"]: int(r["n"]) for r in raw["files"]}
    new = [
        SubbandFile(path=Path(r["path"]), timestamp=r["file_time"], subband=r["subband"])
        for r in raw["new_files"]
    ]
    collecting = len(group_files(new, tolerance_s)) if new else 0

    def count(status: str) -> int:
        return int(groups[status]["n"]) if status in groups else 0

    recent = raw["recent"] or {}
    return StreamStatus(
        collecting_groups=collecting,
        collecting_files=len(new),
        converting_groups=count("spawned"),
        pending_groups=collecting + count("spawned"),
        converted_groups=count("converted"),
        failed_groups=count("failed"),
        skipped_groups=count("skipped"),
        incomplete_groups=sum(int(r["n_incomplete"]) for r in raw["groups"]),
        late_files=files.get("late", 0) + files.get("duplicate", 0),
        duplicate_files=files.get("duplicate", 0),
        throughput_per_hour=float(recent.get("n_recent") or 0),
        latency_p50_s=recent.get("latency_p50_s"),
        latency_max_s=recent.get("latency_max_s"),
        recent_late=[{**r, "registered_at": r["registered_at"].isoformat()} for r in raw["late_files"]],
        recent_failures=list(raw["failed_groups"]),
    )
