"""Submitting a reprocessing run: find the observations in a range, submit each one's workflow once.

Each observation (and each night's mosaic) is submitted in its own transaction, which records the
steps it submitted (``products.reprocess_steps``) together with the workflow. A rerun, a resume after
the command was killed, or a second command at the same time therefore skips what is recorded; with
``force`` the run makes the next product version instead (``<group>.vN.ms`` and its images).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from absurd.client import Client
from contimg.reprocess import workflow
from contimg.store import products, reprocess
from science.convert import IncompletePolicy, ms_path_for
from science.grouping import SubbandGroup, find_groups

log = structlog.get_logger(__name__)

# Below streaming's 0 (with the chain's steps at -10 to -4): on the queues they share, a night's live
# data are claimed first.
DEFAULT_PRIORITY = -10
# A night's mosaic takes the images whose mid-time lies within this of its observations' group times.
MOSAIC_MARGIN = timedelta(minutes=10)


class ReprocessRequest(BaseModel):
    """What ``contimg reprocess`` was asked to do; stored with the run, so a resume repeats it."""

    model_config = ConfigDict(extra="forbid")
    input_dir: Path
    output_dir: Path
    start: datetime
    end: datetime
    steps: list[str] = Field(min_length=1)
    priority: int = Field(DEFAULT_PRIORITY, ge=-(2**31), le=2**31 - 100)
    force: bool = False
    catalogue: Path | None = None
    incomplete: IncompletePolicy = IncompletePolicy.FLAG
    overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)
    schedule: Path = workflow.STREAMING_SCHEDULES
    night_poll_s: float = Field(30.0, gt=0)

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    @field_validator("input_dir", "output_dir", "catalogue", "schedule")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        # Workers on other hosts read these paths: they must not depend on this shell's directory.
        return value.resolve() if value is not None else None

    @model_validator(mode="after")
    def _range(self) -> ReprocessRequest:
        if self.end < self.start:
            raise ValueError(
                f"--end {self.end:%Y-%m-%dT%H:%M:%S} is before --start {self.start:%Y-%m-%dT%H:%M:%S}"
            )
        return self

    def request_key(self) -> str | None:
        """The key that makes the same request resume its run; None for --force (always a new run)."""
        if self.force:
            return None
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class Submission:
    """What one pass of submission did."""

    run_id: int
    new_run: bool
    observations: int = 0
    submitted: int = 0
    skipped: int = 0
    deferred: list[str] = field(default_factory=list)
    # Observations not submitted because earlier steps they need did not complete: unit → step → why.
    missing: dict[str, dict[str, str]] = field(default_factory=dict)
    mosaics: int = 0


def check_request(request: ReprocessRequest, base: workflow.WorkflowSpec) -> None:
    """Raise ValueError naming the problem when the request cannot run."""
    known = workflow.all_steps(base)
    unknown = [s for s in request.steps if s not in known]
    if unknown:
        raise ValueError(f"--only: unknown step(s) {', '.join(unknown)}; the steps are {', '.join(known)}")
    unknown_overrides = [s for s in request.overrides if s not in known]
    if unknown_overrides:
        raise ValueError(
            f"--set: unknown step(s) {', '.join(unknown_overrides)}; the steps are {', '.join(known)}"
        )
    if not request.input_dir.is_dir():
        raise ValueError(f"--input-dir {request.input_dir}: no such directory")
    if request.catalogue is not None and not request.catalogue.is_file():
        raise ValueError(f"--catalogue {request.catalogue}: no such file")


def layout(output_dir: Path) -> dict[str, Path]:
    """Where a run's products go under ``--output-dir``."""
    return {name: output_dir / name for name in ("ms", "caltables", "images", "mosaics")}


def _convert_params(group: SubbandGroup, request: ReprocessRequest, version: int) -> dict[str, Any]:
    return {
        "input_files": [str(group.files[i]) for i in sorted(group.files)],
        "output_dir": str(layout(request.output_dir)["ms"]),
        "policy": request.incomplete.value,
        # Only this version's own MS is ever replaced (a retry after a crash mid-write).
        "overwrite": True,
        "version": version,
    }


def _version(conn: Any, run_id: int, unit: str, force: bool) -> int:
    """The version this run makes of ``unit``: the one it chose before, else the newest (or the next)."""
    chosen = reprocess.unit_version(conn, run_id, unit)
    if chosen is not None:
        return chosen
    latest = reprocess.latest_version(conn, unit)
    return (latest or 0) + 1 if force else (latest or 1)


# Results a later step may refer to, rebuilt from the product store once the step's task has been pruned
# (finished tasks are deleted after the pruner's retention): by task type.
RECOVERABLE: dict[str, Callable[[Any, str, int], Any]] = {"create-image": products.image_outcome_of}


@dataclass
class Earlier:
    """What the wanted steps of one observation need of its recorded steps."""

    results: dict[str, Any] = field(default_factory=dict)
    # Recorded steps whose tasks have not finished.
    unfinished: list[str] = field(default_factory=list)
    # Steps that failed or were cancelled, or whose result a wanted step refers to and that were pruned
    # with nothing recorded to rebuild it from: step → why.
    missing: dict[str, str] = field(default_factory=dict)


def _earlier(
    conn: Any,
    unit: str,
    version: int,
    wanted: list[str],
    recorded: dict[str, int],
    base: workflow.WorkflowSpec,
) -> Earlier:
    """Results of recorded steps the wanted ones need, the recorded ones not yet completed, and the results
    that are gone."""
    by_name = {t.name: t for t in base.tasks}
    needed: set[str] = set()
    referenced: set[str] = set()
    for name in wanted:
        task = by_name.get(name)
        if task is not None:
            refers_to = workflow.referenced_steps(task)
            referenced |= refers_to
            needed |= {d.task for d in task.depends_on} | refers_to
    if workflow.CONVERT not in wanted:
        needed.add(workflow.CONVERT)  # every step reads the MS
    earlier = Earlier()
    for step in sorted(needed & recorded.keys()):
        found = reprocess.step_task(conn, recorded[step], step)
        if found is not None and found[0] in ("failed", "cancelled"):
            earlier.missing[step] = found[0]
        elif found is not None and found[0] != "completed":
            earlier.unfinished.append(step)
        elif found is not None:
            earlier.results[step] = found[1]
        elif step in referenced:
            recover = RECOVERABLE.get(by_name[step].type)
            result = recover(conn, unit, version) if recover else None
            if result is None:
                earlier.missing[step] = "pruned from the queue, and no product of it is recorded"
            earlier.results[step] = result
        else:
            earlier.results[step] = None  # pruned: it finished long ago, and nothing refers to its result
    return earlier


def submit_observation(
    client: Client,
    request: ReprocessRequest,
    base: workflow.WorkflowSpec,
    run_id: int,
    group: SubbandGroup,
    outcome: Submission,
) -> None:
    """Submit the steps of one observation not yet submitted, in one transaction."""
    conn = client.conn
    unit = group.group_id
    with conn.transaction():
        version = _version(conn, run_id, unit, request.force)
        reprocess.add_unit(conn, run_id, unit, "observation", group.timestamp.date(), version)
        reprocess.lock_unit(conn, unit, version)
        recorded = reprocess.recorded_steps(conn, unit, version)
        wanted = [s for s in workflow.observation_steps(base) if s in request.steps and s not in recorded]
        ms_path = ms_path_for(group, layout(request.output_dir)["ms"], version)
        if workflow.CONVERT in wanted and products.find_ms(conn, ms_path) is not None:
            # Converted outside reprocessing (by the streaming converter): the MS is there already.
            wanted.remove(workflow.CONVERT)
        if not wanted:
            outcome.skipped += 1
            return
        earlier = _earlier(conn, unit, version, wanted, recorded, base)
        if earlier.unfinished:
            # Its earlier steps are still running in another workflow, which this one cannot wait on.
            outcome.deferred.append(unit)
            return
        if earlier.missing:
            outcome.missing[unit] = earlier.missing
            log.warning("earlier steps did not complete", group=unit, version=version, steps=earlier.missing)
            return
        spec = workflow.observation_workflow(
            base,
            wanted,
            _convert_params(group, request, version),
            request.priority,
            request.overrides,
            earlier.results,
        )
        dirs = layout(request.output_dir)
        params: dict[str, Any] = {"caltable_dir": str(dirs["caltables"]), "image_dir": str(dirs["images"])}
        if request.catalogue is not None:
            params["catalogue"] = str(request.catalogue)
        workflow_id = client.submit_workflow(spec, params, event={"ms_path": str(ms_path)})
        reprocess.record_steps(conn, unit, version, wanted, run_id, workflow_id)
    outcome.submitted += 1
    log.info(
        "observation submitted",
        run_id=run_id,
        group=unit,
        version=version,
        workflow_id=workflow_id,
        steps=wanted,
    )


def submit_mosaic(
    client: Client,
    request: ReprocessRequest,
    run_id: int,
    night: date,
    groups: list[SubbandGroup],
    outcome: Submission,
) -> None:
    """Submit the night's mosaic workflow, once."""
    conn = client.conn
    unit = f"night:{night.isoformat()}"
    steps = [workflow.AWAIT, workflow.MOSAIC]
    with conn.transaction():
        version = _version(conn, run_id, unit, request.force)
        reprocess.add_unit(conn, run_id, unit, "mosaic", night, version)
        reprocess.lock_unit(conn, unit, version)
        if reprocess.recorded_steps(conn, unit, version):
            return
        name = f"night-{night.isoformat()}" + (f".v{version}" if version > 1 else "")
        spec = workflow.mosaic_workflow(
            run_id,
            night,
            min(g.timestamp for g in groups) - MOSAIC_MARGIN,
            max(g.timestamp for g in groups) + MOSAIC_MARGIN,
            name,
            layout(request.output_dir)["mosaics"],
            request.priority,
            request.night_poll_s,
            request.overrides,
        )
        workflow_id = client.submit_workflow(spec)
        reprocess.record_steps(conn, unit, version, steps, run_id, workflow_id)
    outcome.mosaics += 1


def discover(request: ReprocessRequest) -> list[SubbandGroup]:
    """The observation groups named in the input directory within the range, in time order."""
    return find_groups(request.input_dir, request.start, request.end)


def submit_run(client: Client, request: ReprocessRequest, run_id: int | None = None) -> Submission:
    """Open (or resume) the request's run and submit everything not yet submitted."""
    if client.registry is None:
        raise ValueError("reprocessing needs a client with the task registry, to check the workflows")
    base = workflow.streaming_workflow(client.registry, request.schedule)
    check_request(request, base)
    if run_id is None:
        settings = request.model_dump(mode="json")
        with client.conn.transaction():
            run_id, new_run = reprocess.open_run(
                client.conn,
                request.request_key(),
                input_dir=str(request.input_dir),
                output_dir=str(request.output_dir),
                start_time=request.start,
                end_time=request.end,
                steps=request.steps,
                priority=request.priority,
                force=request.force,
                settings=settings,
            )
    else:
        new_run = False
    groups = discover(request)
    outcome = Submission(run_id=run_id, new_run=new_run, observations=len(groups))
    for group in groups:
        run = reprocess.get_run(client.conn, run_id)
        if run is not None and run["cancelled_at"] is not None:
            log.info("run cancelled; submission stops", run_id=run_id)
            return outcome
        submit_observation(client, request, base, run_id, group, outcome)
    if workflow.MOSAIC in request.steps:
        nights: dict[date, list[SubbandGroup]] = {}
        for group in groups:
            nights.setdefault(group.timestamp.date(), []).append(group)
        for night, members in sorted(nights.items()):
            submit_mosaic(client, request, run_id, night, members, outcome)
    reprocess.mark_submitted(client.conn, run_id)
    return outcome


def load_request(client: Client, run_id: int) -> ReprocessRequest:
    """The request a run was started with; LookupError if there is no such run."""
    run = reprocess.get_run(client.conn, run_id)
    if run is None:
        raise LookupError(f"no reprocessing run {run_id}; list them with `contimg reprocess status`")
    return ReprocessRequest.model_validate(run["settings"])
