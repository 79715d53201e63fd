"""`contimg calibrate`: solve calibration on a calibrator transit, apply caltables to a target."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from absurd.cli.toolkit import Dsn
from absurd.errors import UsageError
from contimg.cli.base import science_app
from contimg.cli.queued import Direct, TimeoutOpt, Wait, run_and_print
from science.casa_env import default_log_dir

app = science_app(
    help="Solve and apply bandpass/gain calibration with CASA, as solve-calibration and apply-calibration "
    "tasks on the queue (--direct: in this process)."
)

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
    direct: Direct = False,
    wait: Wait = True,
    timeout_s: TimeoutOpt = 7200.0,
    dsn: Dsn = None,
) -> None:
    """Find the calibrator in the beam, solve, check QA and print the result as JSON. Queued, the
    solve-calibration task records the caltables (products.caltables), which apply-calibration uses."""
    from science.calibrate import VALIDITY_HOURS, RefantPolicy, solve_calibration
    from science.calibrators import read_vla_list

    if mode not in ("full", "bandpass"):
        raise UsageError(f"--mode must be 'full' or 'bandpass', not {mode!r}")
    if not direct:
        values = {
            "ms_path": ms.resolve(),
            "caltable_dir": out_dir.resolve(),
            "mode": mode,
            "refant": refant,
            "refant_policy": refant_policy,
            "gain_solint": gain_solint,
            "calibrator_list": vla_list.resolve() if vla_list else None,
            "log_dir": log_dir.resolve() if log_dir else None,
        }
        if validity_hours is not None:
            values["validity_hours"] = validity_hours
        run_and_print("solve-calibration", values, dsn, wait, timeout_s)
        return
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
    caltables: Annotated[
        list[Path] | None,
        typer.Argument(help="With --direct: the caltables to apply, in order. Queued: none (see above)."),
    ] = None,
    max_age_hours: Annotated[
        float | None,
        typer.Option(
            "--max-age-hours", help="Queued: the oldest solve before the MS to use; default: the task's."
        ),
    ] = None,
    wait_timeout_s: Annotated[
        float | None,
        typer.Option(
            "--wait-timeout-s", help="Queued: how long the task waits for a solve; default: the task's."
        ),
    ] = None,
    log_dir: LogDirOpt = None,
    direct: Direct = False,
    wait: Wait = True,
    timeout_s: TimeoutOpt = 7200.0,
    dsn: Dsn = None,
) -> None:
    """Apply calibration into CORRECTED_DATA and print the result as JSON.

    Queued, the apply-calibration task applies the nearest earlier recorded solve that passed QA (the
    MS must be in products.ms_index, as `contimg convert` records it), waiting for one if there is
    none yet. With --direct, the CALTABLES given are applied in this process."""
    from science.applycal import apply_calibration

    if not direct:
        if caltables:
            raise UsageError(
                "caltables are given only with --direct; queued, apply-calibration chooses the recorded "
                "solve itself"
            )
        values: dict[str, object] = {
            "ms_path": ms.resolve(),
            "log_dir": log_dir.resolve() if log_dir else None,
        }
        if max_age_hours is not None:
            values["max_age_hours"] = max_age_hours
        if wait_timeout_s is not None:
            values["wait_timeout_s"] = wait_timeout_s
        run_and_print("apply-calibration", values, dsn, wait, timeout_s)
        return
    if not caltables:
        raise UsageError("--direct needs the caltables to apply, in order, after the MS")
    if max_age_hours is not None or wait_timeout_s is not None:
        raise UsageError("--max-age-hours and --wait-timeout-s choose a recorded solve: drop --direct")
    result = apply_calibration(ms, caltables, log_dir=log_dir or default_log_dir())
    typer.echo(result.model_dump_json(indent=2))
