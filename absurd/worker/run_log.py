"""A run's log tail: the lines a task logs while it runs, kept in a bounded buffer and stored in
``absurd.run_logs``.

:func:`captured` wraps one run. Every line logged in its context (structlog or the standard library, at the
process's log level) is appended to the run's buffer, which keeps the newest :data:`MAX_LINES` lines and
:data:`MAX_BYTES` of text. The buffer is written when the run ends, however it ends, and, while the run
keeps logging, at most every :data:`FLUSH_EVERY_S` seconds, so a long run shows its progress. A run that
logs nothing writes nothing. A child process killed at its timeout keeps the lines of its last write.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
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
    """The newest lines of one run, and whether they have changed since they were last written."""

    def __init__(self, task_id: int, run_id: int, db: ConnectionSource) -> None:
        self.task_id = task_id
        self.run_id = run_id
        self._db = db
        self.lines: deque[dict[str, str]] = deque()
        self.dropped = 0
        self._bytes = 0
        self._dirty = False
        self._writing = False
        self._written_at = time.monotonic()

    def add(self, method: str, event: MutableMapping[str, Any]) -> None:
        """Keep one logged line (the log tap's callback), dropping the oldest past the bounds."""
        if self._writing:
            return  # a line logged while the tail is being written (by the driver, say)
        text = render(event)
        at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self.lines.append({"at": at, "level": str(event.get("level", method)), "text": text})
        self._bytes += len(text)
        while len(self.lines) > MAX_LINES or (self._bytes > MAX_BYTES and len(self.lines) > 1):
            self._bytes -= len(self.lines.popleft()["text"])
            self.dropped += 1
        self._dirty = True
        if time.monotonic() - self._written_at >= FLUSH_EVERY_S:
            self.write()

    def write(self) -> None:
        """Store the tail if it changed; a failure is logged (to the process log) and never raised."""
        if not self._dirty or self._writing:
            return
        self._writing = True
        try:
            with self._db.connection() as conn:
                conn.execute(
                    queries.SAVE_RUN_LOG,
                    (self.task_id, self.run_id, json.dumps(list(self.lines)), self.dropped),
                )
            self._dirty = False
        except Exception as exc:
            log.warning("could not store the run's log tail", task_id=self.task_id, error=str(exc))
        finally:
            self._written_at = time.monotonic()
            self._writing = False


@contextmanager
def captured(task_id: int, run_id: int, db: ConnectionSource) -> Iterator[RunLog]:
    """Capture the lines logged in this context as the run's tail, and store them when it ends."""
    run_log = RunLog(task_id, run_id, db)
    token = log_tap.set(run_log.add)
    try:
        yield run_log
    finally:
        log_tap.reset(token)
        run_log.write()
