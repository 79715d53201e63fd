"""Task params and results as they cross the queue: JSON values."""

from __future__ import annotations

from typing import Any


def to_json(value: Any) -> Any:
    """Make a task's params or result JSON-ready (pydantic models are dumped in JSON mode)."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    return value
