"""`contimg photometry`: forced photometry at given positions or catalogue sources in one image."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from absurd.cli.toolkit import cell, console, emit_json, fixed
from contimg.cli.base import science_app
from science.catalogs import CatalogError, SkyPosition, parse_coords, read_catalog, select_bright
from science.constants import PB_CUTOFF
from science.fits_image import read_image
from science.photometry import PeakMode, PhotometryOptions, PhotometryResult, measure_many

MJY = 1e3  # Jy → mJy, as the table shows fluxes

app = science_app(help="Forced photometry at fixed sky positions in an image or mosaic.")

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


def _show(results: list[PhotometryResult], as_json: bool) -> None:
    if as_json:
        emit_json([r.model_dump(mode="json") for r in results])
        return
    table = Table(title=cell(results[0].image_path) if results else None)
    for column in ("name", "RA (deg)", "Dec (deg)", "peak (mJy/bm)", "flux (mJy)", "± (mJy)", "rms (mJy)"):
        table.add_column(column, justify="left" if column == "name" else "right")
    table.add_column("SNR", justify="right")
    table.add_column("flags")
    for r in results:
        table.add_row(
            cell(r.name),
            f"{r.ra_deg:.5f}",
            f"{r.dec_deg:+.5f}",
            fixed(r.peak_jy, MJY),
            fixed(r.flux_jy, MJY),
            fixed(r.flux_err_jy, MJY),
            fixed(r.local_rms_jy, MJY),
            fixed(r.snr, digits=1),
            ",".join(f.value for f in r.flags),
        )
    console.print(table)


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
        raise CatalogError(
            f"--ra {ra} --dec {dec}: RA must be in [0, 360) and Dec in [-90, 90] degrees"
        ) from None
    _run(fits_path, [position], _options(pb, pointing, pb_threshold, peak_mode), as_json)


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
    positions = parse_coords(coords)
    _run(fits_path, positions, _options(pb, pointing, pb_threshold, peak_mode), as_json)


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
    sources = read_catalog(catalog_path)
    if min_mjy is not None:
        sources = select_bright(sources, min_mjy)
    if not sources:
        raise CatalogError(f"{catalog_path}: no catalogue sources left to measure")
    _run(fits_path, list(sources), _options(pb, pointing, pb_threshold, peak_mode), as_json)
