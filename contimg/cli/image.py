"""`contimg image`: image a calibrated Measurement Set with WSClean or tclean."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from absurd.cli.toolkit import Dsn
from contimg.cli.base import science_app
from contimg.cli.queued import Direct, TimeoutOpt, Wait, run_and_print
from science.casa_env import default_log_dir
from science.imaging import ImagingParams

# The command line's defaults are the imaging defaults, which bench/accuracy.py measures.
_DEFAULT = {name: field.default for name, field in ImagingParams.model_fields.items()}

app = science_app(help="Make continuum images from calibrated Measurement Sets.")


@app.callback()
def _group() -> None:
    """Make continuum images from calibrated Measurement Sets."""


@app.command("create")
def create(
    ms: Annotated[Path, typer.Argument(help="Measurement Set with CORRECTED_DATA.")],
    out_dir: Annotated[Path, typer.Argument(help="Directory for the FITS products and preview.")],
    name: Annotated[str | None, typer.Option(help="Output name stem (default: the MS name).")] = None,
    imager: Annotated[str, typer.Option(help="auto, wsclean or tclean.")] = _DEFAULT["imager"],
    imsize: Annotated[
        int | None, typer.Option(help="Image width in pixels (default: enough to cover --fov-deg).")
    ] = _DEFAULT["imsize"],
    cell: Annotated[
        float | None,
        typer.Option(help="Pixel size in arcsec (default: a quarter of the expected beam minor axis)."),
    ] = _DEFAULT["cell_arcsec"],
    fov_deg: Annotated[
        float, typer.Option(help="Image width in degrees, when --imsize is not given.")
    ] = _DEFAULT["fov_deg"],
    robust: Annotated[float, typer.Option(help="Briggs robust weighting.")] = _DEFAULT["robust"],
    niter: Annotated[int, typer.Option(help="Maximum CLEAN iterations.")] = _DEFAULT["niter"],
    threshold: Annotated[float, typer.Option(help="CLEAN threshold in Jy (0: none).")] = _DEFAULT[
        "threshold_jy"
    ],
    nsigma: Annotated[
        float, typer.Option(help="Stop CLEAN at this many times the noise (inside the mask).")
    ] = _DEFAULT["nsigma"],
    auto_mask: Annotated[
        float, typer.Option(help="Build a clean mask from emission above this many sigma (0: no mask).")
    ] = _DEFAULT["auto_mask_sigma"],
    mgain: Annotated[
        float, typer.Option(help="WSClean: fraction of the peak cleaned per major cycle.")
    ] = _DEFAULT["mgain"],
    multiterm: Annotated[
        bool, typer.Option(help="Fit a spectral slope across the band (tclean: only with mtmfs).")
    ] = _DEFAULT["multiterm"],
    tclean_deconvolver: Annotated[
        str, typer.Option(help="tclean's minor cycle: hogbom, or mtmfs (diverged on sparse snapshots).")
    ] = _DEFAULT["tclean_deconvolver"],
    pbcor: Annotated[bool, typer.Option(help="Write primary-beam and pb-corrected images.")] = _DEFAULT[
        "pbcor"
    ],
    log_dir: Annotated[Path | None, typer.Option("--log-dir", help="Directory for imager logs.")] = None,
    direct: Direct = False,
    wait: Wait = True,
    timeout_s: TimeoutOpt = 7200.0,
    dsn: Dsn = None,
) -> None:
    """Image one MS as a create-image task (recorded in products.images) and print its result (paths,
    noise, beam, peak) as JSON; --direct images it in this process."""
    from science.imaging import create_image

    imaging = {
        "imager": imager,
        "imsize": imsize,
        "cell_arcsec": cell,
        "fov_deg": fov_deg,
        "robust": robust,
        "niter": niter,
        "threshold_jy": threshold,
        "nsigma": nsigma,
        "auto_mask_sigma": auto_mask,
        "mgain": mgain,
        "multiterm": multiterm,
        "tclean_deconvolver": tclean_deconvolver,
        "pbcor": pbcor,
    }
    if not direct:
        values = {
            "ms_path": ms.resolve(),
            "output_dir": out_dir.resolve(),
            "name": name,
            "imaging": imaging,
            "log_dir": log_dir.resolve() if log_dir else None,
        }
        run_and_print("create-image", values, dsn, wait, timeout_s)
        return
    params = ImagingParams.model_validate(imaging)
    result = create_image(ms, out_dir, log_dir=log_dir or default_log_dir(), name=name, params=params)
    typer.echo(result.model_dump_json(indent=2))
