"""``absurd worker --workers N``: N worker processes forked from one that has already started up.

A worker process spends about 0.3 s of CPU importing the engine and its task registry before it claims
anything; N processes started apart pay it N times, at the moment they all start. Forked after it, they
share it, and the pages it filled stay shared (copy on write) as long as nobody writes them.

The parent claims nothing and holds no connection or thread while it forks. It starts the workers,
starts again one that dies after it was ready (with a back-off), passes SIGTERM and SIGINT on to every
worker (a second one ends their grace period, as for a lone worker), and speaks for them to systemd:
each worker sends its sd_notify messages to a socket of the parent, which tells systemd READY once every
worker is ready and pings the watchdog only while every ready worker pings it. A worker that fails
before it was ever ready fails the whole command with its exit code: starting it again would fail again.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import socket
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

import structlog

from absurd.sdnotify import SdNotify

log = structlog.get_logger("absurd.prefork")

# A worker that stayed up this long has its restart delay reset.
STABLE_S = 60.0
EXIT_INTERRUPTED = 130


@dataclass
class Slot:
    """One of the N worker processes: its notify socket outlives the processes that fill the slot."""

    index: int
    sock: socket.socket
    address: str
    pid: int | None = None
    started: float = 0.0
    ready: bool = False
    ever_ready: bool = False
    last_ping: float = 0.0
    delay_s: float = 1.0
    restart_at: float | None = None


def exit_code(status: int) -> int:
    """A wait status as a shell shows it: the exit code, or 128 plus the signal that killed it."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


class Prefork:
    """Run ``target(slot)`` in ``count`` forked processes (slots 0 to count - 1) until SIGTERM or SIGINT;
    ``run`` returns the exit code."""

    def __init__(
        self,
        count: int,
        target: Callable[[int], object],
        max_delay_s: float = 30.0,
        sd: SdNotify | None = None,
    ) -> None:
        if count < 1:
            raise ValueError(f"--workers must be at least 1, not {count}")
        self.count = count
        self.target = target
        self.max_delay_s = max_delay_s
        self.sd = sd or SdNotify.from_env()
        self._signals: list[int] = []
        self._stopping = False
        self._failed: int | None = None
        self._told_ready = False
        self._parent = os.getpid()
        self._log = log.bind(parent_pid=self._parent, workers=count)
        self._slots: list[Slot] = []

    def run(self) -> int:
        """Fork the workers, watch them until they have all stopped, and return the exit code."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self._slots = [self._slot(i) for i in range(self.count)]
            for slot in self._slots:
                self._fork(slot)
            self._log.info("worker processes started", pids=[s.pid for s in self._slots])
            while any(s.pid is not None for s in self._slots) or (
                not self._stopping and any(s.restart_at is not None for s in self._slots)
            ):
                self._step()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            for slot in self._slots:
                slot.sock.close()
            self.sd.close()
        self._log.info("worker processes stopped", exit_code=self._failed or 0)
        return self._failed or 0

    # The parent's loop ------------------------------------------------------------------------------

    def _step(self) -> None:
        readable, _, _ = select.select([s.sock for s in self._slots], [], [], 0.1)
        now = time.monotonic()
        for slot in self._slots:
            if slot.sock in readable:
                self._read_messages(slot, now)
        while self._signals:
            self._stop(self._signals.pop(0))
        self._reap(now)
        for slot in self._slots:
            if slot.restart_at is not None and now >= slot.restart_at and not self._stopping:
                self._fork(slot)
        self._tell_systemd(now)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals.append(signum)  # handled by the loop, not inside select

    def _stop(self, signum: int) -> None:
        if not self._stopping:
            self._log.info("stopping worker processes", signal=signum)
            self.sd.stopping(status="stopping worker processes")
        self._stopping = True
        for slot in self._slots:
            slot.restart_at = None
            if slot.pid is not None:
                with contextlib.suppress(ProcessLookupError):  # it has just exited
                    os.kill(slot.pid, signum)

    def _reap(self, now: float) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = next((s for s in self._slots if s.pid == pid), None)
            if slot is None:
                continue
            code = exit_code(status)
            slot.pid, slot.ready = None, False
            if self._stopping:
                if code not in (0, EXIT_INTERRUPTED) and self._failed is None:
                    self._failed = code
                continue
            if not slot.ever_ready:
                # It never got going: the next one would fail the same way.
                self._log.error("worker process failed to start; stopping", slot=slot.index, exit_code=code)
                self._failed = code or 1
                self._stop(signal.SIGTERM)
                continue
            if now - slot.started >= STABLE_S:
                slot.delay_s = 1.0
            self._log.warning(
                "worker process exited; starting another", slot=slot.index, exit_code=code, in_s=slot.delay_s
            )
            slot.restart_at = now + slot.delay_s
            slot.delay_s = min(slot.delay_s * 2, self.max_delay_s)

    # The workers ------------------------------------------------------------------------------------

    def _slot(self, index: int) -> Slot:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        name = f"absurd-prefork-{os.getpid()}-{index}-{uuid.uuid4().hex[:8]}"
        sock.bind("\0" + name)
        sock.setblocking(False)
        return Slot(index, sock, "@" + name)

    def _fork(self, slot: Slot) -> None:
        slot.restart_at = None
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self._child(slot)  # never returns
        slot.pid, slot.started, slot.ready = pid, time.monotonic(), False

    def _child(self, slot: Slot) -> None:
        code = 1
        try:
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, signal.SIG_DFL)
            # Its own process group: Ctrl-C reaches the parent alone, which passes it on once (a worker
            # that saw it twice would cut its grace period short).
            os.setpgid(0, 0)
            # A parent that is killed outright stops its workers gracefully (PR_SET_PDEATHSIG).
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
            if os.getppid() != self._parent:
                return  # the parent died before the line above
            for other in self._slots:
                other.sock.close()
            os.environ["NOTIFY_SOCKET"] = slot.address
            if self.sd.watchdog_interval_s:
                os.environ["WATCHDOG_USEC"] = str(int(self.sd.watchdog_interval_s * 2e6))
                os.environ["WATCHDOG_PID"] = str(os.getpid())
            self.target(slot.index)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except KeyboardInterrupt:
            code = EXIT_INTERRUPTED
        except BaseException:
            log.exception("worker process failed", slot=slot.index)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    # systemd ----------------------------------------------------------------------------------------

    def _read_messages(self, slot: Slot, now: float) -> None:
        while True:
            try:
                data = slot.sock.recv(4096)
            except BlockingIOError:
                return
            for line in data.decode(errors="replace").splitlines():
                if line == "READY=1":
                    slot.ready = slot.ever_ready = True
                    slot.last_ping = now
                    self._log.info("worker process ready", slot=slot.index, pid=slot.pid)
                elif line == "WATCHDOG=1":
                    slot.last_ping = now

    def _tell_systemd(self, now: float) -> None:
        ready = sum(s.ready for s in self._slots)
        if not self._stopping and ready == self.count and not self._told_ready:
            self._told_ready = True
            self.sd.ready(status=f"{self.count} worker processes ready")
        interval = self.sd.watchdog_interval_s
        if interval is None or self._stopping:
            return
        # The watchdog's whole period is twice the interval at which each worker pings.
        if all(now - s.last_ping < 2 * interval for s in self._slots if s.ready):
            self.sd.watchdog_due(now)
