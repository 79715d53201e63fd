"""structlog set-up: JSON lines when output is not a terminal, a readable console when it is."""

from __future__ import annotations

import logging
import sys

import structlog

# The one variable that sets the log level of every command and daemon of both CLIs.
LOG_LEVEL_ENV = "ABSURD_LOG_LEVEL"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is now, not the stream it was at configuration time
    (test runners and daemons may swap it, and a closed one must not break a worker)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "INFO", json: bool | None = None) -> None:
    """Configure structlog once per process.

    Context such as task_id, run_id and worker_id is bound through contextvars and appears on
    every line logged while it is bound.
    """
    if json is None:
        json = not sys.stderr.isatty()
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
