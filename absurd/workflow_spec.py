"""Workflow specs: a set of named tasks with params, dependencies and options.

The same format is used by ``absurd workflow submit`` and by schedule templates. Everything is
validated before anything is written: unknown dependencies, cycles (the error names the cycle),
duplicate names, unknown task types and invalid params, and references that cannot resolve.

References in params:
- ``${params.KEY}`` and ``${event.KEY}`` are filled in at submit time from the workflow's params or
  the triggering event's payload;
- ``${STEP.result.PATH}`` is filled in by the database when the task becomes ready, from the result of
  ``STEP``, which must be one of the task's ancestors.
"""

from __future__ import annotations

import json
import re
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from absurd.options import ExponentialBackoff, RetryPolicy
from absurd.registry import Registry

STEP_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"
REFERENCE = re.compile(r"\$\{([A-Za-z0-9_.:-]+?)(?:\.(result)((?:\.[A-Za-z0-9_-]+)*))?\}")
SUBMIT_TIME = ("params", "event")


class SpecError(ValueError):
    """A workflow spec is invalid; the message lists every problem found."""

    def __init__(self, problems: list[str], source: str = "workflow") -> None:
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


class Dependency(BaseModel):
    """An edge: this task waits for ``task``; an optional edge lets it run even if ``task`` is skipped."""

    model_config = ConfigDict(extra="forbid")
    task: str
    optional: bool = False


class TaskSpec(BaseModel):
    """One task of a workflow."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=STEP_NAME)
    type: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    depends_on: list[Dependency] = Field(default_factory=list)
    queue: str = Field("default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    # Postgres integers: a larger value would fail at submission (or a schedule's every fire), not here.
    priority: int = Field(0, ge=-(2**31), le=2**31 - 1)
    timeout_s: float | None = Field(None, gt=0)
    max_attempts: int = Field(3, ge=1, le=2**31 - 1)
    retry: RetryPolicy = ExponentialBackoff()
    gate: str | None = None

    @field_validator("depends_on", mode="before")
    @classmethod
    def _plain_names(cls, value: Any) -> Any:
        """Accept ``[a, b]`` as well as ``[{task: a, optional: true}]``."""
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            return [{"task": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("depends_on")
    @classmethod
    def _no_duplicates(cls, value: list[Dependency]) -> list[Dependency]:
        """A dependency named twice would count twice against a task that can be released only once."""
        names = [d.task for d in value]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"depends on {', '.join(repeated)} more than once")
        return value


class WorkflowSpec(BaseModel):
    """A workflow: a name, default params and its tasks."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    description: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    tasks: list[TaskSpec] = Field(min_length=1)


def load_spec(path: Path) -> WorkflowSpec:
    """Read a YAML or JSON workflow file; errors name the file."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SpecError([f"cannot read: {exc.strerror}"], str(path)) from exc
    except yaml.YAMLError as exc:
        raise SpecError([f"not valid YAML: {exc}"], str(path)) from exc
    return parse_spec(data, str(path))


def parse_spec(data: Any, source: str = "workflow") -> WorkflowSpec:
    """Validate the structure of a spec given as plain data."""
    try:
        return WorkflowSpec.model_validate(data)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise SpecError(problems, source) from None


def _references(value: Any) -> list[tuple[str, bool]]:
    """(namespace or step, is_result_reference) for every reference inside ``value``."""
    text = json.dumps(value)
    return [(m.group(1), m.group(2) == "result") for m in REFERENCE.finditer(text)]


def check_spec(spec: WorkflowSpec, registry: Registry | None = None, source: str = "workflow") -> list[str]:
    """Every problem with ``spec`` (empty when it is valid). Order of tasks is free."""
    problems: list[str] = []
    names = [t.name for t in spec.tasks]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            problems.append(f"duplicate task name {name!r}")
        seen.add(name)
    by_name = {t.name: t for t in spec.tasks}
    for task in spec.tasks:
        for dep in task.depends_on:
            if dep.task not in by_name:
                problems.append(f"task {task.name!r} depends on unknown task {dep.task!r}")
            elif dep.task == task.name:
                problems.append(f"task {task.name!r} depends on itself")
    graph = {t.name: {d.task for d in t.depends_on if d.task in by_name} for t in spec.tasks}
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        cycle = exc.args[1]
        problems.append("cycle: " + " → ".join(reversed(cycle)))
        return problems
    for task in spec.tasks:
        ancestors = _ancestors(task.name, graph)
        for ref, is_result in _references(task.params):
            if is_result:
                if ref not in by_name:
                    problems.append(
                        f"task {task.name!r} references ${{{ref}.result}} but there is no task {ref!r}"
                    )
                elif ref not in ancestors:
                    problems.append(
                        f"task {task.name!r} references ${{{ref}.result}} but does not depend on {ref!r}"
                    )
            elif ref.split(".")[0] not in SUBMIT_TIME:
                problems.append(f"task {task.name!r} has an unresolvable reference ${{{ref}}}")
        if registry is not None:
            if task.type not in registry:
                problems.append(
                    f"task {task.name!r} has unknown type {task.type!r}; known: {', '.join(registry.names())}"
                )
            else:
                problems.extend(_param_problems(task, registry))
    return problems


def _ancestors(name: str, graph: dict[str, set[str]]) -> set[str]:
    found: set[str] = set()
    stack = list(graph.get(name, ()))
    while stack:
        parent = stack.pop()
        if parent not in found:
            found.add(parent)
            stack.extend(graph.get(parent, ()))
    return found


def _param_problems(task: TaskSpec, registry: Registry) -> list[str]:
    """Validate params against the task type's model, ignoring fields still holding references."""
    model = registry.get(task.type).params_model
    if model is None:
        return []
    try:
        model.model_validate(task.params)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            if "${" in json.dumps(err.get("input"), default=str):
                continue  # filled in later; its final value is checked when the task runs
            loc = ".".join(str(p) for p in err["loc"])
            problems.append(f"task {task.name!r} params.{loc}: {err['msg']}")
        return problems
    return []


def fill_submit_references(value: Any, context: dict[str, dict[str, Any]]) -> Any:
    """Replace ``${params.X}`` / ``${event.X}`` in ``value`` from ``context``; leave result references."""
    if isinstance(value, dict):
        return {k: fill_submit_references(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [fill_submit_references(v, context) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value

    def lookup(ref: str) -> Any:
        namespace, _, path = ref.partition(".")
        current: Any = context.get(namespace)
        for part in path.split(".") if path else []:
            if not isinstance(current, dict) or part not in current:
                raise SpecError([f"reference ${{{ref}}} has no value"])
            current = current[part]
        return current

    whole = REFERENCE.fullmatch(value)
    if whole and whole.group(2) is None and whole.group(1).split(".")[0] in SUBMIT_TIME:
        return lookup(whole.group(1))

    def interpolate(match: re.Match[str]) -> str:
        if match.group(2) is not None or match.group(1).split(".")[0] not in SUBMIT_TIME:
            return match.group(0)
        found = lookup(match.group(1))
        return found if isinstance(found, str) else json.dumps(found)

    return REFERENCE.sub(interpolate, value)


def to_submission(
    spec: WorkflowSpec, params: dict[str, Any], event: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The JSON rows ``absurd.submit_workflow`` takes, with submit-time references filled in."""
    context = {"params": {**spec.params, **params}, "event": event or {}}
    rows = []
    for task in spec.tasks:
        rows.append(
            {
                "step": task.name,
                "name": task.type,
                "params": fill_submit_references(task.params, context),
                "depends_on": [{"step": d.task, "optional": d.optional} for d in task.depends_on],
                "queue": task.queue,
                "priority": task.priority,
                "timeout_s": task.timeout_s,
                "max_attempts": task.max_attempts,
                "retry": task.retry.model_dump(),
                "gate": task.gate,
            }
        )
    return rows
