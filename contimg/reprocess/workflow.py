"""The workflows of a reprocessing run, built from the streaming pipeline's own workflow.

An observation's workflow is the ``stream-imaging`` workflow of ``schedules/streaming.yaml`` (solve on
calibrator transits → apply → image → photometry and source finding → light curves) with a ``convert``
step in front: the Measurement Set's path is known before conversion, so it fills the streaming
workflow's ``${event.ms_path}`` as the ``new_ms`` event would. A night's mosaic workflow waits for the
night's observation workflows (``await-night``), then builds the mosaic of the images in its range.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

from absurd.registry import Registry
from absurd.schedules.loader import load_paths
from absurd.workflow_spec import REFERENCE, TaskSpec, WorkflowSpec

REPO = Path(__file__).resolve().parents[2]
STREAMING_SCHEDULES = REPO / "schedules" / "streaming.yaml"
STREAMING_WORKFLOW = "stream-imaging"

CONVERT = "convert"
AWAIT = "await"
MOSAIC = "mosaic"
OBSERVATION_WORKFLOW = "reprocess-observation"
MOSAIC_WORKFLOW = "reprocess-mosaic"


class WorkflowError(ValueError):
    """The streaming workflow, or the steps asked of it, cannot make a reprocessing workflow."""


def streaming_workflow(registry: Registry, path: Path = STREAMING_SCHEDULES) -> WorkflowSpec:
    """The ``stream-imaging`` schedule's workflow from ``path``, validated against ``registry``."""
    loaded, problems = load_paths([path], registry)
    if problems:
        raise WorkflowError(f"{path}: " + "; ".join(map(str, problems)))
    for item in loaded:
        if item.schedule.name == STREAMING_WORKFLOW:
            return item.schedule.workflow
    raise WorkflowError(f"{path}: no schedule named {STREAMING_WORKFLOW!r}")


def observation_steps(base: WorkflowSpec) -> list[str]:
    """The step names of an observation's workflow, in order: convert, then the streaming steps."""
    return [CONVERT, *(t.name for t in base.tasks)]


def all_steps(base: WorkflowSpec) -> list[str]:
    """Every step ``--only`` may name."""
    return [*observation_steps(base), MOSAIC]


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def fill_results(value: Any, results: dict[str, Any]) -> Any:
    """Replace ``${STEP.result.PATH}`` references to steps in ``results`` (finished earlier, in another
    workflow) with the values they point at; other references are left for the database."""
    if isinstance(value, dict):
        return {k: fill_results(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [fill_results(v, results) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value

    def lookup(match: re.Match[str]) -> Any:
        current = results[match.group(1)]
        for part in (match.group(3) or "").split(".")[1:]:
            if not isinstance(current, dict) or part not in current:
                raise WorkflowError(f"the earlier {match.group(1)!r} step's result has no {match.group(3)}")
            current = current[part]
        return current

    whole = REFERENCE.fullmatch(value)
    if whole and whole.group(2) == "result" and whole.group(1) in results:
        return lookup(whole)
    return REFERENCE.sub(
        lambda m: str(lookup(m)) if m.group(2) == "result" and m.group(1) in results else m.group(0), value
    )


def referenced_steps(task: TaskSpec) -> set[str]:
    """The steps whose results ``task``'s params refer to."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str):
            found.update(m.group(1) for m in REFERENCE.finditer(value) if m.group(2) == "result")

    walk(task.params)
    return found


def observation_workflow(
    base: WorkflowSpec,
    steps: list[str],
    convert_params: dict[str, Any],
    priority: int,
    overrides: dict[str, dict[str, Any]],
    earlier_results: dict[str, Any],
) -> WorkflowSpec:
    """One observation's workflow holding ``steps`` only.

    A step's dependency on a step left out was met by an earlier workflow: the edge is dropped and
    references to that step's result take ``earlier_results``. The n-th step of the chain runs at
    ``priority + n`` (convert at ``priority``).
    """
    convert = TaskSpec(name=CONVERT, type="convert-uvh5", params=convert_params)
    # The streaming workflow's first steps start on the new MS: here they wait for its conversion.
    streaming = [
        t if t.depends_on else TaskSpec.model_validate({**t.model_dump(), "depends_on": [CONVERT]})
        for t in base.tasks
    ]
    tasks = []
    for depth, task in enumerate([convert, *streaming]):
        if task.name not in steps:
            continue
        params = fill_results(_merge(task.params, overrides.get(task.name, {})), earlier_results)
        kept = [d for d in task.depends_on if d.task in steps]
        # Later steps a little ahead of earlier ones: observations are finished one after another
        # rather than every conversion first (which would fill the disk with MSs before any image).
        update = {"params": params, "depends_on": kept, "priority": priority + depth}
        tasks.append(task.model_copy(update=update))
    return base.model_copy(update={"name": OBSERVATION_WORKFLOW, "tasks": tasks})


def mosaic_workflow(
    run_id: int,
    night: date,
    start: datetime,
    end: datetime,
    name: str,
    output_dir: Path,
    priority: int,
    poll_s: float,
    overrides: dict[str, dict[str, Any]],
) -> WorkflowSpec:
    """A night's mosaic: wait for the night's observation workflows, then mosaic its images."""
    tasks = [
        TaskSpec(
            name=AWAIT,
            type="await-night",
            params={"run_id": run_id, "night": night.isoformat(), "poll_s": poll_s},
            priority=priority,
        ),
        TaskSpec.model_validate(
            {
                "name": MOSAIC,
                "type": "create-mosaic",
                "params": _merge(
                    {
                        "name": name,
                        "start": start.isoformat(),
                        "end": end.isoformat(),
                        "output_dir": str(output_dir),
                    },
                    overrides.get(MOSAIC, {}),
                ),
                "depends_on": [AWAIT],
                "priority": priority,
            }
        ),
    ]
    return WorkflowSpec(name=MOSAIC_WORKFLOW, tasks=tasks)
