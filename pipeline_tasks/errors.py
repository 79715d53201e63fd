"""Exceptions shared across the pipeline."""

from __future__ import annotations


class InvalidInputError(Exception):
    """Input a caller supplied (a file, a parameter, a catalogue row) cannot be used as given."""
