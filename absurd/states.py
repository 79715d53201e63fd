"""The states of tasks, runs and workflows: one Python list of each, as docs/state-machine.md
describes them and the CHECK constraints in migrations/ enforce them."""

from __future__ import annotations

from typing import Literal, get_args

TaskState = Literal["waiting", "pending", "running", "sleeping", "completed", "failed", "cancelled"]
RunState = Literal["running", "completed", "failed", "suspended", "released", "cancelled"]
WorkflowState = Literal["running", "blocked", "completed", "finished_with_skips", "cancelled"]

# In lifecycle order: waiting on dependencies, queued, claimed, suspended, then the three ends.
TASK_STATES: tuple[TaskState, ...] = get_args(TaskState)
TERMINAL_TASK_STATES: tuple[TaskState, ...] = ("completed", "failed", "cancelled")
RUN_STATES: tuple[RunState, ...] = get_args(RunState)
WORKFLOW_STATES: tuple[WorkflowState, ...] = get_args(WorkflowState)
