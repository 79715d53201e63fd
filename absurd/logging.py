"""structlog set-up: JSON lines when output is not a terminal, a readable console when it is."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping, MutableMapping
from contextvars import ContextVar
from typing import Any

import structlog

# The one variable that sets the log level of every command and daemon of both CLIs.
LOG_LEVEL_ENV = "ABSURD_LOG_LEVEL"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Whoever sets this sees every line logged in its context, structlog's and the standard library's, after
# the level filter (the worker keeps a run's tail this way: absurd/worker/run_log.py).
log_tap: ContextVar[Callable[[str, MutableMapping[str, Any]], None] | None] = ContextVar(
    "absurd_log_tap", default=None
)

# The run a thread executes, set once per run by the worker (absurd/worker/execution.py): its fields
# (task_id, run_id, worker_id, task) go into every line logged meanwhile. One variable set per run, where
# structlog's bind_contextvars sets one per field.
run_context: ContextVar[Mapping[str, Any] | None] = ContextVar("absurd_run_context", default=None)


def _add_run_context(
    logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    fields = run_context.get()
    if fields is not None:
        for key, value in fields.items():
            event_dict.setdefault(key, value)
    return event_dict


def _tap(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    tap = log_tap.get()
    if tap is not None:
        tap(method, event_dict)
    return event_dict


class _TapHandler(logging.Handler):
    """Hands standard-library records to the tap; alone on the root logger it also keeps the default
    behaviour of printing warnings to stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        tap = log_tap.get()
        if tap is not None:
            event: dict[str, Any] = {"event": record.getMessage(), "logger": record.name}
            if record.exc_info:
                event["exception"] = logging.Formatter().formatException(record.exc_info)
            tap(record.levelname.lower(), event)
        last = logging.lastResort
        if last is not None and record.levelno >= last.level and logging.getLogger().handlers == [self]:
            last.handle(record)


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
            _add_run_context,
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _tap,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    if not any(isinstance(h, _TapHandler) for h in root.handlers):
        root.addHandler(_TapHandler())
