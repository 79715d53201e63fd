"""``python -m absurd`` runs the admin CLI."""

from absurd.cli import app

app()
