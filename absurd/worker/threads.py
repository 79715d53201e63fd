"""The worker's task threads: a fixed set of threads, each taking the next run from one shared queue.

Lighter than a ``ThreadPoolExecutor`` on the hot path: no ``Future`` and no work item per run, one
queue put and get. The threads are daemon threads, so a worker that exits after releasing its runs
does not wait for a task that ignores its stop signals.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import structlog

log = structlog.get_logger("absurd.worker")
T = TypeVar("T")


class TaskThreads(Generic[T]):
    """``size`` threads that call ``target(item)`` for each submitted item, started on first use."""

    def __init__(self, size: int, target: Callable[[T], None], name_prefix: str) -> None:
        self._size = size
        self._target = target
        self._name_prefix = name_prefix
        self._queue: queue.SimpleQueue[T | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def submit(self, item: T) -> None:
        """Run ``target(item)`` on the next free thread."""
        if not self._threads:
            self._start()
        self._queue.put(item)

    def _start(self) -> None:
        with self._lock:
            for i in range(len(self._threads), self._size):
                thread = threading.Thread(target=self._loop, name=f"{self._name_prefix}_{i}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self._target(item)
            except BaseException:  # the target records its own outcome; a thread must survive anything
                log.exception("task thread: unexpected error")

    def stop(self) -> None:
        """Drop items not yet started and let every thread end once its current item returns."""
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        for _ in self._threads:
            self._queue.put(None)
