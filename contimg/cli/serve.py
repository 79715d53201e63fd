"""``contimg serve``: the web dashboard and the HTTP API on uvicorn."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from pydantic import ValidationError

from absurd.cli.toolkit import Dsn, err_console
from absurd.database import resolve_dsn
from absurd.errors import UsageError
from contimg.web.urls import DEFAULT_PORT, TOKENS_ENV

HOST_HELP = "Address to listen on; 127.0.0.1 keeps it local (put a TLS proxy in front to share it)."


def serve(
    host: Annotated[str, typer.Option(help=HOST_HELP)] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = DEFAULT_PORT,
    stall_after_s: Annotated[
        float, typer.Option(min=1, help="Show the freshness banner when no image has landed for this long.")
    ] = 1800.0,
    poll_s: Annotated[float, typer.Option(min=0.2, help="Live pages re-read at least this often.")] = 5.0,
    secure_cookies: Annotated[
        bool, typer.Option(help="Mark the login cookie Secure (behind HTTPS).")
    ] = False,
    dsn: Dsn = None,
) -> None:
    """Serve the dashboard (pages and /api/v1, OpenAPI at /api/v1/openapi.json).

    Who may log in comes from CONTIMG_WEB_TOKENS: comma-separated name:role:token entries, the role
    viewer (read only) or operator (may retry, skip, reset, trigger, triage and save).
    """
    from contimg.web.app import create_app
    from contimg.web.server import serve as run_server
    from contimg.web.settings import WebSettings

    tokens = os.environ.get(TOKENS_ENV, "")
    if not tokens.strip():
        raise UsageError(f"{TOKENS_ENV} is not set: give name:role:token entries (role viewer or operator)")
    try:
        settings = WebSettings(
            dsn=resolve_dsn(dsn),
            tokens=tokens,
            stall_after_s=stall_after_s,
            poll_s=poll_s,
            secure_cookies=secure_cookies,
        )
    except ValidationError as exc:
        raise UsageError("; ".join(str(e["msg"]) for e in exc.errors())) from None
    err_console.print(f"dashboard on http://{host}:{port}/ (API: /api/v1, OpenAPI: /api/v1/openapi.json)")
    run_server(create_app(settings), host, port)
