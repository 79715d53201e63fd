"""Live pages: server-sent events fed by Postgres LISTEN/NOTIFY, with polling as the fallback.

Migration 0010's triggers send ``NOTIFY contimg_web`` when a task finishes or a product lands, and the
engine sends ``absurd_wake`` when work is spawned or released. One connection per web process listens
(:class:`Notifications`, started with the app) and wakes every open event stream, so twenty open pages
hold one connection, not twenty. Each stream re-renders its fragment when woken, and every ``poll_s``
regardless (the only wake-up while the listener reconnects), and sends it only when it changed. The htmx
SSE extension swaps it into the page.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator

import psycopg
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from contimg.store import browse
from contimg.store.browse import SourceQuery
from contimg.web.auth import Principal, User
from contimg.web.ops import get_overview
from contimg.web.science_pages import Search
from contimg.web.templating import templates

router = APIRouter()
log = structlog.get_logger("contimg.web.live")
# Migration 0010's triggers (finished tasks, new images, new metrics), and the engine's spawn wake-up.
CHANNELS = ("contimg_web", "absurd_wake")
# A burst of notifications (a batch of completions) becomes one re-render.
SETTLE_S = 0.2
KEEPALIVE_EVERY = 3
# The listener's connection, by this name in pg_stat_activity; how soon it is opened again once lost.
LISTENER = "contimg-web-listener"
RETRY_FIRST_S = 1.0
RETRY_LAST_S = 30.0


def sse_message(event: str, html: str) -> str:
    """One server-sent event; every line of the payload gets its own ``data:`` field."""
    lines = "".join(f"data: {line}\n" for line in html.splitlines() or [""])
    return f"event: {event}\n{lines}\n"


class Notifications:
    """The web process's one LISTEN connection: every live stream waits on it. A lost connection is
    opened again (after 1 s, doubling to 30 s); meanwhile the streams fall back to their poll."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._waiting: set[asyncio.Event] = set()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.listening = False
        # Set when the server is asked to stop: every stream then ends, since the server waits for them.
        self.closing = False

    def start(self) -> None:
        """Begin listening, in a task of the running event loop."""
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._listen(), name=LISTENER)

    def end_streams(self) -> None:
        """Make every stream end now; safe to call from a signal handler or another thread."""
        if self._loop is not None and not self.closing:
            self._loop.call_soon_threadsafe(self._close)

    def _close(self) -> None:
        self.closing = True
        self._wake_all()

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @contextlib.contextmanager
    def subscription(self) -> Iterator[asyncio.Event]:
        """An event set by every notification, for as long as the block runs."""
        event = asyncio.Event()
        self._waiting.add(event)
        try:
            yield event
        finally:
            self._waiting.discard(event)

    async def wait(self, event: asyncio.Event, timeout_s: float) -> None:
        """Until a notification since the last wait (then SETTLE_S more, so that a burst is one wake-up),
        or ``timeout_s``, or the server's stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout_s)
        if event.is_set() and not self.closing:
            await asyncio.sleep(SETTLE_S)
            event.clear()

    def _wake_all(self) -> None:
        for event in self._waiting:
            event.set()

    async def _listen(self) -> None:
        delay = RETRY_FIRST_S
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._dsn, autocommit=True, application_name=LISTENER
                ) as conn:
                    for channel in CHANNELS:
                        await conn.execute(f"LISTEN {channel}")  # fixed names, never input
                    self.listening, delay = True, RETRY_FIRST_S
                    log.info("listening for changes", channels=list(CHANNELS))
                    self._wake_all()  # whatever changed while no one listened
                    async for _ in conn.notifies():
                        self._wake_all()
            except psycopg.Error as exc:
                log.warning(
                    "LISTEN unavailable; live pages poll until it is back", error=str(exc), retry_in_s=delay
                )
            except Exception:  # the listener must outlive any bug, or every page would only poll
                log.exception("listener failed; live pages poll until it is back", retry_in_s=delay)
            self.listening = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_LAST_S)


def _overview_html(request: Request, who: Principal) -> str:
    with request.app.state.pool.connection() as conn:
        ov = get_overview(request, conn)
    return templates.get_template("_overview.html").render(ov=ov, user=who)


def _sources_html(request: Request, who: Principal, query: SourceQuery) -> str:
    with request.app.state.pool.connection() as conn:
        rows = browse.search_sources(conn, query)
    return templates.get_template("_sources_table.html").render(rows=rows, user=who)


def live_stream(
    request: Request, event: str, render: Callable[[], str], poll_s: float | None = None
) -> StreamingResponse:
    """An event stream that sends ``render()`` whenever it changes, woken by NOTIFY or the poll
    (``poll_s`` if given and shorter than the app's)."""
    settings = request.app.state.settings
    every = min(settings.poll_s, poll_s) if poll_s else settings.poll_s

    notifications: Notifications = request.app.state.notifications

    async def stream() -> AsyncIterator[str]:
        last = None
        quiet = 0
        with notifications.subscription() as changed:
            while not notifications.closing and not await request.is_disconnected():
                html = await run_in_threadpool(render)
                if html != last:
                    yield sse_message(event, html)
                    last, quiet = html, 0
                else:
                    quiet += 1
                    if quiet >= KEEPALIVE_EVERY:  # a comment keeps proxies from closing an idle stream
                        yield ": keep-alive\n\n"
                        quiet = 0
                await notifications.wait(changed, every)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/events/overview", include_in_schema=False)
async def overview_events(request: Request, who: User) -> StreamingResponse:
    """The overview fragment, pushed whenever it changes."""
    return live_stream(request, "overview", lambda: _overview_html(request, who))


@router.get("/events/sources", include_in_schema=False)
async def source_events(request: Request, who: User, query: Search) -> StreamingResponse:
    """The source table for the page's search, pushed when new metrics land."""
    return live_stream(request, "sources", lambda: _sources_html(request, who, query))
