"""``absurd`` (and ``python -m absurd``) runs the admin CLI; ``absurd worker`` starts without it
(worker_start), as the systemd units start workers."""

import gc
import sys

# Integrations structlog loads whenever these are installed: twisted's, rich's tracebacks for the console
# renderer, and greenlet's context for the deprecated structlog.threadlocal. A worker uses none (its
# tracebacks are plain text); together about 0.1 s of CPU at every worker's start.
_HIDDEN_FROM_STRUCTLOG = ("twisted", "rich", "greenlet")


def _structlog_without_extras() -> None:
    """Import structlog with those hidden; they stay importable afterwards (the CLI uses rich)."""
    hidden = [name for name in _HIDDEN_FROM_STRUCTLOG if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` fail
    try:
        import structlog  # noqa: F401
    finally:
        for name in hidden:
            del sys.modules[name]


def main() -> None:
    """The ``absurd`` command (and ``python -m absurd``): ``absurd worker`` starts without the admin CLI."""
    if sys.argv[1:2] == ["worker"]:
        # Importing the worker makes some 75,000 objects that live as long as it does: collecting meanwhile
        # costs about 20 ms of CPU and finds some 750 garbage objects; frozen, no later collection scans them.
        gc.disable()
        _structlog_without_extras()
        import absurd.worker  # noqa: F401  # what run_worker imports first
        from absurd.cli.worker_start import main as worker_main

        gc.freeze()
        gc.enable()
        worker_main(sys.argv[2:])
    else:
        from absurd.cli import app

        app()


if __name__ == "__main__":
    main()
