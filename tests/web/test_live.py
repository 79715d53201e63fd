"""The web process's one LISTEN connection (``contimg.web.live.Notifications``): it wakes every live stream
that waits on it, and opens its connection again when it is lost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import psycopg

from contimg.web import live

COUNT_LISTENERS = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
TERMINATE_LISTENERS = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s"


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
        asyncio.run(scenario())
        assert listeners() == 0
    finally:
        admin.close()
