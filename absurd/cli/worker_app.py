"""The ``absurd`` app with only its ``worker`` command: what ``python -m absurd worker`` hands a command
line that worker_start.py does not read itself (``--help``, bad input), without importing the other
commands and their dependencies (schedules, the scheduler)."""

from __future__ import annotations

from absurd.cli import admin
from absurd.cli.toolkit import App

app = App(name="absurd", help="Run an absurd worker (the full CLI: python -m absurd --help).")
app.command("worker")(admin.worker)


@app.callback()
def main() -> None:
    """Keeps ``worker`` a subcommand, as in the full app."""
