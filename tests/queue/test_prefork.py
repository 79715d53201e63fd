"""``absurd worker --workers N`` (absurd/worker/prefork.py): N worker processes forked from one, which
restarts a worker that dies, stops them together and speaks for them to systemd."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from absurd.client import Client
from tests.support.processes import start_worker, stop_worker, wait_until


def _live_workers(client: Client) -> list[int]:
    rows = client.conn.execute("SELECT pid FROM absurd.workers WHERE stopped_at IS NULL ORDER BY pid")
    return [int(r[0]) for r in rows.fetchall()]


def _live(client: Client, count: int, besides: int | None = None) -> list[int]:
    """The pids of the live workers (``besides`` left out) once there are ``count`` of them, else none."""
    live = [p for p in _live_workers(client) if p != besides]
    return live if len(live) == count else []


def _parent_of(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1])


def test_forked_workers_share_the_queue_and_stop_together(dsn: str, client: Client) -> None:
    parent = start_worker(dsn, "--workers", "2", "--concurrency", "2", "--shutdown-grace-s", "5")
    try:
        pids = wait_until(lambda: _live(client, 2), what="two workers")
        # Two workers, each registered under its own pid, both forked by the command's process.
        assert parent.pid not in pids
        assert [_parent_of(pid) for pid in pids] == [parent.pid, parent.pid]
        # Twelve tasks of 0.5 s on 2 + 2 slots: one worker alone would take 3 s, so both take some unless
        # one of them, though registered and listening, stalls for more than 2.5 s.
        tasks = [client.spawn("sleep", {"seconds": 0.5}).task_id for _ in range(12)]
        wait_until(
            lambda: all(client.get_task(t)["state"] == "completed" for t in tasks), what="the tasks to finish"
        )
        ran_on = client.conn.execute(
            "SELECT count(DISTINCT w.pid) FROM absurd.runs r JOIN absurd.workers w ON w.id = r.worker_id "
            "WHERE r.task_id = ANY(%s)",
            (tasks,),
        ).fetchone()
        assert ran_on == (2,)
    finally:
        code = stop_worker(parent)
    assert code == 0
    # SIGTERM to the parent stopped both workers the graceful way: each marked itself stopped.
    assert _live_workers(client) == []


def test_a_worker_that_dies_is_replaced(dsn: str, client: Client) -> None:
    parent = start_worker(dsn, "--workers", "2", "--lease-s", "2")
    try:
        first = wait_until(lambda: _live(client, 2), what="two workers")
        os.kill(first[0], signal.SIGKILL)
        # A new worker takes the dead one's place (after a 1 s back-off); the other one was left alone.
        replaced = wait_until(lambda: _live(client, 2, besides=first[0]), what="a new worker process")
        assert first[1] in replaced
        assert _parent_of(next(p for p in replaced if p != first[1])) == parent.pid
        assert parent.poll() is None
        task = client.spawn("sleep", {"seconds": 0.1})
        wait_until(
            lambda: client.get_task(task.task_id)["state"] == "completed", what="a task after the restart"
        )
    finally:
        code = stop_worker(parent)
    assert code == 0


def test_a_worker_that_cannot_start_fails_the_command(dsn: str, client: Client) -> None:
    # The second worker's metrics port (the given one + 1) is taken: it fails before it is ready.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        parent = start_worker(dsn, "--workers", "2", "--metrics-port", str(port - 1))
        try:
            code = parent.wait(60)
        finally:
            if parent.poll() is None:
                stop_worker(parent)
    assert code != 0
    assert _live_workers(client) == []


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET."""
    name = f"absurd-test-notify-{uuid.uuid4().hex[:8]}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(30)
    yield sock, "@" + name
    sock.close()


def _messages_until(sock: socket.socket, wanted: str, deadline_s: float = 60.0) -> list[str]:
    seen: list[str] = []
    end = time.monotonic() + deadline_s
    while wanted not in seen:
        assert time.monotonic() < end, f"no {wanted} among {seen}"
        seen.extend(sock.recv(4096).decode().splitlines())
    return seen


def test_the_parent_speaks_to_systemd_for_its_workers(
    dsn: str, client: Client, notify_socket: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, address = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    parent: subprocess.Popen[bytes] = start_worker(dsn, "--workers", "2")
    try:
        seen = _messages_until(sock, "READY=1")
        # READY comes once, from the parent, when both workers are ready: each registered first.
        assert "STATUS=2 worker processes ready" in seen
        assert len(_live_workers(client)) == 2
        # The watchdog is pinged (every 0.5 s) while both workers ping the parent.
        _messages_until(sock, "WATCHDOG=1")
        _messages_until(sock, "WATCHDOG=1")
    finally:
        parent.send_signal(signal.SIGTERM)
        stopping = _messages_until(sock, "STOPPING=1")
        code = parent.wait(60)
    assert "READY=1" not in stopping
    assert code == 0
