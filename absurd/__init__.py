"""absurd: a durable task queue on Postgres. It knows nothing of astronomy."""

from absurd.client import Client, Spawned, emit_event
from absurd.context import TaskContext
from absurd.errors import PermanentError
from absurd.options import ExponentialBackoff, FixedDelay, NoRetry, SpawnOptions
from absurd.registry import Registry, TaskDefinition

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
