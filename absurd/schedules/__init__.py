"""Schedules: workflows started by cron, by interval or by events, declared in YAML files.

- ``spec``: the file format (pydantic models);
- ``loader``: reading files, with every problem reported by file and line;
- ``cron``: fire times (croniter, DST-aware);
- ``sync``: loading schedules into Postgres, as a diff.

The daemon that fires them is ``absurd.scheduler``.
"""

from absurd.schedules.loader import LoadedSchedule, Problem, load_paths
from absurd.schedules.spec import CatchUp, Schedule, ScheduleFile, Trigger

__all__ = ["CatchUp", "LoadedSchedule", "Problem", "Schedule", "ScheduleFile", "Trigger", "load_paths"]
