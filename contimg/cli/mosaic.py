"""`contimg mosaic`: combine restored images into a mosaic with an effective-noise map."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.markup import escape

from absurd.cli.toolkit import Dsn, console, emit_json, table
from absurd.errors import UsageError
from contimg.cli.base import science_app
from contimg.cli.queued import Direct, TimeoutOpt, Wait, run_task
from contimg.tasks.params import MosaicOutcome
from science.constants import PB_CUTOFF
from science.mosaic import MosaicMethod, MosaicPlan, MosaicResult, build, dry_run

app = science_app(help="Mosaics of restored images.")


@app.callback()
def _group() -> None:
    """Mosaics of restored images."""


@app.command("build")
def build_command(
    images: Annotated[list[Path], typer.Argument(help="Input FITS images (restored, with beam keywords).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Mosaic FITS to write.")],
    method: Annotated[MosaicMethod, typer.Option("--method", "-m", help="How to combine overlaps.")] = (
        MosaicMethod.WEIGHTED
    ),
    pb: Annotated[
        list[Path] | None, typer.Option("--pb", help="Primary-beam image per input, in order (pbweighted).")
    ] = None,
    pb_cutoff: Annotated[
        float, typer.Option("--pb-cutoff", min=0.0, max=1.0, help="Drop pixels below this PB response.")
    ] = PB_CUTOFF,
    name: Annotated[
        str | None, typer.Option("--name", help="Mosaic name (default: output file stem).")
    ] = None,
    dry: Annotated[
        bool, typer.Option("--dry-run", help="Report the grid and inputs; write nothing.")
    ] = False,
    no_preview: Annotated[bool, typer.Option("--no-preview", help="Skip the PNG preview.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    direct: Direct = False,
    wait: Wait = True,
    timeout_s: TimeoutOpt = 7200.0,
    dsn: Dsn = None,
) -> None:
    """Reproject IMAGES onto a common grid and combine them by --method.

    Queued, a create-mosaic task builds it and records it in products.mosaics; --dry-run only reads
    the inputs and queues nothing."""
    try:
        plan = MosaicPlan(
            name=name or output.stem,
            image_paths=[p if direct else p.resolve() for p in images],
            method=method,
            output_path=output if direct else output.resolve(),
            pb_paths=[p if direct else p.resolve() for p in pb] if pb else pb,
        )
    except ValidationError as exc:
        raise UsageError("; ".join(str(err["msg"]) for err in exc.errors())) from None
    if dry:
        report = dry_run(plan)
        if as_json:
            typer.echo(report.model_dump_json(indent=2))
            return
        console.print(
            f"[bold]{escape(report.name)}[/] ({report.method.value}): {len(report.inputs)} inputs -> "
            f"{report.shape[1]}x{report.shape[0]} px at {report.pixel_arcsec:.2f}″, "
            f"{report.width_deg:.3f}°x{report.height_deg:.3f}° centred on "
            f"RA {report.centre_ra_deg:.4f}, Dec {report.centre_dec_deg:+.4f}"
        )
        console.print(
            f"would write {escape(str(report.output_path))}, {escape(str(report.noise_path))}, "
            f"{escape(str(report.preview_path))} (~{report.estimated_output_bytes / 1e6:.1f} MB on disk, "
            f"~{report.estimated_memory_bytes / 1e6:.0f} MB memory)"
        )
        table(
            None,
            ["input", "pointing RA", "pointing Dec", "beam (″)", "MJD"],
            [
                [
                    inp.path,
                    f"{inp.pointing_ra_deg:.4f}",
                    f"{inp.pointing_dec_deg:+.4f}",
                    f"{inp.bmaj_arcsec:.1f}x{inp.bmin_arcsec:.1f} @ {inp.bpa_deg:.0f}°",
                    None if inp.mjd is None else f"{inp.mjd:.5f}",
                ]
                for inp in report.inputs
            ],
        )
        return
    if not direct:
        if pb_cutoff != PB_CUTOFF:
            raise UsageError(
                f"--pb-cutoff needs --direct: the create-mosaic task uses the default {PB_CUTOFF:g}"
            )
        values = {"plan": plan.model_dump(mode="json"), "preview": not no_preview}
        outcome = run_task("create-mosaic", values, dsn, wait, timeout_s)
        if outcome is not None:
            _show(MosaicOutcome.model_validate(outcome).mosaic, as_json)
        return
    result = build(
        plan.image_paths,
        plan.method,
        plan.output_path,
        pb_images=plan.pb_paths,
        pb_cutoff=pb_cutoff,
        name=plan.name,
        preview=not no_preview,
    )
    _show(result, as_json)


def _show(result: MosaicResult, as_json: bool) -> None:
    if as_json:
        emit_json(result.model_dump(mode="json"))
        return
    console.print(
        f"wrote {escape(str(result.output_path))} ({result.shape[1]}x{result.shape[0]} px, "
        f"{result.method.value}), noise map {escape(str(result.noise_path))}; effective noise min "
        f"{result.min_noise_jy * 1e3:.3f} median {result.median_noise_jy * 1e3:.3f} mJy/beam"
    )
