"""A run's log tail: the lines a task logs while it runs, kept in a bounded buffer and stored in
``absurd.run_logs``.

:func:`captured` wraps one run. Every line logged in its context (structlog's at the process's log level,
the standard library's at its root logger's) is appended to the run's buffer, which keeps the newest
:data:`MAX_LINES` lines and :data:`MAX_BYTES` of text. The buffer is written when the run ends, however it
ends, and while it runs by a thread of the process that writes every buffer with new lines once they are
:data:`FLUSH_EVERY_S` seconds old, so a long run shows its progress even while it is silent. A run that
logs nothing writes nothing, and a process whose runs never log starts no thread. Past the run's
timeout its new lines are written at once (within a second): a child process killed at its timeout, 3 s
after the pool's SIGTERM (which children ignore), keeps what it logged until then.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import MutableMapping
from contextvars import Token
from datetime import UTC, datetime
from typing import Any

import structlog

from absurd import queries
from absurd.context import ConnectionSource
from absurd.logging import log_tap

MAX_LINES = 200
MAX_BYTES = 64 * 1024
MAX_LINE_CHARS = 4000
FLUSH_EVERY_S = 10.0
# Bound once per run already, or the time and level the tail stores separately.
_LEFT_OUT = frozenset({"event", "level", "timestamp", "task_id", "run_id", "worker_id", "task", "exception"})

log = structlog.get_logger("absurd.worker")


def render(event: MutableMapping[str, Any]) -> str:
    """One line of the tail: the message, its own key=value pairs, then any traceback."""
    parts = [str(event.get("event", ""))]
    parts += [f"{k}={v}" for k, v in event.items() if k not in _LEFT_OUT]
    text = " ".join(parts)
    if event.get("exception"):
        text += "\n" + str(event["exception"])
    text = text.replace("\x00", "\ufffd")  # Postgres jsonb cannot hold U+0000
    return text if len(text) <= MAX_LINE_CHARS else text[: MAX_LINE_CHARS - 1] + "…"


class RunLog:
    """The newest lines of one run, and whether they have changed since they were last written.

    Used as a context manager around the run (see :func:`captured`); cheap to enter and leave, since most
    runs log nothing: the buffer is made at the first line.
    """

    __slots__ = (
        "_bytes", "_db", "_dirty", "_lock", "_token", "_write_lock", "_written_at", "deadline", "dropped",
        "lines", "run_id", "task_id",
    )  # fmt: skip

    def __init__(
        self, task_id: int, run_id: int, db: ConnectionSource, deadline: float | None = None
    ) -> None:
        self.task_id = task_id
        self.run_id = run_id
        self._db = db
        # time.monotonic() at the run's timeout, if it has one.
        self.deadline = deadline
        self.lines: deque[dict[str, str]] | None = None
        self.dropped = 0
        self._bytes = 0
        self._dirty = False
        self._written_at = 0.0
        self._token: Token[Any] | None = None
        self._lock: threading.Lock | None = None
        self._write_lock: threading.Lock | None = None

    def __enter__(self) -> RunLog:
        self._token = log_tap.set(self.add)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            log_tap.reset(self._token)
            self._token = None
        if self.lines is not None:
            _forget(self)
            self.write()

    def add(self, method: str, event: MutableMapping[str, Any]) -> None:
        """Keep one logged line (the log tap's callback), dropping the oldest past the bounds."""
        text = render(event)
        line = {
            "at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": str(event.get("level", method)),
            "text": text,
        }
        if self.lines is None:  # the first line: from here on the flusher may read the buffer
            self._lock, self._write_lock = threading.Lock(), threading.Lock()
            self.lines = deque()
            self._written_at = time.monotonic()
            _watch(self)
        assert self._lock is not None
        with self._lock:
            self.lines.append(line)
            self._bytes += len(text)
            while len(self.lines) > MAX_LINES or (self._bytes > MAX_BYTES and len(self.lines) > 1):
                self._bytes -= len(self.lines.popleft()["text"])
                self.dropped += 1
            self._dirty = True

    def due(self, now: float) -> bool:
        """Whether it has lines not yet written, and its last write is FLUSH_EVERY_S old or its run is past
        its timeout (and may be killed at any moment)."""
        if not self._dirty:
            return False
        return now - self._written_at >= FLUSH_EVERY_S or (self.deadline is not None and now >= self.deadline)

    def write(self) -> None:
        """Store the tail if it changed; a failure is logged (to the process log) and never raised."""
        if self._lock is None or self._write_lock is None or self.lines is None:
            return
        # One writer at a time, so that an older copy never lands after a newer one.
        with self._write_lock:
            with self._lock:
                if not self._dirty:
                    return
                lines, dropped = json.dumps(list(self.lines)), self.dropped
                self._dirty = False
            try:
                with self._db.connection() as conn:
                    conn.execute(queries.SAVE_RUN_LOG, (self.task_id, self.run_id, lines, dropped))
            except Exception as exc:
                self._dirty = True
                log.warning("could not store the run's log tail", task_id=self.task_id, error=str(exc))
            finally:
                self._written_at = time.monotonic()


def captured(task_id: int, run_id: int, db: ConnectionSource, timeout_s: float | None = None) -> RunLog:
    """Capture the lines logged in this context as the run's tail, and store them when it ends:
    ``with captured(task_id, run_id, db, timeout_s) as tail: ...``."""
    return RunLog(task_id, run_id, db, time.monotonic() + timeout_s if timeout_s else None)


# The flusher: one thread per process, started by the first line any run logs -----------------------

_live: set[RunLog] = set()
_live_lock = threading.Lock()
_flusher: threading.Thread | None = None


def _watch(run_log: RunLog) -> None:
    global _flusher
    with _live_lock:
        _live.add(run_log)
        if _flusher is None or not _flusher.is_alive():
            _flusher = threading.Thread(target=_flush_forever, name="absurd-run-log", daemon=True)
            _flusher.start()


def _forget(run_log: RunLog) -> None:
    with _live_lock:
        _live.discard(run_log)


def _flush_forever() -> None:
    while True:
        time.sleep(_pause(time.monotonic()))
        now = time.monotonic()
        with _live_lock:
            due = [r for r in _live if r.due(now)]
        for run_log in due:
            run_log.write()


def _pause(now: float) -> float:
    """Until the next look: a quarter of FLUSH_EVERY_S, at most a second, or less to wake at a deadline."""
    pause = min(FLUSH_EVERY_S / 4, 1.0)
    with _live_lock:
        ahead = [r.deadline - now for r in _live if r.deadline is not None and r.deadline > now]
    return min([pause, *ahead])
