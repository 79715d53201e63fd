"""The FastAPI application: middleware (CSP), static files, templates, login, and the routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

import psycopg
import structlog
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from absurd.errors import NotFoundError
from contimg.web import auth
from contimg.web.db import open_pool
from contimg.web.settings import WebSettings
from contimg.web.templating import page
from science.errors import InvalidInputError

HERE = Path(__file__).parent
API_PREFIX = "/api/v1"
# No inline script or style anywhere: every asset is a file served from here.
CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)

log = structlog.get_logger("contimg.web")


class SecurityHeaders:
    """Adds the CSP and friends to every response (plain ASGI, so event streams pass untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(settings: WebSettings) -> FastAPI:
    """The dashboard on ``settings.dsn``."""
    from contimg.web import calibration, live, mosaics, ops, science_pages, sky, submit

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = open_pool(settings.dsn)
        app.state.notifications = live.Notifications(settings.dsn)
        app.state.notifications.start()
        log.info("dashboard started", users=[t.name for t in settings.tokens])
        try:
            yield
        finally:
            await app.state.notifications.stop()
            app.state.pool.close()

    app = FastAPI(
        title="DSA-110 continuum pipeline",
        version="1",
        description="The dashboard's JSON API. Authenticate with 'Authorization: Bearer <token>'.",
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(auth.NeedsLogin)
    async def to_login(request: Request, exc: auth.NeedsLogin) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(NotFoundError)
    @app.exception_handler(LookupError)
    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(request, 404, str(exc))

    @app.exception_handler(psycopg.DataError)
    async def bad_data(request: Request, exc: Exception) -> Response:
        # Values the database cannot hold (a NUL byte in a filter, an out-of-range number).
        return _error(request, 400, f"the database refused a value: {exc}".splitlines()[0])

    @app.exception_handler(ValidationError)
    async def invalid_model(request: Request, exc: ValidationError) -> Response:
        # A model built inside a handler (task params): say which field and why.
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "input"
        return _error(request, 400, f"{where}: {first['msg']}")

    @app.exception_handler(InvalidInputError)
    @app.exception_handler(ValueError)
    async def bad_input(request: Request, exc: Exception) -> Response:
        return _error(request, 400, str(exc))

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request, next: str = "/") -> Response:
        """The login form."""
        return page(request, "login.html", None, next=_local(next), error=None)

    @app.post("/login", include_in_schema=False)
    def login(request: Request, token: str = Form(...), next: str = Form("/")) -> Response:
        """Check the token and set it as an HttpOnly, SameSite=Strict cookie."""
        principal = auth.authenticate(request, token)
        if principal is None:
            return page(request, "login.html", None, 401, next=_local(next), error="unknown token")
        response = RedirectResponse(_local(next), status_code=303)
        response.set_cookie(
            auth.COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=settings.secure_cookies,
            max_age=86400 * 7,
        )
        return response

    @app.post("/logout", include_in_schema=False)
    def logout() -> Response:
        """Forget the cookie."""
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(auth.COOKIE)
        return response

    app.include_router(ops.router)
    app.include_router(live.router)
    app.include_router(science_pages.router)
    app.include_router(sky.router)
    app.include_router(submit.router)
    app.include_router(mosaics.router)
    app.include_router(calibration.router)
    return app


def _local(target: str) -> str:
    """Only same-site paths as a redirect target, so the login page cannot send anyone elsewhere."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


def _error(request: Request, status: int, message: str) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"detail": message}, status_code=status)
    return page(request, "error.html", None, status, code=status, message=message)
