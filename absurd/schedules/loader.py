"""Read schedule files and report every problem with its file and line.

YAML is parsed once into nodes (which carry line numbers) and once into data. Pydantic's error
locations are paths such as ``schedules.0.trigger.cron``; walking the same path through the nodes
gives the line. Problems found after parsing (unknown task types, cycles, references) name a task,
and point at that task's line.

With a registry, task types and params are checked against it and every option a step leaves out is
filled in from its task type (``resolve_options``), so what is synced is what will run. With only the
``known`` task names (those live workers serve), types are checked and options stay as written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from absurd.registry import Registry
from absurd.schedules.fire import FIRE_PARAMS
from absurd.schedules.spec import Schedule, ScheduleFile
from absurd.workflow_spec import REFERENCE, WorkflowSpec, check_spec, resolve_options, yaml_problem

TASK_NAMED = re.compile(r"task '([^']+)'")
CYCLE = re.compile(r"cycle: (\S+) →")


@dataclass(frozen=True)
class Problem:
    """One problem in a schedule file."""

    file: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(frozen=True)
class LoadedSchedule:
    """A valid schedule and where it was defined."""

    schedule: Schedule
    file: Path
    line: int


def schedule_files(paths: list[Path]) -> list[Path]:
    """The YAML files named, with directories expanded to their ``*.yaml`` and ``*.yml`` files."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()))
        else:
            found.append(path)
    return found


def load_paths(
    paths: list[Path], registry: Registry | None = None, known: Collection[str] | None = None
) -> tuple[list[LoadedSchedule], list[Problem]]:
    """Load every schedule in ``paths`` (files or directories). Returns the valid schedules and every
    problem found; a schedule with problems is not among the valid ones. Task types are checked
    against ``registry``, else against the ``known`` names, else not at all."""
    loaded: list[LoadedSchedule] = []
    problems: list[Problem] = []
    files = schedule_files(paths)
    if not files:
        problems.extend(Problem(p, 0, "no schedule files (*.yaml, *.yml) here") for p in paths)
    for file in files:
        good, bad = load_file(file, registry, known)
        loaded.extend(good)
        problems.extend(bad)
    first: dict[str, LoadedSchedule] = {}
    unique: list[LoadedSchedule] = []
    for item in loaded:
        name = item.schedule.name
        if name in first:
            where = f"{first[name].file}:{first[name].line}"
            problems.append(Problem(item.file, item.line, f"schedule {name!r} is also defined at {where}"))
        else:
            first[name] = item
            unique.append(item)
    return unique, sorted(problems, key=lambda p: (str(p.file), p.line))


def load_file(
    file: Path, registry: Registry | None = None, known: Collection[str] | None = None
) -> tuple[list[LoadedSchedule], list[Problem]]:
    """Load one schedule file (see ``load_paths``)."""
    try:
        text = file.read_text()
    except OSError as exc:
        return [], [Problem(file, 0, f"cannot read: {exc.strerror}")]
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        line, problem = yaml_problem(exc)
        return [], [Problem(file, line, f"YAML syntax: {problem}")]
    if root is None:
        return [], [Problem(file, 1, "the file is empty; expected `schedules:` and a list")]
    problems = [Problem(file, line, message) for line, message in _duplicate_keys(root)]
    try:
        top = ScheduleFile.model_validate(data)
    except ValidationError as exc:
        return [], problems + _from_validation(file, root, (), exc)
    items = _child(root, "schedules")
    loaded: list[LoadedSchedule] = []
    for index, raw in enumerate(top.schedules):
        node = _child(items, index) if items is not None else root
        line = _line(node)
        try:
            schedule = Schedule.model_validate(raw)
        except ValidationError as exc:
            problems.extend(_from_validation(file, root, ("schedules", index), exc))
            # The workflow may be fine on its own; check it too, so every problem shows in one pass.
            if not any(err["loc"][:1] == ("workflow",) for err in exc.errors()):
                workflow = _workflow_alone(raw)
                if workflow is not None:
                    found = check_spec(workflow, registry, known=known)
                    problems.extend(Problem(file, _task_line(node, message), message) for message in found)
            continue
        found = _semantic_problems(schedule, registry, known)
        problems.extend(Problem(file, _task_line(node, message), message) for message in found)
        if not found:
            if registry is not None:
                schedule = schedule.model_copy(
                    update={"workflow": resolve_options(schedule.workflow, registry)}
                )
            loaded.append(LoadedSchedule(schedule, file, line))
    # A file with any problem (a duplicate key, say) is not loaded in part.
    return (loaded if not problems else []), problems


def _workflow_alone(raw: dict[str, Any]) -> WorkflowSpec | None:
    workflow = raw.get("workflow")
    if not isinstance(workflow, dict):
        return None
    try:
        return WorkflowSpec.model_validate({"name": str(raw.get("name", "schedule")), **workflow})
    except ValidationError:
        return None


def _semantic_problems(
    schedule: Schedule, registry: Registry | None, known: Collection[str] | None
) -> list[str]:
    """The workflow's own problems, and references a schedule can never fill."""
    problems = check_spec(schedule.workflow, registry, known=known)
    for task in schedule.workflow.tasks:
        for match in REFERENCE.finditer(json.dumps(task.params)):
            namespace, _, key = match.group(1).partition(".")
            if match.group(2) is not None:
                continue
            if namespace == "event" and schedule.trigger.kind != "event":
                problems.append(
                    f"task {task.name!r} references ${{{match.group(1)}}} but the schedule is not "
                    "triggered by an event"
                )
            elif namespace == "params" and key.split(".")[0] not in {*schedule.workflow.params, *FIRE_PARAMS}:
                problems.append(
                    f"task {task.name!r} references ${{{match.group(1)}}} but workflow.params has no "
                    f"{key.split('.')[0]!r} (a fire adds {', '.join(FIRE_PARAMS)})"
                )
    return problems


def _from_validation(file: Path, root: Node, prefix: tuple[Any, ...], exc: ValidationError) -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = prefix + tuple(err["loc"])
        where = ".".join(str(p) for p in loc) or "(top)"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = f"unknown key {loc[-1]!r}"
            where = ".".join(str(p) for p in loc[:-1]) or "(top)"
        problems.append(Problem(file, _line(_node_at(root, loc)), f"{where}: {message}"))
    return problems


def _child(node: Node | None, key: Any) -> Node | None:
    """The value node under a mapping key or at a sequence index, or None."""
    if isinstance(node, MappingNode):
        for k, v in node.value:
            if isinstance(k, ScalarNode) and k.value == str(key):
                return v
    elif isinstance(node, SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
        return node.value[key]
    return None


def _node_at(root: Node, loc: tuple[Any, ...]) -> Node:
    """The deepest node along ``loc``; for a missing key, the mapping that lacks it."""
    node = root
    for part in loc:
        child = _child(node, part)
        if child is None:
            break
        node = child
    return node


def _line(node: Node | None) -> int:
    return node.start_mark.line + 1 if node is not None else 0


def _task_line(schedule_node: Node | None, message: str) -> int:
    """The line of the task a problem names, else of the workflow's tasks, else of the schedule."""
    tasks = _child(_child(schedule_node, "workflow"), "tasks")
    match = TASK_NAMED.search(message) or CYCLE.match(message)
    if match and isinstance(tasks, SequenceNode):
        for task in tasks.value:
            name = _child(task, "name")
            if isinstance(name, ScalarNode) and name.value == match.group(1):
                return _line(task)
    return _line(tasks or schedule_node)


def _duplicate_keys(node: Node) -> list[tuple[int, str]]:
    """YAML lets a later key silently replace an earlier one; report that instead."""
    found: list[tuple[int, str]] = []
    if isinstance(node, MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            if isinstance(key, ScalarNode):
                if key.value in seen:
                    found.append(
                        (_line(key), f"duplicate key {key.value!r} (first on line {seen[key.value]})")
                    )
                seen.setdefault(key.value, _line(key))
            found.extend(_duplicate_keys(value))
    elif isinstance(node, SequenceNode):
        for item in node.value:
            found.extend(_duplicate_keys(item))
    return found
