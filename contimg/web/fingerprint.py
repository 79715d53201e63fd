"""Error fingerprints: DLQ entries that failed the same way share one, whatever ids, paths or numbers
their messages carry, so the DLQ page can group them and act on a group."""

from __future__ import annotations

import hashlib
import re

_VARIABLE = re.compile(r"(/[\w.\-/]+)|(0x[0-9a-f]+)|(\d+(\.\d+)?)", re.IGNORECASE)


def normalise(message: str | None) -> str:
    """The message with paths, hex and numbers replaced by placeholders (first line, 200 characters)."""
    first = (message or "").strip().splitlines()[0] if (message or "").strip() else ""
    return _VARIABLE.sub(lambda m: "<path>" if m.group(1) else "<n>", first)[:200]


def fingerprint(task_name: str, error_type: str | None, message: str | None) -> str:
    """A short stable id for (task, error type, normalised message)."""
    key = f"{task_name}\x00{error_type or ''}\x00{normalise(message)}"
    return hashlib.sha256(key.encode()).hexdigest()[:12]
