"""``contimg convert``: turn groups of UVH5 subband files into Measurement Sets."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from absurd.errors import UsageError
from contimg.cli.base import science_app
from science.constants import GROUP_TOLERANCE_S
from science.errors import GroupNotReadyError, InvalidInputError, MissingSubbandError
from science.grouping import find_groups, group_files, parse_subband_path

app = science_app(
    help="Convert DSA-110 UVH5 subband groups (the correlator's layout) to flagged Measurement Sets "
    "phased to the meridian."
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
) -> None:
    """Convert every group in a directory and time range; print one JSON line per group."""
    from science.convert import IncompletePolicy, convert_group, ms_path_for

    if not input_dir.is_dir():
        raise UsageError(f"--input-dir {input_dir}: no such directory")
    chosen = _policy(policy)
    failed = 0
    for group in find_groups(input_dir, start_time, end_time, tolerance_s):
        outcome: dict[str, object] = {"group_id": group.group_id}
        if ms_path_for(group, output_dir).exists() and not overwrite:
            outcome |= {"status": "exists", "ms_path": str(ms_path_for(group, output_dir))}
        else:
            try:
                record = convert_group(group, output_dir, IncompletePolicy(chosen), overwrite, rfi=rfi)
                outcome |= {
                    "status": record.status,
                    "ms_path": str(record.ms_path),
                    "phasing": record.phasing.value,
                    "flagged_fraction": record.flags.total_fraction if record.flags else None,
                    "subbands_flagged": record.subbands_flagged,
                    "notes": record.notes,
                }
            except GroupNotReadyError as exc:
                outcome |= {"status": "waiting", "missing": exc.missing}
            except MissingSubbandError as exc:
                outcome |= {"status": "skipped", "missing": exc.missing}
            except InvalidInputError as exc:
                failed += 1
                outcome |= {"status": "failed", "error": str(exc)}
        typer.echo(json.dumps(outcome))
    if failed:
        raise typer.Exit(code=1)


@app.command("single")
def single(
    paths: Annotated[list[Path], typer.Argument(help="The subband files of one observation.")],
    output_dir: OutputDir,
    policy: Annotated[str, typer.Option(help="If subbands are missing: skip (fail) or flag.")] = "skip",
    overwrite: Overwrite = False,
    rfi: Rfi = True,
) -> None:
    """Convert the files of one observation; print its record as JSON."""
    from science.convert import IncompletePolicy, convert_group

    parsed = [parse_subband_path(p) for p in paths]
    unnamed = [str(p) for p, f in zip(paths, parsed, strict=True) if f is None]
    if unnamed:
        raise typer.BadParameter(f"not named like YYYY-MM-DDTHH:MM:SS_sbNN.hdf5: {', '.join(unnamed)}")
    found = group_files([f for f in parsed if f is not None])
    if len(found) != 1:
        ids = ", ".join(g.group_id for g in found)
        raise typer.BadParameter(f"the files form {len(found)} groups ({ids}), not one")
    record = convert_group(found[0], output_dir, IncompletePolicy(_policy(policy)), overwrite, rfi=rfi)
    typer.echo(record.model_dump_json())


def _policy(value: str) -> str:
    allowed = ("wait", "skip", "flag")
    if value not in allowed:
        raise typer.BadParameter(f"policy must be one of {', '.join(allowed)}, not {value!r}")
    return value
