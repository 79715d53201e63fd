"""Who is asking: tokens from the environment, sent as a bearer header (API) or a login cookie (pages).

``CONTIMG_WEB_TOKENS`` lists ``name:role:token`` entries separated by commas; the role is ``viewer``
(read only) or ``operator``. Every mutating route depends on :data:`Operator`, which refuses a viewer
with 403 and writes the refusal to the audit log; the route writes the allowed action itself.

A mutating request authenticated by the login cookie must also carry the page's CSRF token (form field
``csrf_token`` or header ``X-CSRF-Token``), an HMAC of the caller's own token that another site cannot
know; a bearer token is never sent by a browser on its own, so API calls with one need none.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Annotated

import psycopg
from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from contimg.store import audit
from contimg.store.audit import Role
from contimg.web.db import Conn

COOKIE = "contimg_token"
MIN_TOKEN_LENGTH = 16
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class Token(BaseModel):
    """One credential: who it is, what they may do, and the secret."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")
    role: Role
    token: str = Field(min_length=MIN_TOKEN_LENGTH, repr=False)


class NeedsLogin(Exception):
    """A page was asked for without a valid token: the app redirects to the login page."""


def parse_tokens(text: str, where: str) -> list[Token]:
    """Parse ``name:role:token,...``; ValueError names the bad entry (by position, never the secret)."""
    tokens = []
    for i, entry in enumerate(e.strip() for e in text.split(",") if e.strip()):
        parts = entry.split(":", 2)
        if len(parts) != 3:
            raise ValueError(f"{where}: entry {i + 1} is not name:role:token")
        name, role, secret = parts
        if role not in ("viewer", "operator"):
            raise ValueError(f"{where}: entry {i + 1} ({name}) has role {role!r}; use viewer or operator")
        if len(secret) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"{where}: entry {i + 1} ({name}) has a token under {MIN_TOKEN_LENGTH} characters"
            )
        tokens.append(Token(name=name, role=role, token=secret))
    if not tokens:
        raise ValueError(f"{where} is empty: give at least one name:role:token")
    return tokens


@dataclass(frozen=True)
class Principal:
    """The authenticated caller, and the CSRF token their pages put in every form."""

    name: str
    role: Role
    csrf: str = field(default="", repr=False, compare=False)

    @property
    def is_operator(self) -> bool:
        """Whether they may change anything."""
        return self.role == "operator"


def csrf_token(secret: str) -> str:
    """The CSRF token of a caller whose login token is ``secret``."""
    return hmac.new(secret.encode(), b"contimg-web-csrf", hashlib.sha256).hexdigest()


def _presented(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(COOKIE)


def authenticate(request: Request, secret: str | None) -> Principal | None:
    """The principal whose token is ``secret``, compared in constant time, or None."""
    if not secret:
        return None
    for token in request.app.state.settings.tokens:
        if hmac.compare_digest(token.token.encode(), secret.encode()):
            return Principal(token.name, token.role, csrf_token(secret))
    return None


def user(request: Request) -> Principal:
    """Any authenticated caller; the API answers 401, pages redirect to the login page."""
    principal = authenticate(request, _presented(request))
    if principal is None:
        if request.url.path.startswith("/api/"):
            raise HTTPException(
                401,
                "a token is required: send 'Authorization: Bearer <token>'",
                {"WWW-Authenticate": "Bearer"},
            )
        raise NeedsLogin()
    return principal


User = Annotated[Principal, Depends(user)]


def operator(request: Request, who: User, conn: Conn) -> Principal:
    """An operator; a viewer gets 403, and the refusal is audited."""
    if not who.is_operator:
        audit.record(
            conn, who.name, who.role, f"{request.method} {request.url.path}", request.url.path, False
        )
        raise HTTPException(403, f"{who.name} is a viewer; this action needs the operator role")
    return who


async def checked_operator(request: Request, who: Annotated[Principal, Depends(operator)]) -> Principal:
    """An operator whose request, if it came with the login cookie, carries their CSRF token."""
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return who
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent.encode(), who.csrf.encode()):
        await run_in_threadpool(_refused_csrf, request, who)
        raise HTTPException(
            403, "this form's CSRF token is missing or wrong: reload the page and submit it again"
        )
    return who


def _refused_csrf(request: Request, who: Principal) -> None:
    with request.app.state.pool.connection() as conn:
        action = f"{request.method} {request.url.path}"
        audit.record(conn, who.name, who.role, action, request.url.path, False, {"refused": "csrf token"})


Operator = Annotated[Principal, Depends(checked_operator)]


def audit_action(
    conn: psycopg.Connection, who: Principal, action: str, target: str, **details: object
) -> None:
    """Record an allowed action."""
    audit.record(conn, who.name, who.role, action, target, True, {k: v for k, v in details.items()})
