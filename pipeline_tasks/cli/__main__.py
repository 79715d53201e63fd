"""``python -m pipeline_tasks.cli`` runs the contimg CLI."""

from pipeline_tasks.cli import app

app()
