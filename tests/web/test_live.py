"""The web process's one LISTEN connection (``contimg.web.live.Notifications``): it wakes every live stream
that waits on it, and opens its connection again when it is lost; and ``contimg serve`` stops at once with
a live page open."""

from __future__ import annotations

import asyncio
import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine

import psycopg

from contimg.web import live
from tests.support.processes import REPO, wait_until
from tests.web.conftest import OPERATOR_TOKEN, TOKENS, answers, free_port

# This database's only: the browser tests' dashboard may be listening on its own.
COUNT_LISTENERS = (
    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND datname = current_database()"
)
TERMINATE_LISTENERS = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
    " WHERE application_name = %s AND datname = current_database()"
)


async def _until(predicate: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _woken(event: asyncio.Event, timeout_s: float = 10.0) -> bool:
    try:
        await asyncio.wait_for(event.wait(), timeout_s)
    except TimeoutError:
        return False
    return True


def test_many_streams_share_one_connection_that_comes_back_when_lost(dsn: str) -> None:
    admin = psycopg.connect(dsn, autocommit=True)

    def listeners() -> int:
        row = admin.execute(COUNT_LISTENERS, (live.LISTENER,)).fetchone()
        return int(row[0]) if row else 0

    async def scenario() -> None:
        notifications = live.Notifications(dsn)
        notifications.start()
        await _until(lambda: notifications.listening, "the listener")
        with notifications.subscription() as first, notifications.subscription() as second:
            await asyncio.sleep(0.1)  # the catch-up wake-up at connect
            first.clear()
            second.clear()
            assert listeners() == 1
            admin.execute("NOTIFY contimg_web, 'absurd.tasks'")
            assert await _woken(first) and await _woken(second)

            # The listener's backend is killed (a failover, a restart, an idle timeout): the streams are
            # woken once it is back, and notifications reach them again.
            first.clear()
            admin.execute(TERMINATE_LISTENERS, (live.LISTENER,))
            await _until(lambda: not notifications.listening, "the loss to be seen")
            await _until(lambda: notifications.listening, "the listener to come back")
            assert await _woken(first)
            first.clear()
            admin.execute("NOTIFY absurd_wake")
            assert await _woken(first)
            assert listeners() == 1
        await notifications.stop()

    try:
        _run_in_a_thread(scenario)
        assert listeners() == 0
    finally:
        admin.close()


def _run_in_a_thread(scenario: Callable[[], Coroutine[object, object, None]]) -> None:
    """asyncio.run in a thread of its own: after the browser tests, Playwright's sync API keeps an event
    loop running in this one."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(scenario())
        except BaseException as exc:  # re-raised in the test's thread
            failures.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(120)
    assert not thread.is_alive(), "the scenario did not end in 120 s"
    if failures:
        raise failures[0]


def test_the_dashboard_stops_at_once_with_a_live_page_open(dsn: str) -> None:
    # uvicorn waits for every open response before it stops, and an event stream never ends by itself: the
    # dashboard used to sit out systemd's TimeoutStopSec and be SIGKILLed.
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "CONTIMG_WEB_TOKENS": TOKENS}
    server = subprocess.Popen(
        [sys.executable, "-m", "contimg.cli", "serve", "--dsn", dsn, "--port", str(port)], cwd=REPO, env=env
    )
    stream = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        wait_until(lambda: answers(f"http://127.0.0.1:{port}/login"), timeout=60, what="the dashboard")
        stream.request("GET", "/events/overview", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
        response = stream.getresponse()
        assert response.status == 200
        assert response.read1(7) == b"event: "  # the overview, live
        server.send_signal(signal.SIGTERM)
        # A stop that waited for the stream would never come; 30 s is for a loaded machine.
        assert server.wait(30) in (0, -signal.SIGTERM)
    finally:
        stream.close()
        if server.poll() is None:
            server.kill()
            server.wait()
