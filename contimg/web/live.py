"""Live pages: server-sent events fed by Postgres LISTEN/NOTIFY, with polling as the fallback.

Migration 0010's triggers send ``NOTIFY contimg_web`` when a task finishes or a product lands, and the
engine sends ``absurd_wake`` when work is spawned or released. Each event stream listens on its own
connection, re-renders its fragment when told (or every ``poll_s`` regardless, and always when LISTEN
is unavailable), and sends it only when it changed. The htmx SSE extension swaps it into the page.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

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


def sse_message(event: str, html: str) -> str:
    """One server-sent event; every line of the payload gets its own ``data:`` field."""
    lines = "".join(f"data: {line}\n" for line in html.splitlines() or [""])
    return f"event: {event}\n{lines}\n"


async def _listen(dsn: str) -> psycopg.AsyncConnection | None:
    try:
        conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        for channel in CHANNELS:
            await conn.execute(f"LISTEN {channel}")
        return conn
    except psycopg.Error as exc:
        log.warning("LISTEN unavailable; the live page polls", error=str(exc))
        return None


async def _wait(conn: psycopg.AsyncConnection | None, poll_s: float) -> psycopg.AsyncConnection | None:
    """Until a notification or ``poll_s``; returns the connection, or None once it has failed."""
    if conn is None:
        await asyncio.sleep(poll_s)
        return None
    try:
        async for _ in conn.notifies(timeout=poll_s, stop_after=1):
            await asyncio.sleep(SETTLE_S)
        return conn
    except psycopg.Error as exc:
        log.warning("LISTEN connection lost; polling", error=str(exc))
        await conn.close()
        return None


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

    async def stream() -> AsyncIterator[str]:
        conn = await _listen(settings.dsn)
        last = None
        quiet = 0
        try:
            while not await request.is_disconnected():
                html = await run_in_threadpool(render)
                if html != last:
                    yield sse_message(event, html)
                    last, quiet = html, 0
                else:
                    quiet += 1
                    if quiet >= KEEPALIVE_EVERY:  # a comment keeps proxies from closing an idle stream
                        yield ": keep-alive\n\n"
                        quiet = 0
                conn = await _wait(conn, every)
        finally:
            if conn is not None:
                await conn.close()

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
