"""The ``absurd`` app with only its ``worker`` command, which ``python -m absurd worker`` runs: a worker
process starts without importing the other commands and their dependencies (schedules, the scheduler)."""

from __future__ import annotations

from absurd.cli import admin
from absurd.cli.toolkit import App

app = App(name="absurd", help="Run an absurd worker (the full CLI: python -m absurd --help).")
app.command("worker")(admin.worker)


@app.callback()
def main() -> None:
    """Keeps ``worker`` a subcommand, as in the full app."""
