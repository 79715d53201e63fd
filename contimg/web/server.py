"""uvicorn for the dashboard, stopping promptly with live pages open.

uvicorn waits for every open response to finish before it stops, and a live page's event stream never
finishes by itself: with one page open, SIGTERM used to go unanswered until systemd's TimeoutStopSec
(15 s) ran out and SIGKILL ended the dashboard. Here the stop also ends every stream.
"""

from __future__ import annotations

from types import FrameType

import uvicorn
from fastapi import FastAPI

from contimg.web.live import Notifications


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        notifications: Notifications | None = getattr(self._app.state, "notifications", None)
        if notifications is not None:
            notifications.end_streams()
        super().handle_exit(sig, frame)


def serve(app: FastAPI, host: str, port: int) -> None:
    """Serve ``app`` until SIGTERM or SIGINT."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", proxy_headers=True)
    _Server(config, app).run()
