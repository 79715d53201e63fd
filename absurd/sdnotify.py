"""The sd_notify protocol: tell systemd we are ready, alive, stopping, and what we are doing.

Messages are ``KEY=VALUE`` lines sent as one datagram to the Unix socket named by ``NOTIFY_SOCKET``;
a name starting with ``@`` is in the abstract namespace. Outside systemd (no ``NOTIFY_SOCKET``)
every call does nothing. With ``WatchdogSec=``, systemd sets ``WATCHDOG_USEC``; we ping at half
that interval.
"""

from __future__ import annotations

import os
import socket
import threading
import time

import structlog

log = structlog.get_logger("absurd.sdnotify")


class SdNotify:
    """A sender of sd_notify messages; create with ``from_env()``."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self.address = address
        self.watchdog_interval_s = watchdog_usec / 2e6 if watchdog_usec else None
        self._next_ping = 0.0
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None

    @classmethod
    def from_env(cls) -> SdNotify:
        """Read ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID`` (a watchdog meant for
        another process, such as our parent, is not ours to ping)."""
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        mine = pid is None or pid == str(os.getpid())
        watchdog = int(usec) if usec and usec.isdigit() and mine else None
        return cls(os.environ.get("NOTIFY_SOCKET") or None, watchdog)

    @property
    def enabled(self) -> bool:
        """True when a notify socket is configured."""
        return self.address is not None

    def send(self, *lines: str) -> bool:
        """Send one message made of ``lines``; False (and a warning) if it could not be sent."""
        if self.address is None:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    self._sock.setblocking(False)
                self._sock.sendto("\n".join(lines).encode(), target)
                return True
            except OSError as exc:
                log.warning("sd_notify failed", socket=self.address, error=str(exc))
                return False

    def ready(self, status: str | None = None) -> bool:
        """READY=1: start-up is complete."""
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def stopping(self, status: str | None = None) -> bool:
        """STOPPING=1: a graceful shutdown has begun."""
        return self.send("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        """STATUS=...: one line for `systemctl status`."""
        return self.send(f"STATUS={text}")

    def watchdog(self) -> bool:
        """WATCHDOG=1: we are alive."""
        return self.send("WATCHDOG=1")

    def watchdog_due(self, now: float | None = None) -> bool:
        """Ping the watchdog if half its interval has passed since the last ping; True if pinged."""
        if self.watchdog_interval_s is None or self.address is None:
            return False
        now = time.monotonic() if now is None else now
        if now < self._next_ping:
            return False
        self._next_ping = now + self.watchdog_interval_s
        return self.watchdog()

    def close(self) -> None:
        """Close the socket."""
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
