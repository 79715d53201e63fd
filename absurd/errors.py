"""Exceptions of the queue engine, each naming what was wrong and what to do."""

from __future__ import annotations


class AbsurdError(Exception):
    """Base class of the engine's own errors."""


class ConfigurationError(AbsurdError):
    """The engine was set up wrongly: a bad DSN, a bad option, a missing database."""


class UsageError(AbsurdError):
    """A value given on the command line (or in the environment) cannot be used as given."""


class MigrationError(AbsurdError):
    """A migration cannot be applied, or an applied one has been edited since."""


class UnknownTaskError(AbsurdError):
    """A task name that no registry knows."""


class NotFoundError(AbsurdError):
    """An id (task, run, queue) that does not exist."""


class PermanentError(Exception):
    """Raised by task code for failures that retrying cannot fix, such as invalid input.

    The task fails at once and goes to the dead-letter queue without further attempts.
    """


class LeaseLostError(AbsurdError):
    """The worker no longer holds the run's lease; its result is discarded."""


class TaskCancelledError(AbsurdError):
    """The task was cancelled; raised inside task code at its next step or heartbeat."""


class TaskTimeoutError(AbsurdError):
    """The run exceeded the task's timeout."""


class EventTimeoutError(AbsurdError):
    """``await_event`` waited past its timeout without the event being emitted."""


class TaskFailedError(AbsurdError):
    """Raised by ``Client.wait_result`` when the awaited task ended failed or cancelled."""

    def __init__(self, task_id: int, state: str, error: object) -> None:
        super().__init__(f"task {task_id} ended {state}: {error}")
        self.task_id = task_id
        self.state = state
        self.error = error


class Suspended(BaseException):
    """Internal: the run was suspended (sleep or event wait); the worker drops it without a result.

    A BaseException so that a task's own ``except Exception`` cannot swallow it.
    """
