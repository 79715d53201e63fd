"""The sky tasks: ``measure-survey`` (forced photometry of a survey's sources in an image) and
``find-sources`` (blind source finding, identification, and new-source alerts).

Both run in worker child processes; their completion hooks store the results with the task's id, and
find-sources's queues a ``notify-alert`` per new alert (``contimg.tasks.notify``). A
survey file is read once per worker process and kept (the real ones are large).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import psycopg
from pydantic import BaseModel, ConfigDict, Field

import absurd
from contimg.store import products, sky
from contimg.tasks import notify, queues
from science.calibrators import Calibrator, load_catalogue, read_vla_list
from science.catalogs import MonitoringSource, SkyPosition, read_catalog
from science.errors import InvalidInputError
from science.fits_image import read_image
from science.photometry import PhotometryOptions, PhotometryResult, measure_file
from science.source_finding import (
    DEFAULT_MATCH_RADIUS_ARCSEC,
    DEFAULT_NEW_SOURCE_SNR,
    Identification,
    find_sources,
    identify,
    new_sources,
)
from science.surveys import Survey, SurveyCatalog, read_survey

# Emitted when find-sources raises new-source alerts; the payload lists them.
NEW_SOURCE_ALERT = "new-source-alert"

registry = absurd.Registry()


@lru_cache(maxsize=8)
def _survey(path: str, survey: Survey, mtime_ns: int) -> SurveyCatalog:
    return read_survey(path, survey)


def load_survey(path: Path, survey: Survey) -> SurveyCatalog:
    """The survey table at ``path``, read once per process and again only when the file changes."""
    if not path.is_file():
        raise InvalidInputError(f"{path}: no such {survey.value} survey file")
    return _survey(str(path.resolve()), survey, path.stat().st_mtime_ns)


class MeasureSurveyParams(BaseModel):
    """``measure-survey``: every survey source inside the image and above the cut, measured."""

    model_config = ConfigDict(extra="forbid")

    image_path: Path
    survey: Survey
    survey_path: Path
    min_flux_mjy: float = Field(default=10.0, ge=0.0, description="at the image's frequency")
    options: PhotometryOptions = Field(default_factory=PhotometryOptions)


class MeasureSurveyOutcome(BaseModel):
    """What ``measure-survey`` measured, with the rows it measured at."""

    task_id: int
    survey_path: Path
    sources: list[MonitoringSource]
    measurements: list[PhotometryResult]


def _record_survey(conn: psycopg.Connection, params: MeasureSurveyParams, result: Any) -> None:
    done = MeasureSurveyOutcome.model_validate(result)
    products.upsert_sources(conn, done.sources, done.survey_path)
    products.record_photometry(conn, done.measurements, done.task_id)


def survey_sources_in(
    image_path: Path, survey: Survey, survey_path: Path, min_flux_mjy: float
) -> list[MonitoringSource]:
    """The survey's sources inside ``image_path`` with at least ``min_flux_mjy`` at its frequency."""
    image = read_image(image_path)
    catalog = load_survey(survey_path, survey)
    chosen = catalog.in_image(image.wcs, image.shape, min_flux_mjy, freq_hz=image.freq_hz or catalog.freq_hz)
    return [
        MonitoringSource(name=s.name, ra_deg=s.ra_deg, dec_deg=s.dec_deg, flux_mjy=s.flux_mjy) for s in chosen
    ]


@registry.task(
    "measure-survey",
    params=MeasureSurveyParams,
    mode="process",
    options=absurd.SpawnOptions(queue=queues.PHOTOMETRY, timeout_s=1800, max_attempts=3),
    permanent_errors=(InvalidInputError,),
    on_complete=_record_survey,
)
def measure_survey(ctx: absurd.TaskContext, params: MeasureSurveyParams) -> MeasureSurveyOutcome:
    """Forced photometry of a survey's sources inside an image, above a flux cut."""
    image_path = params.image_path.resolve()
    sources = survey_sources_in(image_path, params.survey, params.survey_path, params.min_flux_mjy)
    measurements = measure_file(image_path, sources, params.options) if sources else []
    return MeasureSurveyOutcome(
        task_id=ctx.task_id,
        survey_path=params.survey_path.resolve(),
        sources=sources,
        measurements=measurements,
    )


class FindSourcesParams(BaseModel):
    """``find-sources``: blind finding in one image, identified against surveys and monitoring lists."""

    model_config = ConfigDict(extra="forbid")

    image_path: Path
    surveys: dict[Survey, Path] = Field(default_factory=dict, description="survey name → table path")
    monitoring_lists: list[str] | None = Field(
        default=None, description="lists whose sources count as known; default: every registered list"
    )
    catalogue_paths: list[Path] = Field(
        default_factory=list, description="monitoring CSVs whose sources count as known too"
    )
    calibrator_list: Path | None = Field(
        default=None, description="the VLA calibrator list, whose sources count as known; default: bundled"
    )
    seed_sigma: float = Field(default=5.0, gt=0.0)
    flood_sigma: float = Field(default=4.0, gt=0.0)
    new_source_snr: float = Field(default=DEFAULT_NEW_SOURCE_SNR, gt=0.0)
    match_radius_arcsec: float = Field(default=DEFAULT_MATCH_RADIUS_ARCSEC, gt=0.0)


class FindSourcesOutcome(BaseModel):
    """What ``find-sources`` found; ``new`` indexes ``found``."""

    task_id: int
    image_path: Path
    mjd: float | None
    found: list[Identification]
    new: list[int]


def _record_found(conn: psycopg.Connection, params: FindSourcesParams, result: Any) -> None:
    done = FindSourcesOutcome.model_validate(result)
    new = [done.found[i] for i in done.new]
    alerts = sky.record_detections(
        conn, done.image_path, done.mjd, done.found, new, done.task_id, params.match_radius_arcsec
    )
    if alerts:
        notify.spawn_notifiers(conn, [alert.id for alert in alerts])
        absurd.emit_event(
            conn,
            NEW_SOURCE_ALERT,
            {"task_id": done.task_id, "alerts": [{"alert_id": a.id, **a.metrics} for a in alerts]},
        )


def load_calibrators(params: FindSourcesParams) -> list[Calibrator]:
    """The calibrators a find-sources task counts as known (a calibrator transit is imaged too)."""
    return read_vla_list(params.calibrator_list) if params.calibrator_list else load_catalogue()


@registry.task(
    "find-sources",
    params=FindSourcesParams,
    mode="process",
    options=absurd.SpawnOptions(queue=queues.PHOTOMETRY, timeout_s=1800, max_attempts=3),
    permanent_errors=(InvalidInputError,),
    on_complete=_record_found,
)
def find_sources_task(ctx: absurd.TaskContext, params: FindSourcesParams) -> FindSourcesOutcome:
    """Find the sources in an image and say which are known; the new bright ones raise alerts."""
    image_path = params.image_path.resolve()
    image = read_image(image_path)
    catalogs = [load_survey(path, survey) for survey, path in params.surveys.items()]
    known = [s for path in params.catalogue_paths for s in read_catalog(path)]
    with ctx.connection() as conn:
        lists = params.monitoring_lists
        if lists is None:
            lists = [m.name for m in sky.monitoring_lists(conn)]
        monitored = [*known, *sky.monitored_sources(conn, lists)]
    found = identify(
        find_sources(image_path, seed_sigma=params.seed_sigma, flood_sigma=params.flood_sigma),
        catalogs,
        monitored,
        calibrators=[
            SkyPosition(name=c.name, ra_deg=c.ra_deg, dec_deg=c.dec_deg) for c in load_calibrators(params)
        ],
        radius_arcsec=params.match_radius_arcsec,
        beam_major_arcsec=image.beam.bmaj_deg * 3600,
    )
    fresh = {id(i) for i in new_sources(found, min_snr=params.new_source_snr)}
    return FindSourcesOutcome(
        task_id=ctx.task_id,
        image_path=image_path,
        mjd=image.mjd,
        found=found,
        new=[n for n, ident in enumerate(found) if id(ident) in fresh],
    )
