"""The app every contimg command group is made with: the CLI toolkit of ``absurd.cli.toolkit`` (one
error style, the same exit codes), knowing the science errors as well."""

from __future__ import annotations

from typing import Any

from absurd.cli.toolkit import EXIT_FAILED, App
from science.errors import GroupNotReadyError, InvalidInputError

# Bad input data and groups still waiting for subbands: the operation failed, with the reason.
SCIENCE_ERRORS = {InvalidInputError: EXIT_FAILED, GroupNotReadyError: EXIT_FAILED}


def science_app(**kwargs: Any) -> App:
    """A command group whose commands turn science errors, as well as the queue's, into one line."""
    return App(known_errors=SCIENCE_ERRORS, **kwargs)
