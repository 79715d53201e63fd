"""``contimg worker``: an alias of ``absurd worker`` for the science tasks.

It is ``absurd worker --registry contimg.tasks.registry:registry`` serving every science queue
unless --queue is given; the deployment (deploy/absurd-worker@.service) runs ``absurd worker``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from absurd.cli import admin
from absurd.cli.toolkit import Dsn, LogLevel
from contimg.tasks import queues

REGISTRY = "contimg.tasks.registry:registry"


def worker(
    queue: Annotated[
        list[str] | None,
        typer.Option("--queue", "-q", help=f"Queue to serve (repeatable); default: {', '.join(queues.ALL)}."),
    ] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, help="Tasks run at once.")] = 2,
    processes: Annotated[
        int | None, typer.Option(min=1, help="Child processes for the science tasks (default: concurrency).")
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers", "-w", min=1, help="Worker processes, forked from this one once it has started."
        ),
    ] = 1,
    dsn: Dsn = None,
    log_level: LogLevel = "INFO",
) -> None:
    """Run a worker for the science tasks: `absurd worker --registry contimg.tasks.registry:registry`
    on the science queues. See `absurd worker --help` for every option."""
    admin.worker(
        dsn=dsn,
        queue=queue or list(queues.ALL),
        concurrency=concurrency,
        processes=processes,
        registry=[REGISTRY],
        log_level=log_level,
        workers=workers,
    )
