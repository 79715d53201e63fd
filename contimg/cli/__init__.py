"""``contimg``: the pipeline CLI. Its errors and exit codes are those of absurd.cli.toolkit."""

from __future__ import annotations

from absurd.cli.toolkit import LogLevel
from absurd.logging import configure_logging
from contimg.cli import (
    calibrate,
    calibrators,
    convert,
    db_commands,
    demo,
    image,
    lightcurve,
    monitor,
    mosaic,
    photometry,
    reprocess,
    serve,
    simulate,
    storage,
    stream,
    worker,
)
from contimg.cli.base import science_app

app = science_app(
    name="contimg",
    help="DSA-110 continuum imaging: simulate, convert, calibrate, image, mosaic, photometry and the demo.",
)


@app.callback()
def main(log_level: LogLevel = "INFO") -> None:
    """Logs go to stderr (JSON when not a terminal), so stdout stays clean for --json output."""
    configure_logging(log_level)


app.command("demo")(demo.demo)
app.add_typer(simulate.app, name="simulate")
app.add_typer(convert.app, name="convert")
app.add_typer(calibrate.app, name="calibrate")
app.add_typer(image.app, name="image")
app.add_typer(mosaic.app, name="mosaic")
app.add_typer(photometry.app, name="photometry")
app.add_typer(stream.app, name="stream")
app.add_typer(db_commands.products_app, name="products")
mosaic.app.command("plan")(db_commands.mosaic_plan)
app.command("worker")(worker.worker)
app.add_typer(lightcurve.app, name="lightcurve")
app.add_typer(lightcurve.sources_app, name="sources")
app.command("alerts")(lightcurve.alerts)
app.add_typer(monitor.app, name="monitor")
app.add_typer(calibrators.app, name="calibrators")
app.add_typer(storage.app, name="storage")
app.command("serve")(serve.serve)
app.add_typer(reprocess.app, name="reprocess")
