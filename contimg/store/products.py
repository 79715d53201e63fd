"""The products database (schema ``products``, ``migrations/0004_products.sql``): its named queries.

Every write is an upsert on the product's natural key (a path, or a path and a source name), so a
task that is retried or run again replaces its rows instead of adding more. The writers take the
caller's connection and open no transaction of their own: the workers call them from completion
hooks, inside the transaction that marks the task completed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from science.applycal import SAME_TIME_DAYS
from science.calibrate import CalibrationResult
from science.catalogs import MonitoringSource
from science.convert import ConversionRecord
from science.errors import InvalidInputError
from science.imaging import ImageResult
from science.mosaic import MosaicMethod, MosaicPlan, MosaicResult
from science.photometry import PhotometryResult

MJD_EPOCH = datetime(1858, 11, 17, tzinfo=UTC)
# The event a recorded solve emits, suffixed with the new calibration generation.
CALTABLE_READY = "caltable-ready"

ProductKind = Literal["ms", "caltables", "images", "mosaics", "photometry", "sources"]


def mjd_to_datetime(mjd: float) -> datetime:
    """UTC datetime of a Modified Julian Date."""
    return MJD_EPOCH + timedelta(days=mjd)


def datetime_to_mjd(when: datetime) -> float:
    """Modified Julian Date of ``when`` (naive values are taken as UTC)."""
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when
    return (when - MJD_EPOCH).total_seconds() / 86_400.0


def caltable_ready_event(generation: int) -> str:
    """Name of the event emitted when the ``generation``-th solve is recorded."""
    return f"{CALTABLE_READY}:{generation}"


# Measurement Sets ------------------------------------------------------------------------------

_RECORD_MS = """
INSERT INTO products.ms_index (path, group_id, start_mjd, end_mjd, mid_mjd, mid_time, ra_deg, dec_deg,
                                    n_antennas, n_channels, subbands_missing, status, task_id, phasing,
                                    pointing_dec_apparent_deg, subbands_flagged, flag_summary, version)
VALUES (%(path)s, %(group_id)s, %(start_mjd)s, %(end_mjd)s, %(mid_mjd)s, %(mid_time)s, %(ra_deg)s,
        %(dec_deg)s, %(n_antennas)s, %(n_channels)s, %(subbands_missing)s, %(status)s, %(task_id)s,
        %(phasing)s, %(pointing_dec_apparent_deg)s, %(subbands_flagged)s, %(flag_summary)s, %(version)s)
ON CONFLICT (path) DO UPDATE SET
    group_id = excluded.group_id, start_mjd = excluded.start_mjd, end_mjd = excluded.end_mjd,
    mid_mjd = excluded.mid_mjd, mid_time = excluded.mid_time, ra_deg = excluded.ra_deg,
    dec_deg = excluded.dec_deg, n_antennas = excluded.n_antennas, n_channels = excluded.n_channels,
    subbands_missing = excluded.subbands_missing, status = excluded.status, task_id = excluded.task_id,
    phasing = excluded.phasing, pointing_dec_apparent_deg = excluded.pointing_dec_apparent_deg,
    subbands_flagged = excluded.subbands_flagged, flag_summary = excluded.flag_summary,
    version = excluded.version,
    -- A rewritten MS has no CORRECTED_DATA any more.
    calibrated_with = NULL, calibrated_at = NULL, flagged_fraction_after = NULL, recorded_at = now()
RETURNING id
"""

# A reconversion supersedes every earlier version of its group.
_SUPERSEDE_MS = """
UPDATE products.ms_index SET superseded_by = %(id)s
WHERE group_id = %(group_id)s AND version < %(version)s AND superseded_by IS DISTINCT FROM %(id)s
"""

_FIND_MS = "SELECT * FROM products.ms_index WHERE path = %s"

_MARK_CALIBRATED = """
UPDATE products.ms_index
SET calibrated_with = %s, calibrated_at = now(), flagged_fraction_after = %s
WHERE path = %s
RETURNING id
"""


class StoredMs(BaseModel):
    """A row of ``products.ms_index``."""

    id: int
    path: str
    group_id: str
    start_mjd: float
    end_mjd: float
    mid_mjd: float
    ra_deg: float
    dec_deg: float
    status: str
    calibrated_with: int | None


def record_ms(conn: psycopg.Connection, record: ConversionRecord, task_id: int | None = None) -> int:
    """Record a converted Measurement Set; returns its ``ms_index`` id."""
    row = conn.execute(
        _RECORD_MS,
        {
            **record.model_dump(include={"group_id", "start_mjd", "end_mjd", "mid_mjd", "ra_deg", "dec_deg"}),
            "path": str(record.ms_path),
            "mid_time": mjd_to_datetime(record.mid_mjd),
            "n_antennas": record.n_antennas,
            "n_channels": record.n_channels,
            "subbands_missing": record.subbands_missing,
            "status": record.status,
            "task_id": task_id,
            "phasing": record.phasing.value,
            "pointing_dec_apparent_deg": record.pointing_dec_apparent_deg,
            "subbands_flagged": Jsonb(record.subbands_flagged),
            "flag_summary": Jsonb(record.flags.model_dump(mode="json")) if record.flags else None,
            "version": record.version,
        },
    ).fetchone()
    assert row is not None
    if record.version > 1:
        conn.execute(_SUPERSEDE_MS, {"id": row[0], "group_id": record.group_id, "version": record.version})
    return int(row[0])


def find_ms(conn: psycopg.Connection, path: Path | str) -> StoredMs | None:
    """The ``ms_index`` row of ``path``, or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_FIND_MS, (str(path),)).fetchone()
    return StoredMs.model_validate(row) if row else None


def mark_calibrated(
    conn: psycopg.Connection, ms_path: Path | str, caltable_id: int, flagged_fraction_after: float
) -> int:
    """Note that ``ms_path`` was calibrated with solve ``caltable_id``; returns the MS id."""
    row = conn.execute(_MARK_CALIBRATED, (caltable_id, flagged_fraction_after, str(ms_path))).fetchone()
    if row is None:
        raise LookupError(f"{ms_path} is not in products.ms_index; convert it with convert-uvh5 first")
    return int(row[0])


# Caltables -------------------------------------------------------------------------------------

_RECORD_CALTABLES = """
INSERT INTO products.caltables (ms_path, mode, calibrator, calibrator_offset_deg, calibrator_flux_jy,
    refant, tables, apply_tables, mid_mjd, valid_start_mjd, valid_end_mjd, valid_from, valid_until,
    qa_passed, qa, plots, task_id, pointing_dec_deg)
VALUES (%(ms_path)s, %(mode)s, %(calibrator)s, %(offset)s, %(flux)s, %(refant)s, %(tables)s,
    %(apply_tables)s, %(mid_mjd)s, %(valid_start_mjd)s, %(valid_end_mjd)s, %(valid_from)s, %(valid_until)s,
    %(qa_passed)s, %(qa)s, %(plots)s, %(task_id)s, %(pointing_dec_deg)s)
ON CONFLICT (ms_path, mode) DO UPDATE SET
    calibrator = excluded.calibrator, calibrator_offset_deg = excluded.calibrator_offset_deg,
    calibrator_flux_jy = excluded.calibrator_flux_jy, refant = excluded.refant, tables = excluded.tables,
    apply_tables = excluded.apply_tables, mid_mjd = excluded.mid_mjd, valid_start_mjd =
    excluded.valid_start_mjd, valid_end_mjd = excluded.valid_end_mjd, valid_from = excluded.valid_from,
    valid_until = excluded.valid_until, qa_passed = excluded.qa_passed, qa = excluded.qa, plots =
    excluded.plots, task_id = excluded.task_id, pointing_dec_deg = excluded.pointing_dec_deg,
    recorded_at = now()
RETURNING id
"""

_NEXT_GENERATION = (
    "UPDATE products.calibration_generation SET generation = generation + 1 RETURNING generation"
)
_GENERATION = "SELECT generation FROM products.calibration_generation"

_CALTABLE_CANDIDATES = """
SELECT id, ms_path, mode, calibrator, mid_mjd, valid_start_mjd, valid_end_mjd, qa_passed, apply_tables
FROM products.caltables
WHERE qa_passed AND mid_mjd BETWEEN %(earliest)s AND %(target)s
ORDER BY mid_mjd DESC
"""

_CALTABLE_BY_ID = """
SELECT id, ms_path, mode, calibrator, mid_mjd, valid_start_mjd, valid_end_mjd, qa_passed, apply_tables
FROM products.caltables WHERE id = %s
"""


class StoredCaltable(BaseModel):
    """A solve as stored; satisfies ``science.applycal.CaltableRecord``."""

    id: int
    ms_path: str
    mode: str
    calibrator: str
    mid_mjd: float
    valid_start_mjd: float
    valid_end_mjd: float
    qa_passed: bool
    apply_tables: list[str]


def record_caltables(
    conn: psycopg.Connection, result: CalibrationResult, task_id: int | None = None
) -> tuple[int, int]:
    """Record a solve and bump the calibration generation; returns (caltable id, new generation)."""
    row = conn.execute(
        _RECORD_CALTABLES,
        {
            "ms_path": str(result.ms_path),
            "mode": result.mode,
            "calibrator": result.calibrator,
            "offset": result.calibrator_offset_deg,
            "flux": result.calibrator_model_flux_jy,
            "refant": result.refant,
            "tables": Jsonb({kind: str(path) for kind, path in result.tables.items()}),
            "apply_tables": [str(p) for p in result.apply_tables],
            "mid_mjd": result.mid_mjd,
            "valid_start_mjd": result.valid_start_mjd,
            "valid_end_mjd": result.valid_end_mjd,
            "valid_from": mjd_to_datetime(result.valid_start_mjd),
            "valid_until": mjd_to_datetime(result.valid_end_mjd),
            "qa_passed": result.qa.passed,
            "qa": Jsonb(result.qa.model_dump(mode="json")),
            "plots": Jsonb({kind: str(path) for kind, path in result.plots.items()}),
            "task_id": task_id,
            "pointing_dec_deg": result.pointing_dec_deg,
        },
    ).fetchone()
    generation = conn.execute(_NEXT_GENERATION).fetchone()
    assert row is not None and generation is not None
    return int(row[0]), int(generation[0])


def stored_caltable(conn: psycopg.Connection, caltable_id: int) -> StoredCaltable | None:
    """The solve stored as ``caltable_id`` (passing or not), or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_CALTABLE_BY_ID, (caltable_id,)).fetchone()
    return StoredCaltable.model_validate(row) if row else None


def calibration_generation(conn: psycopg.Connection) -> int:
    """How many solves have been recorded so far (the suffix of the last ``caltable-ready`` event)."""
    row = conn.execute(_GENERATION).fetchone()
    return int(row[0]) if row else 0


def caltable_candidates(
    conn: psycopg.Connection, target_mjd: float, max_age_hours: float
) -> list[StoredCaltable]:
    """Passing solves made at most ``max_age_hours`` before ``target_mjd``, latest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            _CALTABLE_CANDIDATES,
            {"earliest": target_mjd - max_age_hours / 24.0, "target": target_mjd + SAME_TIME_DAYS},
        ).fetchall()
    return [StoredCaltable.model_validate(r) for r in rows]


# Images and mosaics ----------------------------------------------------------------------------

_RECORD_IMAGE = """
INSERT INTO products.images (path, ms_path, ms_id, imager, residual_path, psf_path, model_path, pb_path,
    pbcor_path, preview_path, noise_jy, peak_jy, bmaj_arcsec, bmin_arcsec, bpa_deg, center_ra_deg,
    center_dec_deg, freq_hz, mid_mjd, mid_time, params, task_id)
VALUES (%(path)s, %(ms_path)s, (SELECT id FROM products.ms_index WHERE path = %(ms_path)s), %(imager)s,
    %(residual)s, %(psf)s, %(model)s, %(pb)s, %(pbcor)s, %(preview)s, %(noise_jy)s, %(peak_jy)s, %(bmaj)s,
    %(bmin)s, %(bpa)s, %(ra)s, %(dec)s, %(freq_hz)s, %(mid_mjd)s, %(mid_time)s, %(params)s, %(task_id)s)
ON CONFLICT (path) DO UPDATE SET
    ms_path = excluded.ms_path, ms_id = excluded.ms_id, imager = excluded.imager,
    residual_path = excluded.residual_path, psf_path = excluded.psf_path, model_path = excluded.model_path,
    pb_path = excluded.pb_path, pbcor_path = excluded.pbcor_path, preview_path = excluded.preview_path,
    noise_jy = excluded.noise_jy, peak_jy = excluded.peak_jy, bmaj_arcsec = excluded.bmaj_arcsec,
    bmin_arcsec = excluded.bmin_arcsec, bpa_deg = excluded.bpa_deg, center_ra_deg = excluded.center_ra_deg,
    center_dec_deg = excluded.center_dec_deg, freq_hz = excluded.freq_hz, mid_mjd = excluded.mid_mjd,
    mid_time = excluded.mid_time, params = excluded.params, task_id = excluded.task_id, recorded_at = now()
RETURNING id
"""

# An image of a superseded MS (a reconversion, or a reprocessing --force) would put the same
# observation into a mosaic twice; only the current version's images count.
_IMAGES_IN_RANGE = """
SELECT i.id, i.path, i.pb_path, i.mid_mjd, i.noise_jy, i.center_ra_deg, i.center_dec_deg
FROM products.images i
LEFT JOIN products.ms_index m ON m.id = i.ms_id
WHERE i.mid_mjd BETWEEN %s AND %s AND m.superseded_by IS NULL
ORDER BY i.mid_mjd, i.id
"""

_IMAGE_PB = "SELECT pb_path FROM products.images WHERE path = %s"

# The newest image of one observation's MS at one version (the MS index holds one row per group and version).
_IMAGE_OF_OBSERVATION = """
SELECT i.* FROM products.images i
JOIN products.ms_index m ON m.path = i.ms_path
WHERE m.group_id = %s AND m.version = %s
ORDER BY i.id DESC LIMIT 1
"""

_SAVE_PLAN = """
INSERT INTO products.mosaic_plans (name, start_mjd, end_mjd, image_ids, plan)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (name) DO UPDATE SET
    start_mjd = excluded.start_mjd, end_mjd = excluded.end_mjd, image_ids = excluded.image_ids,
    plan = excluded.plan, planned_at = now()
"""

_LOAD_PLAN = "SELECT plan FROM products.mosaic_plans WHERE name = %s"

_RECORD_MOSAIC = """
INSERT INTO products.mosaics (name, path, noise_path, preview_path, method, image_paths, image_ids,
    n_inputs, width_px, height_px, bmaj_arcsec, bmin_arcsec, bpa_deg, mid_mjd, min_noise_jy,
    median_noise_jy, covered_fraction, task_id)
VALUES (%(name)s, %(path)s, %(noise_path)s, %(preview_path)s, %(method)s, %(image_paths)s, ARRAY(SELECT id
    FROM products.images WHERE path = ANY(%(image_paths)s) ORDER BY id), %(n_inputs)s, %(width)s,
    %(height)s, %(bmaj)s, %(bmin)s, %(bpa)s, %(mjd)s, %(min_noise)s, %(median_noise)s, %(covered)s,
    %(task_id)s)
ON CONFLICT (name) DO UPDATE SET
    path = excluded.path, noise_path = excluded.noise_path, preview_path = excluded.preview_path, method =
    excluded.method, image_paths = excluded.image_paths, image_ids = excluded.image_ids, n_inputs =
    excluded.n_inputs, width_px = excluded.width_px, height_px = excluded.height_px, bmaj_arcsec =
    excluded.bmaj_arcsec, bmin_arcsec = excluded.bmin_arcsec, bpa_deg = excluded.bpa_deg, mid_mjd =
    excluded.mid_mjd, min_noise_jy = excluded.min_noise_jy, median_noise_jy = excluded.median_noise_jy,
    covered_fraction = excluded.covered_fraction, task_id = excluded.task_id, recorded_at = now()
RETURNING id
"""


class StoredImage(BaseModel):
    """What mosaic planning needs of a row of ``products.images``."""

    id: int
    path: str
    pb_path: str | None
    mid_mjd: float
    noise_jy: float
    center_ra_deg: float
    center_dec_deg: float


def record_image(conn: psycopg.Connection, result: ImageResult, task_id: int | None = None) -> int:
    """Record an image (linked to its MS when that is in ``ms_index``); returns its id."""
    row = conn.execute(
        _RECORD_IMAGE,
        {
            "path": str(result.image),
            "ms_path": str(result.ms_path),
            "imager": result.imager,
            "residual": str(result.residual),
            "psf": str(result.psf),
            "model": str(result.model) if result.model else None,
            "pb": str(result.pb) if result.pb else None,
            "pbcor": str(result.pbcor) if result.pbcor else None,
            "preview": str(result.preview),
            "noise_jy": result.noise_jy,
            "peak_jy": result.peak_jy,
            "bmaj": result.beam.bmaj_arcsec,
            "bmin": result.beam.bmin_arcsec,
            "bpa": result.beam.bpa_deg,
            "ra": result.center_ra_deg,
            "dec": result.center_dec_deg,
            "freq_hz": result.freq_hz,
            "mid_mjd": result.mid_mjd,
            "mid_time": mjd_to_datetime(result.mid_mjd),
            "params": Jsonb(result.params.model_dump(mode="json")),
            "task_id": task_id,
        },
    ).fetchone()
    assert row is not None
    return int(row[0])


def images_in_range(conn: psycopg.Connection, start_mjd: float, end_mjd: float) -> list[StoredImage]:
    """Current images (not of a superseded MS) whose mid-time lies in [start_mjd, end_mjd], earliest
    first."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_IMAGES_IN_RANGE, (start_mjd, end_mjd)).fetchall()
    return [StoredImage.model_validate(r) for r in rows]


def image_pb_path(conn: psycopg.Connection, image_path: Path | str) -> Path | None:
    """The primary-beam image recorded with ``image_path``, or None."""
    row = conn.execute(_IMAGE_PB, (str(image_path),)).fetchone()
    return Path(row[0]) if row and row[0] else None


def image_outcome_of(conn: psycopg.Connection, group_id: str, version: int) -> dict[str, Any] | None:
    """What ``create-image`` returned for observation ``group_id`` at ``version``, rebuilt from the image it
    recorded, for a step whose task was pruned from the queue; None if it recorded none. The imager's log
    is not kept with the image, so ``log_path`` is missing."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_IMAGE_OF_OBSERVATION, (group_id, version)).fetchone()
    if row is None:
        return None
    image = {
        "ms_path": row["ms_path"],
        "imager": row["imager"],
        "image": row["path"],
        "residual": row["residual_path"],
        "psf": row["psf_path"],
        "model": row["model_path"],
        "pb": row["pb_path"],
        "pbcor": row["pbcor_path"],
        "preview": row["preview_path"],
        "noise_jy": row["noise_jy"],
        "beam": {
            "bmaj_arcsec": row["bmaj_arcsec"],
            "bmin_arcsec": row["bmin_arcsec"],
            "bpa_deg": row["bpa_deg"],
        },
        "peak_jy": row["peak_jy"],
        "center_ra_deg": row["center_ra_deg"],
        "center_dec_deg": row["center_dec_deg"],
        "freq_hz": row["freq_hz"],
        "mid_mjd": row["mid_mjd"],
        "params": row["params"],
    }
    return {"task_id": row["task_id"], "image": image}


def plan_mosaic(
    conn: psycopg.Connection,
    name: str,
    start: datetime,
    end: datetime,
    output_dir: Path,
    method: MosaicMethod = MosaicMethod.WEIGHTED,
) -> tuple[MosaicPlan, list[int]]:
    """A plan over the recorded images whose mid-time lies in [start, end], and their ids.

    Raises InvalidInputError when no image was recorded in the range.
    """
    found = images_in_range(conn, datetime_to_mjd(start), datetime_to_mjd(end))
    if not found:
        raise InvalidInputError(
            f"no images recorded between {start:%Y-%m-%dT%H:%M:%S} and {end:%Y-%m-%dT%H:%M:%S}; "
            "run create-image first or widen the range"
        )
    pbs = [img.pb_path for img in found]
    # Recorded PB images replace the Airy model only where the method uses a primary beam.
    use_pbs = method is MosaicMethod.PBWEIGHTED and all(pbs)
    plan = MosaicPlan(
        name=name,
        image_paths=[Path(img.path) for img in found],
        method=method,
        output_path=Path(output_dir).resolve() / f"{name}.fits",
        pb_paths=[Path(p) for p in pbs if p is not None] if use_pbs else None,
    )
    return plan, [img.id for img in found]


def save_mosaic_plan(
    conn: psycopg.Connection, plan: MosaicPlan, start_mjd: float, end_mjd: float, image_ids: Sequence[int]
) -> None:
    """Store (or replace) a mosaic plan under its name."""
    conn.execute(
        _SAVE_PLAN, (plan.name, start_mjd, end_mjd, list(image_ids), Jsonb(plan.model_dump(mode="json")))
    )


def load_mosaic_plan(conn: psycopg.Connection, name: str) -> MosaicPlan | None:
    """The stored plan named ``name``, or None."""
    row = conn.execute(_LOAD_PLAN, (name,)).fetchone()
    return MosaicPlan.model_validate(row[0]) if row else None


def record_mosaic(conn: psycopg.Connection, result: MosaicResult, task_id: int | None = None) -> int:
    """Record a mosaic (inputs linked to their ``images`` rows); returns its id."""
    row = conn.execute(
        _RECORD_MOSAIC,
        {
            "name": result.name,
            "path": str(result.output_path),
            "noise_path": str(result.noise_path),
            "preview_path": str(result.preview_path) if result.preview_path else None,
            "method": result.method.value,
            "image_paths": [inp.path for inp in result.inputs],
            "n_inputs": len(result.inputs),
            "width": result.shape[1],
            "height": result.shape[0],
            "bmaj": result.bmaj_arcsec,
            "bmin": result.bmin_arcsec,
            "bpa": result.bpa_deg,
            "mjd": result.mjd,
            "min_noise": result.min_noise_jy,
            "median_noise": result.median_noise_jy,
            "covered": result.covered_fraction,
            "task_id": task_id,
        },
    ).fetchone()
    assert row is not None
    return int(row[0])


# Sources and photometry ------------------------------------------------------------------------

_UPSERT_SOURCE = """
INSERT INTO products.sources (name, ra_deg, dec_deg, priority, reference, flux_mjy, catalogue_path)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (name) DO UPDATE SET
    ra_deg = excluded.ra_deg, dec_deg = excluded.dec_deg, priority = excluded.priority,
    reference = excluded.reference, flux_mjy = excluded.flux_mjy, catalogue_path = excluded.catalogue_path,
    updated_at = now()
"""

_RECORD_PHOTOMETRY = """
INSERT INTO products.photometry (image_path, image_id, mosaic_id, source_name, ra_deg, dec_deg, mjd,
    peak_jy, peak_err_jy, flux_jy, flux_err_jy, local_rms_jy, snr, pb_response, flags, task_id,
    fit_flux_jy, fit_flux_err_jy, fit_ra_deg, fit_dec_deg, fit_pos_err_arcsec)
VALUES (%(image_path)s, (SELECT id FROM products.images WHERE path = %(image_path)s), (SELECT id FROM
    products.mosaics WHERE path = %(image_path)s), %(name)s, %(ra_deg)s, %(dec_deg)s, %(mjd)s, %(peak_jy)s,
    %(peak_err_jy)s, %(flux_jy)s, %(flux_err_jy)s, %(local_rms_jy)s, %(snr)s, %(pb_response)s, %(flags)s,
    %(task_id)s, %(fit_flux_jy)s, %(fit_flux_err_jy)s, %(fit_ra_deg)s, %(fit_dec_deg)s,
    %(fit_pos_err_arcsec)s)
ON CONFLICT (image_path, source_name) DO UPDATE SET
    image_id = excluded.image_id, mosaic_id = excluded.mosaic_id, ra_deg = excluded.ra_deg, dec_deg =
    excluded.dec_deg, mjd = excluded.mjd, peak_jy = excluded.peak_jy, peak_err_jy = excluded.peak_err_jy,
    flux_jy = excluded.flux_jy, flux_err_jy = excluded.flux_err_jy, local_rms_jy = excluded.local_rms_jy,
    snr = excluded.snr, pb_response = excluded.pb_response, flags = excluded.flags, task_id =
    excluded.task_id, fit_flux_jy = excluded.fit_flux_jy, fit_flux_err_jy = excluded.fit_flux_err_jy,
    fit_ra_deg = excluded.fit_ra_deg, fit_dec_deg = excluded.fit_dec_deg,
    fit_pos_err_arcsec = excluded.fit_pos_err_arcsec, recorded_at = now()
"""


def upsert_sources(
    conn: psycopg.Connection, sources: Sequence[MonitoringSource], catalogue_path: Path | str
) -> int:
    """Insert or refresh catalogue sources by name; returns how many were written."""
    with conn.cursor() as cur:
        cur.executemany(
            _UPSERT_SOURCE,
            [
                (s.name, s.ra_deg, s.dec_deg, s.priority, s.reference, s.flux_mjy, str(catalogue_path))
                for s in sources
            ],
        )
    return len(sources)


def record_photometry(
    conn: psycopg.Connection, results: Sequence[PhotometryResult], task_id: int | None = None
) -> int:
    """Record forced measurements (their sources must already be in ``sources``); returns the count."""
    with conn.cursor() as cur:
        cur.executemany(
            _RECORD_PHOTOMETRY,
            [
                {
                    **r.model_dump(exclude={"flags"}),
                    "flags": [f.value for f in r.flags],
                    "task_id": task_id,
                }
                for r in results
            ],
        )
    return len(results)


# Listings --------------------------------------------------------------------------------------

# Columns shown by `contimg products list`, newest first.
_LISTINGS: dict[str, str] = {
    "ms": """SELECT id, path, group_id, mid_time, dec_deg, n_antennas, n_channels, status, calibrated_with
             FROM products.ms_index ORDER BY mid_mjd DESC, id DESC LIMIT %s""",
    "caltables": """SELECT id, ms_path, mode, calibrator, refant, qa_passed, valid_from, valid_until,
                    apply_tables
                    FROM products.caltables ORDER BY mid_mjd DESC, id DESC LIMIT %s""",
    "images": """SELECT id, path, imager, mid_time, noise_jy, bmaj_arcsec, bmin_arcsec, center_ra_deg,
                        center_dec_deg, preview_path
                 FROM products.images ORDER BY mid_mjd DESC, id DESC LIMIT %s""",
    "mosaics": """SELECT id, name, path, method, n_inputs, median_noise_jy, mid_mjd, recorded_at
                  FROM products.mosaics ORDER BY recorded_at DESC, id DESC LIMIT %s""",
    "photometry": """SELECT id, source_name, image_path, mjd, flux_jy, flux_err_jy, snr, flags
                     FROM products.photometry ORDER BY recorded_at DESC, id DESC LIMIT %s""",
    "sources": """SELECT name, ra_deg, dec_deg, priority, reference, flux_mjy, catalogue_path
                  FROM products.sources ORDER BY name LIMIT %s""",
}


def list_products(conn: psycopg.Connection, kind: ProductKind, limit: int = 50) -> list[dict[str, Any]]:
    """The newest ``limit`` rows of one product table, as dicts."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_LISTINGS[kind], (limit,)).fetchall()
