"""`contimg photometry`: forced photometry at given positions or catalogue sources in one image."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from science.catalogs import CatalogError, SkyPosition, parse_coords, read_catalog, select_bright
from science.constants import PB_CUTOFF
from science.errors import InvalidInputError
from science.fits_image import read_image
from science.photometry import PeakMode, PhotometryOptions, PhotometryResult, measure_many

app = typer.Typer(
    help="Forced photometry at fixed sky positions in an image or mosaic.", no_args_is_help=True
)

FitsOpt = Annotated[Path, typer.Option("--fits", help="Restored image or mosaic (FITS with BMAJ/BMIN/BPA).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the results as JSON instead of a table.")]
PbOpt = Annotated[
    Path | None, typer.Option("--pb", help="Primary-beam image; positions below --pb-threshold are flagged.")
]
PointingOpt = Annotated[
    str | None,
    typer.Option("--pointing", help="Pointing centre 'ra,dec' (deg) for the Airy primary-beam model."),
]
ThresholdOpt = Annotated[
    float, typer.Option("--pb-threshold", min=0.0, max=1.0, help="Flag below this primary-beam response.")
]
PeakModeOpt = Annotated[
    PeakMode, typer.Option("--peak-mode", help="Peak at the nearest pixel, or the maximum within the beam.")
]


def _fail(message: str) -> typer.Exit:
    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code=1)


def _options(
    pb: Path | None, pointing: str | None, pb_threshold: float, peak_mode: PeakMode
) -> PhotometryOptions:
    ra = dec = None
    if pointing is not None:
        centre = parse_coords(pointing)
        if len(centre) != 1:
            raise CatalogError(f"--pointing {pointing!r}: give one 'ra,dec' pair")
        ra, dec = centre[0].ra_deg, centre[0].dec_deg
    return PhotometryOptions(
        pb_image=pb, pointing_ra_deg=ra, pointing_dec_deg=dec, pb_threshold=pb_threshold, peak_mode=peak_mode
    )


def _fmt(value: float | None, scale: float = 1e3, digits: int = 3) -> str:
    return "-" if value is None else f"{value * scale:.{digits}f}"


def _show(results: list[PhotometryResult], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in results], indent=2))
        return
    table = Table(title=results[0].image_path if results else None)
    for column in ("name", "RA (deg)", "Dec (deg)", "peak (mJy/bm)", "flux (mJy)", "± (mJy)", "rms (mJy)"):
        table.add_column(column, justify="left" if column == "name" else "right")
    table.add_column("SNR", justify="right")
    table.add_column("flags")
    for r in results:
        table.add_row(
            r.name,
            f"{r.ra_deg:.5f}",
            f"{r.dec_deg:+.5f}",
            _fmt(r.peak_jy),
            _fmt(r.flux_jy),
            _fmt(r.flux_err_jy),
            _fmt(r.local_rms_jy),
            _fmt(r.snr, 1.0, 1),
            ",".join(f.value for f in r.flags),
        )
    Console().print(table)


def _run(fits_path: Path, positions: list[SkyPosition], options: PhotometryOptions, as_json: bool) -> None:
    image = read_image(fits_path)
    _show(measure_many(image, positions, options), as_json)


@app.command("peak")
def peak(
    fits_path: FitsOpt,
    ra: Annotated[float, typer.Option("--ra", help="Right ascension, degrees.")],
    dec: Annotated[float, typer.Option("--dec", help="Declination, degrees.")],
    name: Annotated[str, typer.Option("--name", help="Label for the position.")] = "target",
    as_json: JsonOpt = False,
    pb: PbOpt = None,
    pointing: PointingOpt = None,
    pb_threshold: ThresholdOpt = PB_CUTOFF,
    peak_mode: PeakModeOpt = PeakMode.NEAREST,
) -> None:
    """Measure one position: peak, beam-weighted flux, local rms and SNR."""
    try:
        position = SkyPosition(name=name, ra_deg=ra, dec_deg=dec)
    except ValueError:
        raise _fail(f"--ra {ra} --dec {dec}: RA must be in [0, 360) and Dec in [-90, 90] degrees") from None
    try:
        _run(fits_path, [position], _options(pb, pointing, pb_threshold, peak_mode), as_json)
    except InvalidInputError as exc:
        raise _fail(str(exc)) from None


@app.command("peak-many")
def peak_many(
    fits_path: FitsOpt,
    coords: Annotated[str, typer.Option("--coords", help="Positions as 'ra,dec; ra,dec' in degrees.")],
    as_json: JsonOpt = False,
    pb: PbOpt = None,
    pointing: PointingOpt = None,
    pb_threshold: ThresholdOpt = PB_CUTOFF,
    peak_mode: PeakModeOpt = PeakMode.NEAREST,
) -> None:
    """Measure several positions given on the command line."""
    try:
        positions = parse_coords(coords)
        _run(fits_path, positions, _options(pb, pointing, pb_threshold, peak_mode), as_json)
    except InvalidInputError as exc:
        raise _fail(str(exc)) from None


@app.command("catalog")
def catalog(
    fits_path: FitsOpt,
    catalog_path: Annotated[
        Path, typer.Option("--catalog", help="Monitoring-source CSV (name,ra_deg,dec_deg,...).")
    ],
    min_mjy: Annotated[
        float | None, typer.Option("--min-mjy", help="Only catalogue sources with flux_mjy at least this.")
    ] = None,
    as_json: JsonOpt = False,
    pb: PbOpt = None,
    pointing: PointingOpt = None,
    pb_threshold: ThresholdOpt = PB_CUTOFF,
    peak_mode: PeakModeOpt = PeakMode.NEAREST,
) -> None:
    """Measure every source of a monitoring catalogue; those off the image are flagged off_image."""
    try:
        sources = read_catalog(catalog_path)
        if min_mjy is not None:
            sources = select_bright(sources, min_mjy)
        if not sources:
            raise CatalogError(f"{catalog_path}: no catalogue sources left to measure")
        _run(fits_path, list(sources), _options(pb, pointing, pb_threshold, peak_mode), as_json)
    except InvalidInputError as exc:
        raise _fail(str(exc)) from None
