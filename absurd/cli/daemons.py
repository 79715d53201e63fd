"""``absurd scheduler`` and ``absurd health``: the scheduler daemon and the deployment's health check."""

from __future__ import annotations

from typing import Annotated

import typer

from absurd.cli.toolkit import EXIT_FAILED, Dsn, JsonOut, LogLevel, console, emit_json, table
from absurd.database import resolve_dsn
from absurd.health import check_health
from absurd.logging import configure_logging


def scheduler(
    dsn: Dsn = None,
    tick_s: Annotated[float, typer.Option(help="How often due schedules and new events are checked.")] = 1.0,
    grace_s: Annotated[float, typer.Option(help="A fire at most this late is on time, not missed.")] = 60.0,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            envvar="ABSURD_SCHEDULER_METRICS_PORT", help="Serve Prometheus metrics on this local port."
        ),
    ] = None,
    log_level: LogLevel = "INFO",
) -> None:
    """Run a scheduler until SIGTERM or Ctrl-C. Any number may run: each fire happens once."""
    from absurd.scheduler import Scheduler, SchedulerSettings

    configure_logging(log_level)
    settings = SchedulerSettings(tick_s=tick_s, grace_s=grace_s, metrics_port=metrics_port)
    Scheduler(settings, dsn).run()


def health(
    dsn: Dsn = None,
    stale_s: Annotated[float, typer.Option(help="A heartbeat older than this is stale.")] = 60.0,
    min_workers: Annotated[int, typer.Option(min=0, help="Alive workers needed to be healthy.")] = 1,
    min_schedulers: Annotated[int, typer.Option(min=0, help="Alive schedulers needed to be healthy.")] = 1,
    json_out: JsonOut = False,
) -> None:
    """Check the database, the migrations, and worker and scheduler heartbeats; exit 1 when unhealthy."""
    report = check_health(resolve_dsn(dsn), stale_s, min_workers, min_schedulers)
    if json_out:
        emit_json(report.model_dump(mode="json"))
    else:
        table(
            "health",
            ["check", "ok", "detail"],
            [[c.name, "ok" if c.ok else "FAIL", c.detail] for c in report.checks],
        )
        console.print("healthy" if report.healthy else "[red]unhealthy[/red]")
    if not report.healthy:
        raise typer.Exit(EXIT_FAILED)
