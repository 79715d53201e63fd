"""`contimg mosaic`: combine restored images into a mosaic with an effective-noise map."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from science.constants import PB_CUTOFF
from science.errors import InvalidInputError
from science.mosaic import MosaicMethod, MosaicPlan, build, dry_run

app = typer.Typer(help="Mosaics of restored images.", no_args_is_help=True)


def _fail(message: str) -> typer.Exit:
    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code=1)


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
) -> None:
    """Reproject IMAGES onto a common grid and combine them by --method."""
    try:
        plan = MosaicPlan(
            name=name or output.stem, image_paths=images, method=method, output_path=output, pb_paths=pb
        )
    except ValidationError as exc:
        raise _fail("; ".join(str(err["msg"]) for err in exc.errors())) from None
    console = Console()
    try:
        if dry:
            report = dry_run(plan)
            if as_json:
                typer.echo(report.model_dump_json(indent=2))
                return
            console.print(
                f"[bold]{report.name}[/] ({report.method.value}): {len(report.inputs)} inputs -> "
                f"{report.shape[1]}x{report.shape[0]} px at {report.pixel_arcsec:.2f}″, "
                f"{report.width_deg:.3f}°x{report.height_deg:.3f}° centred on "
                f"RA {report.centre_ra_deg:.4f}, Dec {report.centre_dec_deg:+.4f}",
                highlight=False,
            )
            console.print(
                f"would write {report.output_path}, {report.noise_path}, {report.preview_path} "
                f"(~{report.estimated_output_bytes / 1e6:.1f} MB on disk, "
                f"~{report.estimated_memory_bytes / 1e6:.0f} MB memory)",
                highlight=False,
            )
            table = Table("input", "pointing RA", "pointing Dec", "beam (″)", "MJD")
            for inp in report.inputs:
                table.add_row(
                    inp.path,
                    f"{inp.pointing_ra_deg:.4f}",
                    f"{inp.pointing_dec_deg:+.4f}",
                    f"{inp.bmaj_arcsec:.1f}x{inp.bmin_arcsec:.1f} @ {inp.bpa_deg:.0f}°",
                    "-" if inp.mjd is None else f"{inp.mjd:.5f}",
                )
            console.print(table)
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
    except InvalidInputError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(result.model_dump(mode="json"), indent=2))
        return
    console.print(
        f"wrote {result.output_path} ({result.shape[1]}x{result.shape[0]} px, {result.method.value}), "
        f"noise map {result.noise_path}; effective noise min {result.min_noise_jy * 1e3:.3f} "
        f"median {result.median_noise_jy * 1e3:.3f} mJy/beam",
        highlight=False,
    )
