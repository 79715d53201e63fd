"""Where the dashboard is: its default port, its token variable, and the links the CLI prints."""

from __future__ import annotations

import shlex
from urllib.parse import quote

DEFAULT_PORT = 8110
TOKENS_ENV = "CONTIMG_WEB_TOKENS"


def dashboard_url(host: str = "127.0.0.1", port: int = DEFAULT_PORT, path: str = "/") -> str:
    """The URL of a dashboard page."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{path}"


def serve_command(dsn: str, port: int = DEFAULT_PORT) -> str:
    """The shell command that serves the dashboard on ``dsn``."""
    return f"contimg serve --dsn {shlex.quote(dsn)} --port {port}"


def demo_hint(dsn: str, variable: str, port: int = DEFAULT_PORT) -> list[str]:
    """What ``contimg demo`` prints last: how to serve this run's database, and the pages to open."""
    source_page = dashboard_url(port=port, path="/sources/" + quote(variable, safe=""))
    return [
        f"dashboard of this run: {serve_command(dsn, port)}",
        f"  (with {TOKENS_ENV}=name:operator:<a token of 16+ characters> in the environment), then open",
        f"  {dashboard_url(port=port)} for the night's tasks and workflows, "
        f"{source_page} for the variable's light curve",
    ]
