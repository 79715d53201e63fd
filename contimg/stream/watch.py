"""Watching the incoming directory: which subband files are new, and which have stopped growing.

The watcher only says which names to look at: inotify (through ``watchdog``) reports them as they
change, and a periodic full listing catches anything an event missed. Polling is the same listing,
more often. Either way a file is handed on only once it has *settled*: the same size and mtime on two
looks at least ``settle_s`` apart, and an mtime at least ``settle_s`` old, so a file the correlator is
still writing is never read.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from science.grouping import SubbandFile, parse_subband_path

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SettledFile:
    """A subband file that has stopped changing, with what its name and its stat say."""

    file: SubbandFile
    size_bytes: int
    arrived_at: datetime  # its last write, or the first look if the clock disagrees
    first_seen_at: datetime


@dataclass
class _Look:
    size: int
    mtime: float
    unchanged_since: float  # monotonic time of the first look that saw this size and mtime
    first_seen_at: datetime


class SettleTracker:
    """Files seen but not yet settled; ``settled()`` hands each one on once, when it stops changing."""

    def __init__(self, settle_s: float) -> None:
        self.settle_s = settle_s
        self._looks: dict[Path, _Look] = {}

    def __len__(self) -> int:
        return len(self._looks)

    def offer(self, path: Path) -> None:
        """Start watching ``path`` (a repeat offer changes nothing)."""
        if path not in self._looks:
            self._looks[path] = _Look(-1, -1.0, time.monotonic(), datetime.now(UTC))

    def pending(self) -> list[tuple[SubbandFile, datetime]]:
        """Files seen on disk but not yet settled: what each name says, and when it was first seen."""
        found = []
        for path, look in self._looks.items():
            parsed = parse_subband_path(path)
            if parsed is not None:
                found.append((parsed, look.first_seen_at))
        return found

    def settled(self) -> list[SettledFile]:
        """Look at every watched file again; return (and forget) the ones that have settled."""
        now = time.monotonic()
        done: list[SettledFile] = []
        for path, look in list(self._looks.items()):
            try:
                st = path.stat()
            except FileNotFoundError:
                del self._looks[path]  # moved away or deleted before it settled
                continue
            if (st.st_size, st.st_mtime) != (look.size, look.mtime):
                look.size, look.mtime, look.unchanged_since = st.st_size, st.st_mtime, now
                continue
            if now - look.unchanged_since < self.settle_s or time.time() - st.st_mtime < self.settle_s:
                continue
            parsed = parse_subband_path(path)
            del self._looks[path]
            if parsed is None:
                continue
            written = datetime.fromtimestamp(st.st_mtime, UTC)
            done.append(
                SettledFile(
                    file=parsed,
                    size_bytes=st.st_size,
                    arrived_at=min(written, look.first_seen_at),
                    first_seen_at=look.first_seen_at,
                )
            )
        return done


def list_subband_files(directory: Path) -> list[Path]:
    """The subband-file names in ``directory`` (files only, hidden and partial names skipped)."""
    found = []
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.is_file() and parse_subband_path(Path(entry.path)) is not None:
                found.append(Path(entry.path))
    return found


class DirectoryWatcher:
    """Names in one directory that may be new: ``changes()`` returns them, or None for "list it all".

    With inotify, events name the files and a full listing runs every ``rescan_s``; with polling
    (``poll=True``, or when inotify is unavailable) a full listing runs every ``poll_interval_s``.
    ``wait`` returns early when an event arrives, so the caller's loop can sleep between looks.
    """

    def __init__(self, directory: Path, poll: bool, poll_interval_s: float, rescan_s: float) -> None:
        self.directory = directory
        self._changed: set[Path] = set()
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._observer: Any = None
        self._last_full = -float("inf")
        self.mode = "poll"
        self.full_every_s = poll_interval_s
        if not poll:
            self._observer = self._start_inotify()
            if self._observer is not None:
                self.mode = "inotify"
                self.full_every_s = rescan_s

    def _start_inotify(self) -> Any:
        try:
            from watchdog.events import FileSystemEvent, FileSystemEventHandler
            from watchdog.observers.inotify import InotifyObserver
        except ImportError:
            log.info("watchdog with inotify is not available; polling", directory=str(self.directory))
            return None

        watcher = self

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                # A file copied or renamed into place shows up as created, modified, closed or moved.
                for raw in (event.src_path, getattr(event, "dest_path", "")):
                    if raw:
                        watcher._note(Path(os.fsdecode(raw)))

        observer = InotifyObserver()
        try:
            observer.schedule(_Handler(), str(self.directory), recursive=False)
            observer.start()
        except OSError as exc:  # e.g. the inotify watch limit, or a file system without inotify
            log.warning("inotify failed; polling", directory=str(self.directory), error=str(exc))
            return None
        return observer

    def _note(self, path: Path) -> None:
        if path.parent == self.directory and parse_subband_path(path) is not None:
            with self._lock:
                self._changed.add(path)
            self._event.set()

    def wait(self, timeout_s: float) -> None:
        """Sleep up to ``timeout_s``, waking early when inotify reports a change."""
        self._event.wait(timeout_s)
        self._event.clear()

    def changes(self) -> list[Path] | None:
        """Paths reported since the last call, or None when a full listing is due."""
        with self._lock:
            changed, self._changed = self._changed, set()
        now = time.monotonic()
        if now - self._last_full >= self.full_every_s:
            self._last_full = now
            return None
        return sorted(changed)

    def wake(self) -> None:
        """Wake a ``wait`` in progress (used on shutdown)."""
        self._event.set()

    def close(self) -> None:
        """Stop the inotify thread, if any."""
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
