"""Workflow specs: a set of named tasks with params, dependencies and options.

The same format is used by ``absurd workflow submit`` and by schedule templates. Everything is
validated before anything is written: unknown dependencies, cycles (the error names the cycle),
duplicate names, unknown task types and invalid params, and references that cannot resolve.

References in params:
- ``${params.KEY}`` and ``${event.KEY}`` are filled in at submit time from the workflow's params or
  the triggering event's payload;
- ``${STEP.result.PATH}`` is filled in by the database when the task becomes ready, from the result of
  ``STEP``, which must be one of the task's ancestors.

Options (queue, priority, timeout, attempts, retry policy, gate): a step that leaves one out inherits
it from its task type's registry entry, where the registry is known (``resolve_options``: at submit
with ``--registry`` or ABSURD_REGISTRY, and when schedules are synced with one); otherwise it gets
the engine's defaults (``SpawnOptions``: queue ``default``, 3 attempts, no timeout).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from absurd.options import QUEUE_NAME, RetryPolicy, SpawnOptions
from absurd.registry import Registry, unknown_task_message

STEP_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"
REFERENCE = re.compile(r"\$\{([A-Za-z0-9_.:-]+?)(?:\.(result)((?:\.[A-Za-z0-9_-]+)*))?\}")
SUBMIT_TIME = ("params", "event")


class SpecError(ValueError):
    """A workflow spec is invalid; the message lists every problem found."""

    def __init__(self, problems: list[str], source: str = "workflow") -> None:
        self.problems = problems
        self.source = source
        super().__init__(f"{source}: " + "; ".join(problems))


class Dependency(BaseModel):
    """An edge: this task waits for ``task``; an optional edge lets it run even if ``task`` is skipped."""

    model_config = ConfigDict(extra="forbid")
    task: str
    optional: bool = False


# The options a step may set; any it leaves out (None) come from its task type (``resolve_options``).
OPTION_FIELDS = ("queue", "priority", "timeout_s", "max_attempts", "retry", "gate")


class TaskSpec(BaseModel):
    """One task of a workflow. Options left out (None) are inherited: see the module docstring."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=STEP_NAME)
    type: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    depends_on: list[Dependency] = Field(default_factory=list)
    queue: str | None = Field(None, pattern=QUEUE_NAME)
    # Postgres integers: a larger value would fail at submission (or a schedule's every fire), not here.
    priority: int | None = Field(None, ge=-(2**31), le=2**31 - 1)
    timeout_s: float | None = Field(None, gt=0)
    max_attempts: int | None = Field(None, ge=1, le=2**31 - 1)
    retry: RetryPolicy | None = None
    gate: str | None = None

    def options(self, registry: Registry | None = None) -> SpawnOptions:
        """The step's options: its own, else its task type's in ``registry``, else the engine's defaults."""
        base = registry.get(self.type).options if registry is not None and self.type in registry else None
        return (base or SpawnOptions()).merged(**{f: getattr(self, f) for f in OPTION_FIELDS})

    def inherited(self) -> list[str]:
        """The options this step leaves to its task type."""
        return [f for f in OPTION_FIELDS if getattr(self, f) is None]

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


def yaml_problem(exc: yaml.YAMLError) -> tuple[int, str]:
    """The 1-based line (0 when unknown) and a one-line description of a YAML syntax error."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or str(exc)
        if exc.context and exc.context_mark is not None:
            problem += f" ({exc.context} on line {exc.context_mark.line + 1})"
        return (mark.line + 1 if mark else 0), problem
    return 0, " ".join(str(exc).split())


def load_spec(path: Path) -> WorkflowSpec:
    """Read a YAML or JSON workflow file; errors name the file, and the line of a syntax error."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SpecError([f"cannot read: {exc.strerror}"], str(path)) from exc
    except yaml.YAMLError as exc:
        line, problem = yaml_problem(exc)
        raise SpecError([f"not valid YAML: {problem}"], f"{path}:{line}" if line else str(path)) from exc
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


def check_spec(
    spec: WorkflowSpec,
    registry: Registry | None = None,
    source: str = "workflow",
    known: Collection[str] | None = None,
) -> list[str]:
    """Every problem with ``spec`` (empty when it is valid). Order of tasks is free.

    Task types are checked against ``registry`` (and params against its models), else against the
    ``known`` names (such as those live workers serve), else not at all.
    """
    if registry is not None:
        known = registry.names()
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
        if known is not None and task.type not in known:
            source = "registered" if registry is not None else "served"
            problems.append(
                f"task {task.name!r} has {unknown_task_message(task.type, known, source, 'type')}"
            )
        elif registry is not None:
            problems.extend(_param_problems(task, registry))
    return problems


def resolve_options(spec: WorkflowSpec, registry: Registry) -> WorkflowSpec:
    """A copy of ``spec`` in which every option a step leaves out is its task type's from ``registry``."""
    tasks = [
        TaskSpec.model_validate(
            {**task.model_dump(), **task.options(registry).model_dump(include=set(OPTION_FIELDS))}
        )
        for task in spec.tasks
    ]
    return spec.model_copy(update={"tasks": tasks})


def inherited_options(spec: WorkflowSpec) -> dict[str, list[str]]:
    """Step name → the options it leaves out, for steps that leave any out."""
    return {task.name: missing for task in spec.tasks if (missing := task.inherited())}


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
        # Options still left out here (no registry resolved them) are the engine's defaults.
        options = task.options()
        rows.append(
            {
                "step": task.name,
                "name": task.type,
                "params": fill_submit_references(task.params, context),
                "depends_on": [{"step": d.task, "optional": d.optional} for d in task.depends_on],
                "queue": options.queue,
                "priority": options.priority,
                "timeout_s": options.timeout_s,
                "max_attempts": options.max_attempts,
                "retry": options.retry.model_dump(),
                "gate": options.gate,
            }
        )
    return rows
