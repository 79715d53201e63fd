"""Database connections for the request handlers: one pool per app, autocommit connections."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import psycopg
from fastapi import Depends, Request
from psycopg_pool import ConnectionPool


def open_pool(dsn: str) -> ConnectionPool:
    """A small pool: handlers hold a connection for one request only."""
    return ConnectionPool(
        dsn, min_size=1, max_size=8, kwargs={"autocommit": True}, open=True, name="contimg-web"
    )


def connection(request: Request) -> Iterator[psycopg.Connection]:
    """A pooled connection for the length of the request."""
    pool: ConnectionPool = request.app.state.pool
    with pool.connection() as conn:
        yield conn


Conn = Annotated[psycopg.Connection, Depends(connection)]
