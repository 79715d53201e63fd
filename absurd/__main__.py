"""``python -m absurd`` runs the admin CLI; ``python -m absurd worker`` loads only the worker's command."""

import sys

if sys.argv[1:2] == ["worker"]:
    from absurd.cli.worker_app import app as worker_app

    worker_app()
else:
    from absurd.cli import app

    app()
