"""``python -m absurd`` runs the admin CLI; ``python -m absurd worker`` loads only the worker's command."""

import sys


def _structlog_without_twisted() -> None:
    """Import structlog with twisted hidden: structlog loads its twisted integration whenever twisted is
    installed, about 0.05 s of CPU at every worker's start for something a worker never uses. Twisted
    stays importable afterwards."""
    hide = "twisted" not in sys.modules
    if hide:
        sys.modules["twisted"] = None  # type: ignore[assignment]  # makes `import twisted` fail
    try:
        import structlog  # noqa: F401
    finally:
        if hide:
            del sys.modules["twisted"]


if sys.argv[1:2] == ["worker"]:
    _structlog_without_twisted()
    from absurd.cli.worker_app import app as worker_app

    worker_app()
else:
    from absurd.cli import app

    app()
