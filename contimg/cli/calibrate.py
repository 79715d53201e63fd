"""`contimg calibrate`: solve calibration on a calibrator transit, apply caltables to a target."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from absurd.errors import UsageError
from contimg.cli.base import science_app
from science.casa_env import default_log_dir

app = science_app(help="Solve and apply bandpass/gain calibration with CASA.")

LogDirOpt = Annotated[Path | None, typer.Option("--log-dir", help="Directory for the CASA log.")]


@app.command("solve")
def solve(
    ms: Annotated[Path, typer.Argument(help="Measurement Set holding a calibrator transit.")],
    out_dir: Annotated[Path, typer.Argument(help="Directory for the caltables and plots.")],
    mode: Annotated[str, typer.Option(help="'full' (bandpass + gains) or 'bandpass'.")] = "full",
    refant: Annotated[str | None, typer.Option(help="Reference antenna; automatic if unset.")] = None,
    refant_policy: Annotated[
        str, typer.Option(help="exclude-outriggers, prefer-outriggers or any.")
    ] = "exclude-outriggers",
    gain_solint: Annotated[str, typer.Option(help="Solution interval of the amplitude+phase gains.")] = "inf",
    validity_hours: Annotated[
        float | None, typer.Option(help="Half-width of the validity window; default: the calibration's.")
    ] = None,
    vla_list: Annotated[
        Path | None,
        typer.Option("--vla-list", help="Search the VLA calibrator list instead of the bundled one."),
    ] = None,
    log_dir: LogDirOpt = None,
) -> None:
    """Find the calibrator in the beam, solve, check QA and print the result as JSON."""
    from science.calibrate import VALIDITY_HOURS, RefantPolicy, solve_calibration
    from science.calibrators import read_vla_list

    if mode not in ("full", "bandpass"):
        raise UsageError(f"--mode must be 'full' or 'bandpass', not {mode!r}")
    chosen: Literal["full", "bandpass"] = "full" if mode == "full" else "bandpass"
    result = solve_calibration(
        ms,
        out_dir,
        log_dir=log_dir or default_log_dir(),
        mode=chosen,
        refant=refant,
        refant_policy=RefantPolicy(refant_policy),
        gain_solint=gain_solint,
        validity_hours=VALIDITY_HOURS if validity_hours is None else validity_hours,
        catalogue=read_vla_list(vla_list) if vla_list else None,
    )
    typer.echo(result.model_dump_json(indent=2))


@app.command("apply")
def apply(
    ms: Annotated[Path, typer.Argument(help="Target Measurement Set.")],
    caltables: Annotated[list[Path], typer.Argument(help="Caltables in the order to apply them.")],
    log_dir: LogDirOpt = None,
) -> None:
    """Apply caltables into CORRECTED_DATA and print the result as JSON."""
    from science.applycal import apply_calibration

    result = apply_calibration(ms, caltables, log_dir=log_dir or default_log_dir())
    typer.echo(result.model_dump_json(indent=2))
