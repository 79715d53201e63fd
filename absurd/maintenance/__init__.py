"""Queue maintenance as small named parts, each a ``MaintenanceDuty`` that a daemon's
``MaintenanceRunner`` runs when due:

- ``Reaper`` (reaper.py): reclaims runs whose lease expired; every worker, at start and every 5 s.
- ``Pruner`` (pruner.py): deletes finished tasks past retention; every worker, hourly.
- ``EventPruner`` (event_pruner.py): deletes event-log rows past retention; every scheduler, hourly.

The retention they share is ``DEFAULT_RETENTION`` (retention.py). The event pruner is imported from its
module, not from here: it needs the schedules package, which a worker has no use for and should not load.
"""

from absurd.maintenance.duty import MaintenanceDuty
from absurd.maintenance.pruner import Pruner, PrunerSettings, delete_finished
from absurd.maintenance.reaper import Reaper, ReaperSettings
from absurd.maintenance.retention import DEFAULT_RETENTION, DEFAULT_RETENTION_DAYS, DEFAULT_RETENTION_S
from absurd.maintenance.runner import MaintenanceRunner

__all__ = [
    "DEFAULT_RETENTION",
    "DEFAULT_RETENTION_DAYS",
    "DEFAULT_RETENTION_S",
    "MaintenanceDuty",
    "MaintenanceRunner",
    "Pruner",
    "PrunerSettings",
    "Reaper",
    "ReaperSettings",
    "delete_finished",
]
