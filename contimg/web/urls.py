"""Where the dashboard is: its default port, its token variable, and the links the CLI prints."""

from __future__ import annotations

import shlex

DEFAULT_PORT = 8110
TOKENS_ENV = "CONTIMG_WEB_TOKENS"


def dashboard_url(host: str = "127.0.0.1", port: int = DEFAULT_PORT, path: str = "/") -> str:
    """The URL of a dashboard page."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{path}"


def serve_command(dsn: str, port: int = DEFAULT_PORT) -> str:
    """The shell command that serves the dashboard on ``dsn``."""
    return f"contimg serve --dsn {shlex.quote(dsn)} --port {port}"
