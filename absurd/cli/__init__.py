"""``absurd``: the admin CLI of the queue. Its errors and exit codes are those of absurd.cli.toolkit.

The full app (``app``, built in commands.py) is loaded on first use, so that importing one command's module
(``absurd.cli.admin``) does not load every other command and its dependencies; ``python -m absurd worker``
starts from worker_app.py for the same reason.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "app":
        from absurd.cli.commands import app

        return app
    raise AttributeError(f"module 'absurd.cli' has no attribute {name!r}")
