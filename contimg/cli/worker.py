"""`contimg worker`: run a queue worker that serves the science tasks of ``contimg.tasks.registry``."""

from __future__ import annotations

from typing import Annotated

import typer

DEFAULT_QUEUES = ["convert", "calibrate", "imaging", "photometry"]


def worker(
    queue: Annotated[
        list[str] | None,
        typer.Option("--queue", "-q", help="Queue to serve (repeatable); default: all four."),
    ] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, help="Tasks run at once.")] = 2,
    processes: Annotated[
        int | None, typer.Option(min=1, help="Child processes for the science tasks (default: concurrency).")
    ] = None,
    dsn: Annotated[
        str | None,
        typer.Option("--dsn", envvar="ABSURD_DSN", help="Postgres DSN; default: the embedded server."),
    ] = None,
    log_level: Annotated[str, typer.Option(envvar="CONTIMG_LOG_LEVEL", help="Log level.")] = "INFO",
) -> None:
    """Run a worker for the science tasks until SIGTERM or Ctrl-C (running tasks get a grace period)."""
    from absurd.worker import Worker, WorkerSettings
    from contimg.tasks.registry import registry

    settings = WorkerSettings(
        queues=queue or DEFAULT_QUEUES, concurrency=concurrency, processes=processes, log_level=log_level
    )
    Worker(registry, settings, dsn).run()
