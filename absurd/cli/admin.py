"""``absurd migrate``, ``absurd worker``, ``absurd cleanup`` and ``absurd workers``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from absurd.cli.toolkit import (
    Dsn,
    JsonOut,
    LogLevel,
    RegistryOpt,
    client,
    console,
    print_rows,
)
from absurd.cli.worker_run import METRICS_PORT_ENV, run_worker
from absurd.database import connect, redact, resolve_dsn
from absurd.maintenance.retention import DEFAULT_RETENTION_DAYS
from absurd.migrate import migrate as apply_migrations


def migrate(dsn: Dsn = None) -> None:
    """Apply pending migrations in order (safe to run from several processes at once)."""
    resolved = resolve_dsn(dsn)
    with connect(resolved) as conn:
        applied = apply_migrations(conn)
    where = escape(redact(resolved))
    if applied:
        console.print(f"applied {len(applied)} migration(s) to {where}: " + ", ".join(applied))
    else:
        console.print(f"database {where} is up to date")


def worker(
    dsn: Dsn = None,
    queue: Annotated[
        list[str] | None, typer.Option("--queue", "-q", help="Queue to serve (repeatable); default: default.")
    ] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1)] = 8,
    processes: Annotated[int | None, typer.Option(help="Child processes for process-mode tasks.")] = None,
    registry: RegistryOpt = None,
    lease_s: Annotated[float, typer.Option(help="Lease length; heartbeats renew it.")] = 30.0,
    claim_batch: Annotated[int, typer.Option(min=1, help="Most tasks taken in one claim.")] = 256,
    poll_s: Annotated[float, typer.Option(help="Fallback poll interval when no notification comes.")] = 1.0,
    shutdown_grace_s: Annotated[float, typer.Option(help="Time running tasks get on SIGTERM.")] = 30.0,
    log_level: LogLevel = "INFO",
    metrics_port: Annotated[
        int | None,
        typer.Option(envvar=METRICS_PORT_ENV, help="Serve Prometheus metrics on this local port."),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            "-w",
            min=1,
            help="Worker processes, forked from this one once it has started up, each with these options "
            "(worker i serves metrics on --metrics-port + i).",
        ),
    ] = 1,
) -> None:
    """Run a worker until SIGTERM or Ctrl-C; running tasks then get a grace period.

    It serves the tasks of --registry (or ABSURD_REGISTRY; default: the built-in tasks).
    `contimg worker` is this command with the science registry and queues as defaults.
    """
    run_worker(
        dsn=dsn,
        queue=queue,
        concurrency=concurrency,
        processes=processes,
        registry=registry,
        lease_s=lease_s,
        claim_batch=claim_batch,
        poll_s=poll_s,
        shutdown_grace_s=shutdown_grace_s,
        log_level=log_level,
        metrics_port=metrics_port,
        workers=workers,
    )


def cleanup(
    dsn: Dsn = None,
    older_than_days: Annotated[
        float, typer.Option(help="Retention period in days.")
    ] = DEFAULT_RETENTION_DAYS,
    batch: Annotated[int, typer.Option(min=1)] = 1000,
) -> None:
    """Delete finished tasks older than the retention period, in bounded batches."""
    with client(dsn) as c:
        n = c.cleanup(older_than_days * 86400, batch)
    console.print(f"deleted {n} finished task(s) older than {older_than_days:g} day(s)")


def workers(dsn: Dsn = None, json_out: JsonOut = False) -> None:
    """List registered workers with their last heartbeat."""
    with client(dsn) as c:
        rows = c.workers()
    print_rows(
        rows,
        json_out,
        "workers",
        ["id", "host", "pid", "queues", "concurrency", "started", "heartbeat", "stopped"],
        lambda r: [
            r["id"],
            r["hostname"],
            r["pid"],
            r["queues"],
            r["concurrency"],
            r["started_at"],
            r["heartbeat_at"],
            r["stopped_at"],
        ],
    )
