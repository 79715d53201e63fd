"""The queue's one retention setting: how long finished history is kept.

Finished tasks (with their runs and checkpoints) and the event log share it, so the event that fired a
workflow is kept as long as that workflow's tasks. The worker's pruner, the scheduler's event pruner,
the built-in ``cleanup`` task and ``absurd cleanup`` all default to it; change it here, not there.
"""

from __future__ import annotations

from datetime import timedelta

DEFAULT_RETENTION = timedelta(days=7)
DEFAULT_RETENTION_S = DEFAULT_RETENTION.total_seconds()
DEFAULT_RETENTION_DAYS = DEFAULT_RETENTION / timedelta(days=1)
