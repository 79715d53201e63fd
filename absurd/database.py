"""Where the database is: ``--dsn``, else ``ABSURD_DSN``, else an embedded Postgres (pgserver).

The embedded server lives in a data directory under the user's data dir (``ABSURD_PGDATA``
overrides it), starts on first use and keeps running for later commands. pgserver runs Postgres
under an unprivileged user when we are root, which Postgres requires.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import psycopg

from absurd.errors import ConfigurationError

DSN_ENV = "ABSURD_DSN"
PGDATA_ENV = "ABSURD_PGDATA"


def embedded_data_dir() -> Path:
    """The embedded server's data directory."""
    override = os.environ.get(PGDATA_ENV)
    if override:
        return Path(override).expanduser().resolve()
    import platformdirs  # only for the embedded server: a worker given a DSN starts without it

    return Path(platformdirs.user_data_dir("dsa110-contimg")) / "pgdata"


def start_embedded(data_dir: Path | None = None) -> str:
    """Start (or reuse) the embedded Postgres and return its DSN."""
    data_dir = data_dir or embedded_data_dir()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (root shells, systemd); harmless here.
            warnings.simplefilter("ignore")
            import pgserver  # imported here: only needed when no server is given

            server = pgserver.get_server(data_dir, cleanup_mode=None)
    except Exception as exc:
        raise ConfigurationError(
            f"could not start the embedded Postgres in {data_dir}: {exc}. "
            f"Set {DSN_ENV} or --dsn to use another server, or {PGDATA_ENV} for another directory."
        ) from exc
    return str(server.get_uri())


def resolve_dsn(dsn: str | None = None) -> str:
    """Return the DSN to use: the argument, else ``ABSURD_DSN``, else the embedded server's."""
    if dsn:
        return dsn
    env = os.environ.get(DSN_ENV)
    if env:
        return env
    return start_embedded()


def connect(dsn: str, *, autocommit: bool = True, connect_timeout: int = 10) -> psycopg.Connection:
    """Open a connection, turning connection failures into an error that names the server."""
    try:
        return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=connect_timeout)
    except psycopg.OperationalError as exc:
        raise ConfigurationError(f"cannot connect to Postgres at {redact(dsn)}: {exc}".strip()) from exc


def redact(dsn: str) -> str:
    """The DSN with any password hidden, for messages and logs."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparseable dsn>"
    if info.get("password"):
        info["password"] = "***"
    return psycopg.conninfo.make_conninfo("", **{k: v for k, v in info.items() if v is not None})
