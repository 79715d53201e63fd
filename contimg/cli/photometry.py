"""`contimg photometry`: forced photometry at given positions, catalogue or survey sources in one image,
and blind source finding."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from absurd.cli.toolkit import Dsn, cell, console, emit_json, fixed, table
from absurd.errors import UsageError
from contimg.cli.base import science_app
from contimg.cli.queued import Direct, TimeoutOpt, Wait, run_task
from contimg.tasks.params import PhotometryOutcome
from contimg.tasks.sky import FindSourcesOutcome, MeasureSurveyOutcome, load_survey, survey_sources_in
from science.calibrators import load_catalogue
from science.catalogs import CatalogError, SkyPosition, parse_coords, read_catalog, select_bright
from science.constants import PB_CUTOFF
from science.fits_image import read_image
from science.photometry import PeakMode, PhotometryOptions, PhotometryResult, measure_many, with_planes
from science.source_finding import DEFAULT_NEW_SOURCE_SNR, find_sources, identify, new_sources
from science.surveys import Survey

MJY = 1e3  # Jy → mJy, as the table shows fluxes

app = science_app(
    help="Forced photometry at fixed sky positions in an image or mosaic, and blind source finding. "
    "catalog, survey and find run as tasks on the queue, which store their results (--direct: in this "
    "process, storing nothing); peak and peak-many always run in this process."
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
    _show(measure_many(image, positions, with_planes(fits_path, options)), as_json)


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
    """Measure one position: peak, flux, local rms and SNR. Runs in this process: no task
    measures positions given on the command line."""
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
    """Measure several positions given on the command line. Runs in this process: no task measures
    positions given on the command line."""
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
    direct: Direct = False,
    wait: Wait = True,
    timeout_s: TimeoutOpt = 1800.0,
    dsn: Dsn = None,
) -> None:
    """Measure every source of a monitoring catalogue; those off the image are flagged off_image.

    Queued, a run-photometry task measures them and stores the measurements in products.photometry."""
    options = _options(pb, pointing, pb_threshold, peak_mode)
    if not direct:
        if min_mjy is not None:
            raise UsageError("--min-mjy needs --direct: the run-photometry task measures the whole catalogue")
        values = {
            "image_path": fits_path.resolve(),
            "catalogue_path": catalog_path.resolve(),
            "options": options.model_dump(mode="json"),
        }
        outcome = run_task("run-photometry", values, dsn, wait, timeout_s)
        if outcome is not None:
            _show(PhotometryOutcome.model_validate(outcome).measurements, as_json)
        return
    sources = read_catalog(catalog_path)
    if min_mjy is not None:
        sources = select_bright(sources, min_mjy)
    if not sources:
        raise CatalogError(f"{catalog_path}: no catalogue sources left to measure")
    _run(fits_path, list(sources), options, as_json)


SurveyOpt = Annotated[Survey, typer.Option("--survey", help="Which survey the table is.")]
SurveyPathOpt = Annotated[
    Path, typer.Option("--survey-path", help="The survey table (FITS, VOTable or CSV).")
]


@app.command("survey")
def survey(
    fits_path: FitsOpt,
    which: SurveyOpt,
    survey_path: SurveyPathOpt,
    min_flux_mjy: Annotated[
        float, typer.Option("--min-flux-mjy", min=0.0, help="Cut, at the image's frequency (−0.7 spectrum).")
    ] = 10.0,
    as_json: JsonOpt = False,
    direct: Direct = False,
    wait: Wait = True,
    timeout_s: TimeoutOpt = 1800.0,
    dsn: Dsn = None,
) -> None:
    """Measure every survey source inside the image and above the cut (e.g. NVSS above 10 mJy).

    Queued, a measure-survey task measures them and stores the measurements in products.photometry."""
    if not direct:
        values = {
            "image_path": fits_path.resolve(),
            "survey": which,
            "survey_path": survey_path.resolve(),
            "min_flux_mjy": min_flux_mjy,
        }
        outcome = run_task("measure-survey", values, dsn, wait, timeout_s)
        if outcome is not None:
            _show(MeasureSurveyOutcome.model_validate(outcome).measurements, as_json)
        return
    sources = survey_sources_in(fits_path, which, survey_path, min_flux_mjy)
    if not sources:
        raise CatalogError(
            f"{survey_path}: no {which.value} source above {min_flux_mjy:g} mJy in {fits_path}"
        )
    _run(fits_path, list(sources), PhotometryOptions(), as_json)


@app.command("find")
def find(
    fits_path: FitsOpt,
    surveys: Annotated[
        list[str] | None,
        typer.Option(
            "--survey", help="A survey to identify against, as NAME=PATH (repeatable), e.g. nvss=NVSS.fits."
        ),
    ] = None,
    catalog_path: Annotated[
        Path | None, typer.Option("--catalog", help="Monitoring CSV whose sources count as known.")
    ] = None,
    new_source_snr: Annotated[
        float, typer.Option("--new-snr", help="New-source candidates from this SNR.")
    ] = (DEFAULT_NEW_SOURCE_SNR),
    as_json: JsonOpt = False,
    direct: Direct = False,
    wait: Wait = True,
    timeout_s: TimeoutOpt = 1800.0,
    dsn: Dsn = None,
) -> None:
    """Find sources blindly and say what each is: monitored, in a survey, or new.

    Queued, a find-sources task stores the detections and raises alerts for new sources."""
    by_survey: dict[Survey, Path] = {}
    for item in surveys or []:
        name, sep, path = item.partition("=")
        if not sep or name.strip().lower() not in {s.value for s in Survey}:
            raise CatalogError(
                f"--survey {item!r}: write NAME=PATH with NAME one of {', '.join(s.value for s in Survey)}"
            )
        by_survey[Survey(name.strip().lower())] = Path(path)
    if not direct:
        values = {
            "image_path": fits_path.resolve(),
            "surveys": {k: v.resolve() for k, v in by_survey.items()},
            "catalogue_paths": [catalog_path.resolve()] if catalog_path else [],
            "new_source_snr": new_source_snr,
        }
        outcome = run_task("find-sources", values, dsn, wait, timeout_s)
        if outcome is None:
            return
        done = FindSourcesOutcome.model_validate(outcome)
        if as_json:
            emit_json(done.model_dump(mode="json"))
            return
        console.print(
            f"task {done.task_id} stored {len(done.found)} detection(s), {len(done.new)} new-source "
            "candidate(s); see `contimg alerts`"
        )
        return
    catalogs = [load_survey(path, name) for name, path in by_survey.items()]
    known = read_catalog(catalog_path) if catalog_path else []
    beam = read_image(fits_path).beam
    calibrators = [SkyPosition(name=c.name, ra_deg=c.ra_deg, dec_deg=c.dec_deg) for c in load_catalogue()]
    found = identify(
        find_sources(fits_path),
        catalogs,
        known,
        calibrators=calibrators,
        beam_major_arcsec=beam.bmaj_deg * 3600,
    )
    fresh = {id(i) for i in new_sources(found, min_snr=new_source_snr)}
    if as_json:
        emit_json([{**i.model_dump(mode="json"), "new": id(i) in fresh} for i in found])
        return
    rows = [
        [
            f"{i.source.ra_deg:.5f}",
            f"{i.source.dec_deg:+.5f}",
            fixed(i.source.peak_jy, MJY),
            fixed(i.source.flux_jy, MJY),
            fixed(i.source.snr, digits=1),
            "NEW" if id(i) in fresh else (f"{i.match_kind}: {i.match_name}" if i.matched else "-"),
            fixed(i.nearest_separation_arcsec, digits=1),
        ]
        for i in found
    ]
    columns = ["RA (deg)", "Dec (deg)", "peak (mJy/bm)", "flux (mJy)", "SNR", "identified as", "nearest (″)"]
    table(f"{len(found)} source(s) in {fits_path}", columns, rows)
