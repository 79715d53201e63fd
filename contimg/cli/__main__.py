"""``python -m contimg.cli`` runs the contimg CLI."""

from contimg.cli import app

app()
