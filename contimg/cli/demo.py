"""``contimg demo``: the project's main job, in one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from absurd.cli.toolkit import Dsn, console
from absurd.errors import UsageError
from absurd.logging import configure_logging
from contimg.demo import run_queue_demo
from contimg.night import NightSettings, run_night_demo


def demo(
    epochs: Annotated[int, typer.Option(help="Target observations of the field.")] = 4,
    antennas: Annotated[int, typer.Option(help="Antennas, chosen from the real stations.")] = 24,
    channels: Annotated[int, typer.Option(help="Channels per subband.")] = 8,
    integrations: Annotated[int, typer.Option(help="Integrations per observation.")] = 10,
    concurrency: Annotated[int, typer.Option(help="Tasks run at once by the worker pool.")] = 2,
    run_root: Annotated[Path, typer.Option(help="Where run directories are made.")] = Path("runs"),
    dsn: Dsn = None,
    queue_only: Annotated[
        bool, typer.Option("--queue-only", help="Only push built-in no-op tasks through the queue.")
    ] = False,
    tasks: Annotated[int, typer.Option(min=1, help="No-op tasks for --queue-only.")] = 5000,
) -> None:
    """Simulate a night and run it through the whole pipeline, with a live display and a summary.

    A calibrator transit and EPOCHS transits of one field (one variable source, the rest constant)
    are written as correlator files into an incoming directory. The streaming converter, the scheduler
    and a worker pool turn them into Measurement Sets, calibration, images, photometry, light curves
    and a mosaic, on the embedded Postgres. Each run has a fresh run directory and database.
    """
    # The live display is the demo's output; the daemons' own logs go to the run directory.
    configure_logging("WARNING")
    if queue_only:
        raise typer.Exit(run_queue_demo(run_root, 2, tasks, dsn, console))
    try:
        settings = NightSettings(
            epochs=epochs,
            antennas=antennas,
            channels=channels,
            integrations=integrations,
            concurrency=concurrency,
        )
    except ValidationError as exc:
        raise UsageError("; ".join(f"--{err['loc'][0]}: {err['msg']}" for err in exc.errors())) from None
    raise typer.Exit(run_night_demo(run_root, settings, dsn, console))
