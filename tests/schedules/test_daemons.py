"""The daemons as separate processes: exactly-once fires and events with two schedulers, sd_notify,
graceful SIGTERM, and Prometheus metrics."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from absurd.client import Client, emit_event
from absurd.scheduler import Scheduler, SchedulerSettings
from tests.schedules.conftest import Clock, count
from tests.support.processes import REPO, stop_worker, wait_until


def daemon(
    *args: str, notify: str | None = None, watchdog_usec: int | None = None
) -> subprocess.Popen[bytes]:
    """Start ``python -m absurd ARGS`` with an optional NOTIFY_SOCKET and watchdog."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "ABSURD_LOG_LEVEL": "WARNING"}
    for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        env.pop(key, None)
    if notify:
        env["NOTIFY_SOCKET"] = notify
    if watchdog_usec:
        env["WATCHDOG_USEC"] = str(watchdog_usec)
    return subprocess.Popen([sys.executable, "-m", "absurd", *args], cwd=REPO, env=env)


@contextmanager
def notify_socket(abstract: bool, tmp_path: Path) -> Iterator[tuple[str, Callable[[float], list[str]]]]:
    """A datagram socket playing systemd; yields its NOTIFY_SOCKET value and a reader of messages."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if abstract:
        name = f"@absurd-test-{uuid.uuid4().hex}"
        sock.bind("\0" + name[1:])
    else:
        name = f"/tmp/absurd-notify-{uuid.uuid4().hex[:8]}.sock"
        sock.bind(name)
    received: list[str] = []

    def read(timeout: float) -> list[str]:
        sock.settimeout(max(timeout, 0.001))
        try:
            while True:
                received.extend(sock.recv(4096).decode().splitlines())
        except (TimeoutError, BlockingIOError):
            pass
        return received

    try:
        yield name, read
    finally:
        sock.close()
        if not abstract:
            Path(name).unlink(missing_ok=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sync_file(dsn: str, path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "absurd", "schedule", "sync", str(path), "--dsn", dsn],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def both_up(dsn: str) -> None:
    """Wait for both schedulers to register: a SIGTERM before their handlers exist would kill them."""
    wait_until(lambda: count(dsn, "SELECT count(*) FROM absurd.schedulers") == 2, 60, what="two schedulers")


EVERY_SECOND = """
schedules:
  - name: every-second
    trigger: {every: 1s}
    workflow:
      tasks: [{name: a, type: noop}]
"""


def test_two_scheduler_processes_fire_each_second_exactly_once(
    dsn: str, write: Callable[[str, str], Path]
) -> None:
    sync_file(dsn, write("s.yaml", EVERY_SECOND))
    procs = [daemon("scheduler", "--dsn", dsn, "--tick-s", "0.02") for _ in range(2)]
    try:
        wait_until(lambda: count(dsn, "SELECT count(*) FROM absurd.schedule_fires") >= 6, 60, what="6 fires")
        both_up(dsn)
    finally:
        for proc in procs:
            assert stop_worker(proc) == 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        times = [
            r[0] for r in conn.execute("SELECT fire_time FROM absurd.schedule_fires ORDER BY 1").fetchall()
        ]
        makers = conn.execute("SELECT count(DISTINCT scheduler_id) FROM absurd.schedule_fires").fetchone()
    # One fire per second, none twice, none missing; and a workflow for each.
    assert all(b - a == timedelta(seconds=1) for a, b in itertools.pairwise(times)), times
    assert count(dsn, "SELECT count(*) FROM absurd.workflows WHERE name = 'every-second'") == len(times)
    assert count(dsn, "SELECT count(*) FROM absurd.tasks") == len(times)
    assert makers is not None and makers[0] >= 1


def test_two_schedulers_racing_over_many_ticks_fire_each_time_once(
    dsn: str, sync_text: Callable[..., None]
) -> None:
    start = datetime(2026, 6, 1, tzinfo=UTC)
    sync_text(
        """
        schedules:
          - name: five-minutes
            trigger: {cron: "*/5 * * * *"}
            workflow:
              tasks: [{name: a, type: noop}]
        """,
        now=start,
    )
    ticks = [start + timedelta(minutes=m) for m in range(1, 301)]
    barrier = threading.Barrier(2)

    def run() -> None:
        clock = Clock(start)
        scheduler = Scheduler(SchedulerSettings(), dsn, clock=clock)
        for now in ticks:
            clock.now = now
            barrier.wait()  # both tick the same moment, so they race for every fire
            scheduler.tick()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert count(dsn, "SELECT count(*) FROM absurd.schedule_fires") == 60
    assert count(dsn, "SELECT count(DISTINCT fire_time) FROM absurd.schedule_fires") == 60
    assert count(dsn, "SELECT count(*) FROM absurd.workflows") == 60


EVENT_SCHEDULE = """
schedules:
  - name: on-new-ms
    trigger: {event: new_ms}
    workflow:
      params: {out: /data/images}
      tasks:
        - name: image
          type: echo
          params: {ms_path: "${event.ms_path}", output_dir: "${params.out}"}
"""


def test_each_event_starts_its_workflow_once_with_two_schedulers(
    dsn: str, write: Callable[[str, str], Path]
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        emit_event(conn, "new_ms", {"ms_path": "/before/the/schedule.ms"})
    sync_file(dsn, write("events.yaml", EVENT_SCHEDULE))
    procs = [daemon("scheduler", "--dsn", dsn, "--tick-s", "0.02") for _ in range(2)]
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for i in range(0, 20, 2):
                with conn.transaction():  # two emissions of one name in one transaction are two events
                    emit_event(conn, "new_ms", {"ms_path": f"/data/ms/{i}.ms"})
                    emit_event(conn, "new_ms", {"ms_path": f"/data/ms/{i + 1}.ms"})
                emit_event(conn, "other_event", {"ms_path": "/not/for/us.ms"})
        wait_until(lambda: count(dsn, "SELECT count(*) FROM absurd.workflows") >= 20, 60, what="20 workflows")
        both_up(dsn)
    finally:
        for proc in procs:
            assert stop_worker(proc) == 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        paths = [r[0] for r in conn.execute("SELECT params->>'ms_path' FROM absurd.tasks").fetchall()]
        dirs = {r[0] for r in conn.execute("SELECT params->>'output_dir' FROM absurd.tasks").fetchall()}
    assert sorted(paths) == sorted(f"/data/ms/{i}.ms" for i in range(20))
    assert dirs == {"/data/images"}
    assert count(dsn, "SELECT count(*) FROM absurd.schedule_fires WHERE kind = 'event'") == 20
    assert count(dsn, "SELECT count(*) FROM absurd.event_log WHERE name = 'new_ms'") == 21


def test_scheduler_notifies_systemd_and_stops_on_sigterm(dsn: str, tmp_path: Path) -> None:
    with notify_socket(abstract=True, tmp_path=tmp_path) as (address, read):
        proc = daemon("scheduler", "--dsn", dsn, "--tick-s", "0.05", notify=address, watchdog_usec=200_000)
        try:
            wait_until(lambda: read(0.1).count("WATCHDOG=1") >= 3, 30, what="three watchdog pings")
            assert read(0.001)[0] == "READY=1"
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        messages = read(0.2)
    assert "STOPPING=1" in messages
    assert messages.index("READY=1") < messages.index("WATCHDOG=1") < messages.index("STOPPING=1")
    assert count(dsn, "SELECT count(*) FROM absurd.schedulers WHERE stopped_at IS NOT NULL") == 1


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())


def metric(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.timeout(120)
def test_worker_notifies_serves_metrics_and_drains_on_sigterm(dsn: str, tmp_path: Path) -> None:
    port = free_port()
    with Client(dsn) as client, notify_socket(abstract=False, tmp_path=tmp_path) as (address, read):
        proc = daemon(
            "worker", "--dsn", dsn, "--metrics-port", str(port), "--poll-s", "0.1",
            notify=address, watchdog_usec=300_000,
        )  # fmt: skip
        try:
            wait_until(lambda: "READY=1" in read(0.1), 30, what="READY=1")
            before = scrape(port)
            assert metric(before, 'absurd_tasks_completed_total{task="echo"}') == 0
            done = [client.spawn("echo", {"i": i}).task_id for i in range(3)]
            failed = client.spawn("fail", {"fail_attempts": 5}, max_attempts=1).task_id
            for task_id in done:
                client.wait_result(task_id, 30)
            wait_until(lambda: client.get_task(failed)["state"] == "failed", 30)
            after = scrape(port)
            assert metric(after, 'absurd_tasks_claimed_total{task="echo"}') == 3
            assert metric(after, 'absurd_tasks_completed_total{task="echo"}') == 3
            assert metric(after, 'absurd_tasks_failed_total{task="fail"}') == 1
            assert metric(after, 'absurd_task_duration_seconds_count{outcome="completed",task="echo"}') == 3
            assert metric(after, 'absurd_queue_depth{queue="default",state="pending"}') == 0
            assert "absurd_lease_losses" in after and metric(after, "absurd_database_up") == 1
            wait_until(lambda: read(0.1).count("WATCHDOG=1") >= 2, 30, what="watchdog pings")
            # A task that is running when SIGTERM comes is finished, not abandoned.
            slow = client.spawn("sleep", {"seconds": 1.5}).task_id
            wait_until(lambda: client.get_task(slow)["state"] == "running", 30)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
        assert client.get_task(slow)["state"] == "completed"
        assert [r["state"] for r in client.runs(slow)] == ["completed"]
        assert "STOPPING=1" in read(0.2)


def test_a_scheduler_prunes_the_event_log_from_its_start(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(3):
            emit_event(conn, "new_ms", {"i": i})
        conn.execute("UPDATE absurd.event_log SET emitted_at = now() - interval '8 days' WHERE id < 3")
    scheduler = Scheduler(SchedulerSettings(tick_s=0.05), dsn)
    thread = threading.Thread(target=scheduler.run)
    thread.start()
    try:
        wait_until(lambda: count(dsn, "SELECT count(*) FROM absurd.event_log") == 1, 30, what="the prune")
    finally:
        scheduler.stop()
        thread.join(30)
    assert not thread.is_alive()


# A daemon with nothing to do but a drain of ARGV[1] seconds, allowed ARGV[2] seconds of grace.
SLEEPER = """
import sys, time
import structlog
from absurd.daemon import Daemon
from absurd.logging import configure_logging

configure_logging("WARNING")  # log lines to stderr: stdout carries the drain's outcome

class Sleeper(Daemon):
    kind = "sleeper"

    def _shutdown(self):
        end = time.monotonic() + float(sys.argv[1])
        print("drained" if self._drain(lambda: time.monotonic() < end) else "cut short", flush=True)

grace_s = float(sys.argv[2])
Sleeper(structlog.get_logger("sleeper"), {"daemon_id": "z"}, "postgresql:///unused", grace_s=grace_s).run()
"""


def sleeper(drain_s: float, grace_s: float, notify: str) -> subprocess.Popen[str]:
    """Start the SLEEPER daemon under a NOTIFY_SOCKET with a 200 ms watchdog."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "NOTIFY_SOCKET": notify, "WATCHDOG_USEC": "200000"}
    env.pop("WATCHDOG_PID", None)
    return subprocess.Popen(
        [sys.executable, "-c", SLEEPER, str(drain_s), str(grace_s)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_a_daemon_notifies_systemd_and_drains_within_its_grace_on_sigterm(tmp_path: Path) -> None:
    with notify_socket(abstract=True, tmp_path=tmp_path) as (address, read):
        proc = sleeper(drain_s=1.0, grace_s=30.0, notify=address)
        try:
            wait_until(lambda: "READY=1" in read(0.1), 30, what="READY=1")
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        messages = read(0.2)
    assert (proc.returncode, out.strip()) == (0, "drained")
    # The watchdog is kept alive through the drain, which outlasts its interval.
    assert messages.index("READY=1") < messages.index("STOPPING=1") < len(messages) - 1
    assert messages[-1] == "WATCHDOG=1"


def test_a_second_signal_cuts_the_grace_period_short(tmp_path: Path) -> None:
    with notify_socket(abstract=True, tmp_path=tmp_path) as (address, read):
        proc = sleeper(drain_s=600.0, grace_s=600.0, notify=address)
        try:
            wait_until(lambda: "READY=1" in read(0.1), 30, what="READY=1")
            proc.send_signal(signal.SIGTERM)
            wait_until(lambda: "STOPPING=1" in read(0.1), 30, what="STOPPING=1")
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert (proc.returncode, out.strip()) == (0, "cut short")


@pytest.mark.timeout(60)
def test_a_stop_signal_while_the_main_loop_holds_the_stop_events_lock_is_not_lost() -> None:
    """The main loop waits on Events, and Event.wait holds its lock on the way in and out. A signal that
    lands there must still stop the daemon: a handler that set the Event itself blocked on that lock for
    ever (the test would time out), and the daemon ignored every later SIGTERM until SIGKILL."""
    import structlog

    from absurd.daemon import Daemon

    daemon = Daemon(structlog.get_logger("test"), {"daemon_id": "held"}, "postgresql:///unused")
    previous, signal_pipe = daemon._handle_signals()
    try:
        with daemon._stopping._cond:  # type: ignore[attr-defined]  # where Event.wait holds it
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # bytecodes: the handler runs at one of them
                pass
        assert daemon._stopping.wait(10)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if signal_pipe is not None:
            os.close(signal_pipe)


@pytest.mark.timeout(180)
def test_the_stream_converter_notifies_systemd_and_stops_on_sigterm(dsn: str, tmp_path: Path) -> None:
    incoming, output = tmp_path / "incoming", tmp_path / "ms"
    incoming.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "NOTIFY_SOCKET": "", "WATCHDOG_USEC": "400000"}
    env.pop("WATCHDOG_PID", None)
    with notify_socket(abstract=False, tmp_path=tmp_path) as (address, read):
        env["NOTIFY_SOCKET"] = address
        command = "from contimg.cli import app; app()"
        args = ["stream", "run", "--incoming", str(incoming), "--output-dir", str(output), "--dsn", dsn]
        proc = subprocess.Popen([sys.executable, "-c", command, *args], cwd=REPO, env=env)
        try:
            # Fails at once, not at the deadline, if the daemon dies while starting.
            wait_until(
                lambda: proc.poll() is not None or read(0.1).count("WATCHDOG=1") >= 2, 120, what="pings"
            )
            assert proc.poll() is None, "the stream converter died while starting"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
        messages = read(0.2)
    assert messages[0] == "READY=1" and "STOPPING=1" in messages
    assert f"STATUS=watching {incoming.resolve()}" in messages
