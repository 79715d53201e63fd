"""The base of the long-running daemons (worker, scheduler, streaming converter).

It owns what they share: SIGTERM/SIGINT ask for a graceful stop (a second one cuts the grace period
short), systemd hears READY, STOPPING and the watchdog through sd_notify, the Prometheus endpoint is
served for the daemon's life, and the daemon's identity is bound to its logger once. A subclass fills
in ``_start`` (register, start threads), ``_serve`` (the main loop, until ``_stopping`` is set) and
``_shutdown`` (drain and let go, also after a failed start), and calls ``_alive()`` from the loop
whose progress matters (the worker's is its supervisor, which keeps the leases), so that the watchdog
sees that loop hang.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from types import FrameType
from typing import TYPE_CHECKING, Any, ClassVar

import psycopg

from absurd.database import resolve_dsn
from absurd.errors import ConfigurationError
from absurd.sdnotify import SdNotify

if TYPE_CHECKING:
    from absurd.metrics import Metrics

# Errors that mean the database, not the daemon's work, is the problem: retried with backoff.
DATABASE_DOWN = (psycopg.OperationalError, psycopg.InterfaceError, ConfigurationError)


def default_daemon_id() -> str:
    """``host:pid:random``: unique among live daemons, readable in ``absurd workers``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Daemon:
    """A long-running process. ``run()`` blocks until ``stop()``, SIGTERM or SIGINT."""

    kind: ClassVar[str] = "daemon"
    stopping_status: ClassVar[str] = "stopping"

    def __init__(
        self,
        log: Any,
        identity: Mapping[str, object],
        dsn: str | None = None,
        metrics_port: int | None = None,
        grace_s: float = 0.0,
    ) -> None:
        self.dsn = resolve_dsn(dsn)
        self.metrics_port = metrics_port
        self.grace_s = grace_s
        self.identity = dict(identity)
        self._log = log.bind(**identity)
        self._stopping = threading.Event()
        self._hurry = threading.Event()
        self.sd = SdNotify.from_env()

    @functools.cached_property
    def metrics(self) -> Metrics:
        """The daemon's Prometheus metrics, made on first use: prometheus_client is imported only by a daemon
        that counts something or serves ``metrics_port``."""
        from absurd.metrics import Metrics

        return Metrics()

    # To fill in ------------------------------------------------------------------------------------

    def _start(self) -> None:
        """Get ready to serve (register, open connections, start threads); may raise to refuse."""

    def _serve(self) -> None:
        """The main loop: return once ``_stopping`` is set."""
        while not self._pause(60.0):
            pass

    def _shutdown(self) -> None:
        """Let go of what ``_start`` took; runs after ``_serve`` returns or ``_start`` fails."""

    def _on_stop(self) -> None:
        """Wake the main loop if it may be waiting on something other than ``_stopping``."""

    def _ready_status(self) -> str:
        """The STATUS line sent with READY=1."""
        return "running"

    def _started_fields(self) -> dict[str, object]:
        """Fields of the 'started' log line."""
        return {}

    def _stopped_fields(self) -> dict[str, object]:
        """Fields of the 'stopped' log line."""
        return {}

    # Lifecycle -------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask for a graceful stop: the loop ends and work in hand gets the grace period."""
        self._stopping.set()
        self._on_stop()

    def run(self) -> None:
        """Run until stopped. Installs SIGTERM/SIGINT handlers when called from the main thread."""
        previous, signal_pipe = self._handle_signals()
        if self.metrics_port is not None:
            self.metrics.serve(self.metrics_port, self.dsn)
        try:
            self._start()
            self._log.info(f"{self.kind} started", **self._started_fields())
            self.sd.ready(status=self._ready_status())
            self._serve()
        finally:
            self.sd.stopping(status=self.stopping_status)
            try:
                self._shutdown()
            finally:
                if "metrics" in self.__dict__:  # made (cached_property)
                    self.metrics.close()
                self.sd.close()
                for signum, handler in previous.items():
                    signal.signal(signum, handler)
                if signal_pipe is not None:
                    os.close(signal_pipe)  # the signal thread reads the end of the pipe and returns
                self._log.info(f"{self.kind} stopped", **self._stopped_fields())

    def _handle_signals(self) -> tuple[dict[int, Any], int | None]:
        """Install the SIGTERM/SIGINT handlers; return the handlers they replace and the write end of the
        pipe that carries the signals to the thread acting on them.

        The handler itself only writes the signal's number to that pipe. Python runs a handler in the main
        thread between two bytecodes, and the main loop waits on Events: a handler that set one could run
        while the main thread held that Event's lock (Event.wait takes it on the way in and out), and block
        on it for ever. The daemon then neither stopped nor heard a second signal, until systemd's SIGKILL.
        """
        if threading.current_thread() is not threading.main_thread():
            return {}, None  # signals reach the main thread only; whoever runs us in a thread calls stop()
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)

        def on_signal(signum: int, frame: FrameType | None) -> None:
            # Full of signals not yet acted on, or closed because the daemon has stopped: nothing to add.
            with contextlib.suppress(OSError):
                os.write(write_end, bytes([signum]))

        threading.Thread(
            target=self._act_on_signals, args=(read_end,), name=f"{self.kind}-signals", daemon=True
        ).start()
        previous: dict[int, Any] = {}
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.getsignal(signum)
            signal.signal(signum, on_signal)
        return previous, write_end

    def _act_on_signals(self, read_end: int) -> None:
        """The first stop signal asks for a graceful stop, a later one also ends the grace period."""
        try:
            while received := os.read(read_end, 64):
                for signum in received:
                    if self._stopping.is_set():
                        self._hurry.set()
                        self._log.warning("second stop signal: ending the grace period", signal=signum)
                    self.stop()
        finally:
            os.close(read_end)

    # Helpers for subclasses ------------------------------------------------------------------------

    def _alive(self) -> None:
        """Tell the systemd watchdog the daemon is alive (at most every half interval)."""
        self.sd.watchdog_due()

    def _pause(self, seconds: float) -> bool:
        """Wait up to ``seconds`` or until stopped, pinging the watchdog meanwhile; True if stopped."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self._alive()
            interval = self.sd.watchdog_interval_s
            if self._stopping.wait(min(left, interval) if interval else left):
                return True
        return self._stopping.is_set()

    def _retry(self, action: Callable[[], object], what: str) -> bool:
        """Run ``action`` until it succeeds or the daemon is stopped, backing off from 0.5 s to 10 s
        while the database is unavailable; True if it ran."""
        delay = 0.5
        while not self._stopping.is_set():
            try:
                action()
                return True
            except DATABASE_DOWN as exc:
                self._log.warning(f"cannot {what}; retrying", error=str(exc), retry_in_s=delay)
                self._pause(delay)
                delay = min(delay * 2, 10.0)
        return False

    def _drain(self, busy: Callable[[], bool]) -> bool:
        """Wait, for at most the grace period, until ``busy()`` is false; True if it is. A second stop
        signal ends the wait early."""
        end = time.monotonic() + self.grace_s
        while busy():
            if time.monotonic() >= end or self._hurry.is_set():
                return False
            self._alive()
            time.sleep(0.05)
        return True
