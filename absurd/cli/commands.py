"""The `absurd` CLI app with every command (loaded on first use: see absurd/cli/__init__.py)."""

from __future__ import annotations

from absurd.cli import admin, breakers, daemons, dlq, events, queues, schedules, tasks, workflows
from absurd.cli.toolkit import App

app = App(
    name="absurd",
    help="Administer the absurd task queue: migrations, queues, tasks, workers and events.",
)
app.command("migrate")(admin.migrate)
app.command("worker")(admin.worker)
app.command("cleanup")(admin.cleanup)
app.command("workers")(admin.workers)
app.add_typer(queues.app, name="queue")
app.add_typer(tasks.app, name="task")
app.add_typer(events.app, name="events")
app.add_typer(workflows.app, name="workflow")
app.add_typer(dlq.app, name="dlq")
app.add_typer(breakers.breaker_app, name="breaker")
app.add_typer(breakers.limit_app, name="limit")
app.command("scheduler")(daemons.scheduler)
app.command("health")(daemons.health)
app.add_typer(schedules.app, name="schedule")
