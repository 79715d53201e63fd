"""absurd: a durable task queue on Postgres. It knows nothing of astronomy.

The public names are loaded on first use, so that a process which needs one part (a worker, which never
spawns from a workflow file) does not import every other part and its dependencies at start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from absurd.client import Client, Spawned, emit_event
    from absurd.context import TaskContext
    from absurd.errors import PermanentError
    from absurd.options import ExponentialBackoff, FixedDelay, NoRetry, SpawnOptions
    from absurd.registry import Registry, TaskDefinition

_HOMES = {
    "Client": "absurd.client",
    "Spawned": "absurd.client",
    "emit_event": "absurd.client",
    "TaskContext": "absurd.context",
    "PermanentError": "absurd.errors",
    "ExponentialBackoff": "absurd.options",
    "FixedDelay": "absurd.options",
    "NoRetry": "absurd.options",
    "SpawnOptions": "absurd.options",
    "Registry": "absurd.registry",
    "TaskDefinition": "absurd.registry",
}

__all__ = [
    "Client",
    "ExponentialBackoff",
    "FixedDelay",
    "NoRetry",
    "PermanentError",
    "Registry",
    "SpawnOptions",
    "Spawned",
    "TaskContext",
    "TaskDefinition",
    "emit_event",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'absurd' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
