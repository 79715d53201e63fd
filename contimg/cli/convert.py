"""``contimg convert``: turn groups of UVH5 subband files into Measurement Sets."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from absurd.cli.toolkit import Dsn
from absurd.errors import UsageError
from contimg.cli.base import science_app
from contimg.cli.queued import Direct, TimeoutOpt, Wait, run_and_print, run_tasks
from contimg.tasks.params import ConvertResult
from science.constants import GROUP_TOLERANCE_S
from science.convert import ConversionRecord, IncompletePolicy
from science.errors import GroupNotReadyError, InvalidInputError, MissingSubbandError
from science.grouping import SubbandGroup, find_groups, group_files, parse_subband_path

app = science_app(
    help="Convert DSA-110 UVH5 subband groups (the correlator's layout) to flagged Measurement Sets "
    "phased to the meridian, as convert-uvh5 tasks on the queue (--direct: in this process)."
)

OutputDir = Annotated[Path, typer.Option("--output-dir", help="Directory for the Measurement Sets.")]
Overwrite = Annotated[bool, typer.Option(help="Replace an existing MS of the same group.")]
Rfi = Annotated[
    bool, typer.Option(help="Flag RFI with AOFlagger (NaN, zero and dead-antenna flagging always runs).")
]


@app.command("groups")
def groups(
    input_dir: Annotated[Path, typer.Option("--input-dir", help="Directory of *_sbNN.hdf5 files.")],
    output_dir: OutputDir,
    start_time: Annotated[datetime | None, typer.Option(help="UTC start of the range (inclusive).")] = None,
    end_time: Annotated[datetime | None, typer.Option(help="UTC end of the range (inclusive).")] = None,
    policy: Annotated[str, typer.Option(help="Incomplete groups: wait, skip or flag.")] = "wait",
    tolerance_s: Annotated[float, typer.Option(help="Name-time tolerance of a group.")] = GROUP_TOLERANCE_S,
    overwrite: Overwrite = False,
    rfi: Rfi = True,
    direct: Direct = False,
    wait: Wait = True,
    timeout_s: TimeoutOpt = 7200.0,
    dsn: Dsn = None,
) -> None:
    """Convert every group in a directory and time range; print one JSON line per group.

    Queued, each group to convert is one convert-uvh5 task (its MS recorded in products.ms_index);
    groups whose MS exists (without --overwrite) or that are incomplete under policy wait or skip are
    reported without queueing anything, as a direct run reports them."""
    from science.convert import convert_group, ms_path_for

    if not input_dir.is_dir():
        raise UsageError(f"--input-dir {input_dir}: no such directory")
    chosen = IncompletePolicy(_policy(policy))
    if not rfi and not direct:
        raise UsageError("--no-rfi needs --direct: the convert-uvh5 task always flags RFI")
    failed = 0
    queued: list[SubbandGroup] = []
    for group in find_groups(input_dir, start_time, end_time, tolerance_s):
        outcome: dict[str, object] = {"group_id": group.group_id}
        if ms_path_for(group, output_dir).exists() and not overwrite:
            outcome |= {"status": "exists", "ms_path": str(ms_path_for(group, output_dir))}
        elif not direct and not group.is_complete and chosen is not IncompletePolicy.FLAG:
            status = "waiting" if chosen is IncompletePolicy.WAIT else "skipped"
            outcome |= {"status": status, "missing": group.missing}
        elif not direct:
            queued.append(group)
            continue
        else:
            try:
                outcome |= _described(convert_group(group, output_dir, chosen, overwrite, rfi=rfi))
            except GroupNotReadyError as exc:
                outcome |= {"status": "waiting", "missing": exc.missing}
            except MissingSubbandError as exc:
                outcome |= {"status": "skipped", "missing": exc.missing}
            except InvalidInputError as exc:
                failed += 1
                outcome |= {"status": "failed", "error": str(exc)}
        typer.echo(json.dumps(outcome))
    if queued:
        failed += _convert_queued(queued, output_dir, chosen, overwrite, dsn, wait, timeout_s)
    if failed:
        raise typer.Exit(code=1)


def _described(record: ConversionRecord) -> dict[str, object]:
    """What the groups command prints of a conversion."""
    return {
        "status": record.status,
        "ms_path": str(record.ms_path),
        "phasing": record.phasing.value,
        "flagged_fraction": record.flags.total_fraction if record.flags else None,
        "subbands_flagged": record.subbands_flagged,
        "notes": record.notes,
    }


def _convert_queued(
    groups: list[SubbandGroup],
    output_dir: Path,
    policy: IncompletePolicy,
    overwrite: bool,
    dsn: str | None,
    wait: bool,
    timeout_s: float,
) -> int:
    """One convert-uvh5 task per group, each printed as it ends; the number that failed."""
    values = [
        {
            "input_files": [g.files[i].resolve() for i in sorted(g.files)],
            "output_dir": output_dir.resolve(),
            "policy": policy,
            "overwrite": overwrite,
        }
        for g in groups
    ]
    labels = [{"group_id": g.group_id} for g in groups]
    failed = 0
    for ended in run_tasks("convert-uvh5", values, dsn, wait, timeout_s, labels):
        outcome: dict[str, object] = {"group_id": groups[ended.index].group_id, "task_id": ended.task_id}
        if ended.completed:
            outcome |= _described(ConvertResult.model_validate(ended.result).record)
        else:
            failed += 1
            outcome |= {"status": ended.state, "error": ended.error}
        typer.echo(json.dumps(outcome))
    return failed


@app.command("single")
def single(
    paths: Annotated[list[Path], typer.Argument(help="The subband files of one observation.")],
    output_dir: OutputDir,
    policy: Annotated[str, typer.Option(help="If subbands are missing: skip (fail) or flag.")] = "skip",
    overwrite: Overwrite = False,
    rfi: Rfi = True,
    direct: Direct = False,
    wait: Wait = True,
    timeout_s: TimeoutOpt = 7200.0,
    dsn: Dsn = None,
) -> None:
    """Convert the files of one observation; print its record as JSON (queued: the task's result,
    whose ``record`` is that record)."""
    from science.convert import convert_group, ms_path_for

    parsed = [parse_subband_path(p) for p in paths]
    unnamed = [str(p) for p, f in zip(paths, parsed, strict=True) if f is None]
    if unnamed:
        raise typer.BadParameter(f"not named like YYYY-MM-DDTHH:MM:SS_sbNN.hdf5: {', '.join(unnamed)}")
    found = group_files([f for f in parsed if f is not None])
    if len(found) != 1:
        ids = ", ".join(g.group_id for g in found)
        raise typer.BadParameter(f"the files form {len(found)} groups ({ids}), not one")
    chosen = IncompletePolicy(_policy(policy))
    if direct:
        record = convert_group(found[0], output_dir, chosen, overwrite, rfi=rfi)
        typer.echo(record.model_dump_json())
        return
    if not rfi:
        raise UsageError("--no-rfi needs --direct: the convert-uvh5 task always flags RFI")
    existing = ms_path_for(found[0], output_dir)
    if existing.exists() and not overwrite:
        # Refused here: the task would retry a conversion that cannot succeed.
        raise FileExistsError(f"{existing} already exists; pass --overwrite to replace it")
    values = {
        "input_files": [p.resolve() for p in paths],
        "output_dir": output_dir.resolve(),
        "policy": chosen,
        "overwrite": overwrite,
    }
    run_and_print("convert-uvh5", values, dsn, wait, timeout_s)


def _policy(value: str) -> str:
    allowed = ("wait", "skip", "flag")
    if value not in allowed:
        raise typer.BadParameter(f"policy must be one of {', '.join(allowed)}, not {value!r}")
    return value
