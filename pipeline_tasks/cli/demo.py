"""``contimg demo``: the project's main job, in one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from workers.demo import run_queue_demo


def demo(
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 2,
    tasks: Annotated[int, typer.Option(min=1, help="No-op tasks to push through the queue.")] = 5000,
    run_root: Annotated[Path, typer.Option(help="Where run directories are made.")] = Path("runs"),
    dsn: Annotated[str | None, typer.Option(envvar="ABSURD_DSN", help="Postgres; default: embedded.")] = None,
) -> None:
    """Run the queue end to end on the embedded Postgres with a live display and a summary."""
    code = run_queue_demo(run_root, workers, tasks, dsn, Console())
    raise typer.Exit(code)
