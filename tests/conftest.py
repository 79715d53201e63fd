"""Fixtures: a real Postgres for the session and a fresh migrated database per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from absurd.client import Client
from absurd.logging import configure_logging
from tests.support.postgres import ServerUnderTest, fresh_database, make_template, session_server
from tests.support.tasks import registry


@pytest.fixture(scope="session")
def pg_server() -> Iterator[ServerUnderTest]:
    """The session's Postgres server with a migrated template database."""
    configure_logging("WARNING", json=False)
    with session_server() as server:
        make_template(server)
        yield server


@pytest.fixture
def dsn(pg_server: ServerUnderTest) -> Iterator[str]:
    """DSN of a fresh, migrated database for this test alone."""
    with fresh_database(pg_server) as dsn:
        yield dsn


@pytest.fixture
def client(dsn: str) -> Iterator[Client]:
    """A queue client on the test's database."""
    with Client(dsn, registry=registry) as c:
        yield c
