"""``contimg reprocess``: reprocess an archive through the queue; ``status``, ``resume`` and ``cancel``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from absurd.cli.toolkit import (
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    Dsn,
    JsonOut,
    console,
    emit_json,
    fail,
    guarded,
    table,
)
from contimg.cli.base import SCIENCE_ERRORS, science_app

app = science_app(
    help="Reprocess archived subband files through the queue: one workflow per observation (convert → "
    "solve on calibrator transits → apply → image → photometry and source finding → light curves) and "
    "one per night for its mosaic. Rerunning the same command resumes it; nothing is submitted twice."
)

Wait = Annotated[bool, typer.Option("--wait/--no-wait", help="Show the progress until the run has finished.")]
RunId = Annotated[int, typer.Argument(help="The run's id (see `contimg reprocess status`).")]


def _overrides(values: list[str]) -> dict[str, dict[str, Any]]:
    """``STEP.KEY[.KEY...]=YAML`` → {step: nested params}."""
    found: dict[str, dict[str, Any]] = {}
    for item in values:
        path, sep, text = item.partition("=")
        parts = path.split(".")
        if not sep or len(parts) < 2 or not all(parts):
            raise typer.BadParameter(f"--set {item!r}: write STEP.PARAM=VALUE, e.g. image.imaging.imsize=512")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise typer.BadParameter(f"--set {item!r}: the value is not valid YAML") from None
        node = found.setdefault(parts[0], {})
        for key in parts[1:-1]:
            node = node.setdefault(key, {})
        node[parts[-1]] = value
    return found


def _submit(dsn: str | None, request: Any, run_id: int | None, wait: bool) -> None:
    from absurd.client import Client
    from contimg.reprocess.progress import watch
    from contimg.reprocess.submit import submit_run
    from contimg.tasks.registry import registry

    with Client(dsn, registry=registry) as client:
        try:
            outcome = submit_run(client, request, run_id)
        except ValueError as exc:
            raise fail(str(exc), EXIT_USAGE) from None
        verb = "started" if outcome.new_run else "resumed"
        console.print(
            f"run {outcome.run_id} {verb}: {outcome.observations} observations found, "
            f"{outcome.submitted} submitted, {outcome.skipped} already submitted, "
            f"{len(outcome.deferred)} deferred, {len(outcome.missing)} missing earlier steps, "
            f"{outcome.mosaics} mosaic(s) submitted"
        )
        if outcome.deferred:
            console.print(
                "deferred (their earlier steps are still running; run again once they finish): "
                + ", ".join(outcome.deferred)
            )
        missing = _missing(outcome.missing)
        if missing:
            console.print(missing)
        if wait:
            final = watch(client.conn, outcome.run_id, console)
            if final.failed or final.mosaics_failed:
                raise fail(
                    f"run {outcome.run_id}: {final.failed} observation(s) and {final.mosaics_failed} "
                    "mosaic(s) failed; see `absurd dlq list`"
                )
        if missing:
            raise fail(f"run {outcome.run_id}: {len(outcome.missing)} observation(s) not submitted (above)")


def _missing(missing: dict[str, dict[str, str]]) -> str:
    """The observations left out because earlier steps they need did not complete, and what to do."""
    if not missing:
        return ""
    lines = [
        f"not submitted: {len(missing)} observation(s) need earlier steps that did not complete "
        "(retry failed ones from `absurd dlq list` and run again, or make new versions with --force):"
    ]
    lines += [
        f"  {unit}: " + "; ".join(f"{step} {why}" for step, why in steps.items())
        for unit, steps in missing.items()
    ]
    return "\n".join(lines)


def _reprocess(
    ctx: typer.Context,
    input_dir: Annotated[
        Path | None, typer.Option("--input-dir", help="Directory of archived *_sbNN.hdf5 files.")
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option("--output-dir", help="Products go to ms/, caltables/, images/ and mosaics/ under it."),
    ] = None,
    start: Annotated[datetime | None, typer.Option("--start", help="UTC start of the range.")] = None,
    end: Annotated[datetime | None, typer.Option("--end", help="UTC end of the range (inclusive).")] = None,
    only: Annotated[
        str | None,
        typer.Option(
            "--only",
            help="Comma-separated steps to run (convert, solve, calibrate, image, photometry, find, "
            "lightcurves, mosaic); default: all.",
        ),
    ] = None,
    priority: Annotated[
        int,
        typer.Option(
            help="Priority of the first step (later steps get +1 each); streaming runs at 0, so with "
            "the chain below it live data go first."
        ),
    ] = -10,
    force: Annotated[
        bool, typer.Option("--force", help="Make a new product version of every observation (a new run).")
    ] = False,
    catalogue: Annotated[
        Path | None, typer.Option("--catalogue", help="Monitoring catalogue CSV for photometry.")
    ] = None,
    incomplete: Annotated[
        str, typer.Option(help="A group missing subbands: 'flag' converts it, 'skip' fails it.")
    ] = "flag",
    set_params: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a step's param: STEP.PARAM=VALUE (YAML), repeatable."),
    ] = None,
    schedule: Annotated[
        Path | None, typer.Option("--schedule", help="The streaming schedule file whose workflow to run.")
    ] = None,
    night_poll_s: Annotated[
        float, typer.Option(min=0.1, help="How often a night's mosaic looks whether its images are done.")
    ] = 30.0,
    wait: Wait = True,
    dsn: Dsn = None,
) -> None:
    """Submit every observation of --input-dir between --start and --end (and each night's mosaic)."""
    if ctx.invoked_subcommand is not None:
        return
    from pydantic import ValidationError

    from contimg.reprocess.submit import ReprocessRequest
    from contimg.reprocess.workflow import STREAMING_SCHEDULES

    missing = [
        name
        for name, value in (
            ("--input-dir", input_dir),
            ("--output-dir", output_dir),
            ("--start", start),
            ("--end", end),
        )
        if value is None
    ]
    if missing:
        raise fail(f"give {', '.join(missing)} (or a command: status, resume, cancel)", EXIT_USAGE)
    steps = [s.strip() for s in only.split(",") if s.strip()] if only else None
    try:
        request = ReprocessRequest.model_validate(
            {
                "input_dir": input_dir,
                "output_dir": output_dir,
                "start": start,
                "end": end,
                "priority": priority,
                "force": force,
                "catalogue": catalogue,
                "incomplete": incomplete,
                "overrides": _overrides(set_params or []),
                "schedule": schedule or STREAMING_SCHEDULES,
                "night_poll_s": night_poll_s,
                "steps": steps or _all_steps(schedule or STREAMING_SCHEDULES),
            }
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise fail(problems, EXIT_USAGE) from None
    _submit(dsn, request, None, wait)


def _all_steps(schedule: Path) -> list[str]:
    from contimg.reprocess.workflow import all_steps, streaming_workflow
    from contimg.tasks.registry import registry

    return all_steps(streaming_workflow(registry, schedule))


app.callback(invoke_without_command=True)(guarded(_reprocess, SCIENCE_ERRORS))


@app.command("resume")
def resume(run_id: RunId, wait: Wait = True, dsn: Dsn = None) -> None:
    """Submit what a run has not submitted yet (after the command was interrupted), with its settings."""
    from absurd.client import Client
    from contimg.reprocess.submit import load_request
    from contimg.store import reprocess

    with Client(dsn) as client:
        try:
            request = load_request(client, run_id)
        except LookupError as exc:
            raise fail(str(exc), EXIT_NOT_FOUND) from None
        reprocess.reopen_run(client.conn, run_id)
    _submit(dsn, request, run_id, wait)


@app.command("status")
def status(
    run_id: Annotated[int | None, typer.Argument(help="A run's id; default: list the runs.")] = None,
    dsn: Dsn = None,
    as_json: JsonOut = False,
) -> None:
    """A run's progress (observations done, failed, in flight, rate, time left), or the list of runs."""
    from absurd.database import connect, resolve_dsn
    from contimg.reprocess.progress import render, run_progress
    from contimg.store import reprocess

    with connect(resolve_dsn(dsn)) as conn:
        if run_id is None:
            runs = reprocess.list_runs(conn)
            rows = [
                [
                    r["id"],
                    f"{r['start_time']:%Y-%m-%dT%H:%M}",
                    f"{r['end_time']:%Y-%m-%dT%H:%M}",
                    ",".join(r["steps"]),
                    r["priority"],
                    "yes" if r["force"] else "",
                    r["input_dir"],
                    "cancelled"
                    if r["cancelled_at"]
                    else ("submitted" if r["submitted_at"] else "submitting"),
                ]
                for r in runs
            ]
            if as_json:
                emit_json(runs)
                return
            table(
                "reprocessing runs",
                ["id", "start", "end", "steps", "priority", "force", "input", "state"],
                rows,
            )
            return
        try:
            progress = run_progress(conn, run_id)
        except LookupError as exc:
            raise fail(str(exc), EXIT_NOT_FOUND) from None
    if as_json:
        emit_json(progress.model_dump(mode="json"))
        return
    console.print(render(progress))


@app.command("cancel")
def cancel(run_id: RunId, dsn: Dsn = None) -> None:
    """Cancel every unfinished task of a run; `resume` submits what it had not submitted yet."""
    from absurd.client import Client
    from contimg.store import reprocess

    with Client(dsn) as client:
        if reprocess.get_run(client.conn, run_id) is None:
            raise fail(
                f"no reprocessing run {run_id}; list them with `contimg reprocess status`", EXIT_NOT_FOUND
            )
        # Stamped first: a submission still going sees it, and its workflows below are cancelled.
        reprocess.mark_cancelled(client.conn, run_id)
        cancelled = sum(client.cancel_workflow(w) for w in reprocess.run_workflows(client.conn, run_id))
    console.print(f"run {run_id} cancelled: {cancelled} task(s) cancelled or asked to stop")
