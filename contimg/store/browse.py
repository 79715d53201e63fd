"""What the dashboard's science pages read and write: images, source search, alert triage and the
measurements saved from the sky view. Filters and sort keys travel as parameters, never as SQL."""

from __future__ import annotations

from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

SourceSort = Literal["name", "eta", "v", "flux", "detections", "snr"]
TriageState = Literal["new", "acknowledged", "classified"]

_IMAGES = """
SELECT i.id, i.path, i.preview_path, i.noise_jy, i.peak_jy, i.bmaj_arcsec, i.bmin_arcsec, i.bpa_deg,
       i.center_ra_deg, i.center_dec_deg, i.freq_hz, i.mid_mjd, i.mid_time, i.task_id, i.recorded_at
FROM products.images i
WHERE (%(before)s::bigint IS NULL OR i.id < %(before)s)
ORDER BY i.id DESC LIMIT %(limit)s
"""
_IMAGE = """
SELECT i.*, t.name AS task_name, t.state AS task_state, t.workflow_id
FROM products.images i LEFT JOIN absurd.tasks t ON t.id = i.task_id
WHERE i.id = %s
"""
_IMAGE_BY_PATH = "SELECT id FROM products.images WHERE path = %s"
_IMAGE_SOURCES = """
SELECT s.name, s.ra_deg, s.dec_deg, s.reference, p.flux_jy, p.snr
FROM products.photometry p JOIN products.sources s ON s.name = p.source_name
WHERE p.image_id = %s ORDER BY s.name
"""

_MOSAICS = """
SELECT id, name, path, method, n_inputs, width_px, height_px, bmaj_arcsec, bmin_arcsec, bpa_deg, mid_mjd,
       min_noise_jy, median_noise_jy, covered_fraction, task_id, recorded_at
FROM products.mosaics ORDER BY id DESC LIMIT %s
"""
_MOSAIC = """
SELECT m.*, t.name AS task_name, t.state AS task_state, t.workflow_id
FROM products.mosaics m LEFT JOIN absurd.tasks t ON t.id = m.task_id
WHERE m.id = %s
"""
_MOSAIC_SOURCES = """
SELECT s.name, s.ra_deg, s.dec_deg, s.reference, p.flux_jy, p.snr
FROM products.photometry p JOIN products.sources s ON s.name = p.source_name
WHERE p.mosaic_id = %s ORDER BY s.name
"""

# Great-circle distance by the haversine formula; the cone is skipped when its centre is NULL.
_SEARCH = """
SELECT s.name, s.ra_deg, s.dec_deg, s.reference, v.n_epochs, v.eta, v.v, v.chi2_nu,
       v.weighted_mean_flux_jy, v.latest_snr, v.is_variable, v.transient_candidate
FROM products.sources s LEFT JOIN products.variability v ON v.source_name = s.name
WHERE (%(name)s::text IS NULL OR s.name ILIKE '%%' || %(name)s || '%%')
  AND (%(ra)s::float8 IS NULL OR 2 * degrees(asin(sqrt(
        sin(radians(s.dec_deg - %(dec)s) / 2) ^ 2
        + cos(radians(s.dec_deg)) * cos(radians(%(dec)s)) * sin(radians(s.ra_deg - %(ra)s) / 2) ^ 2)))
      <= %(radius)s)
  AND (%(min_eta)s::float8 IS NULL OR v.eta >= %(min_eta)s)
  AND (%(min_v)s::float8 IS NULL OR v.v >= %(min_v)s)
  AND (%(min_flux)s::float8 IS NULL OR v.weighted_mean_flux_jy >= %(min_flux)s)
  AND (%(max_flux)s::float8 IS NULL OR v.weighted_mean_flux_jy <= %(max_flux)s)
  AND (%(min_detections)s::int IS NULL OR v.n_epochs >= %(min_detections)s)
ORDER BY CASE WHEN %(sort)s = 'eta' THEN v.eta END DESC NULLS LAST,
         CASE WHEN %(sort)s = 'v' THEN v.v END DESC NULLS LAST,
         CASE WHEN %(sort)s = 'flux' THEN v.weighted_mean_flux_jy END DESC NULLS LAST,
         CASE WHEN %(sort)s = 'detections' THEN v.n_epochs END DESC NULLS LAST,
         CASE WHEN %(sort)s = 'snr' THEN v.latest_snr END DESC NULLS LAST,
         s.name
LIMIT %(limit)s
"""
_SOURCE = (
    "SELECT name, ra_deg, dec_deg, priority, reference, catalogue_path FROM products.sources WHERE name = %s"
)
_STAMPS = """
SELECT p.image_path, p.image_id, p.mjd, p.flux_jy, p.flux_err_jy, p.snr
FROM products.photometry p WHERE p.source_name = %s AND p.image_id IS NOT NULL ORDER BY p.mjd
"""

_ALERTS = """
SELECT a.id, a.source_name, a.kind, a.metrics, a.task_id, a.created_at,
       coalesce(t.state, CASE WHEN a.acknowledged THEN 'acknowledged' ELSE 'new' END) AS triage,
       t.classification, coalesce(t.notes, '') AS notes, t.updated_by, t.updated_at
FROM products.alerts a LEFT JOIN web.alert_triage t ON t.alert_id = a.id
WHERE (%(state)s::text IS NULL
       OR coalesce(t.state, CASE WHEN a.acknowledged THEN 'acknowledged' ELSE 'new' END) = %(state)s)
ORDER BY a.created_at DESC, a.id DESC LIMIT %(limit)s
"""
_ALERT_EXISTS = "SELECT 1 FROM products.alerts WHERE id = %s"
_UPSERT_TRIAGE = """
INSERT INTO web.alert_triage (alert_id, state, classification, notes, updated_by)
VALUES (%(id)s, %(state)s, %(classification)s, %(notes)s, %(actor)s)
ON CONFLICT (alert_id) DO UPDATE SET state = excluded.state, classification = excluded.classification,
    notes = excluded.notes, updated_by = excluded.updated_by, updated_at = now()
"""
# The products layer's own flag follows the triage, so `contimg alerts` agrees with the dashboard.
_ACK = """
UPDATE products.alerts SET acknowledged = true, acknowledged_at = coalesce(acknowledged_at, now())
WHERE id = %s AND NOT acknowledged
"""

_SAVE_MEASUREMENT = """
INSERT INTO web.measurements (image_id, ra_deg, dec_deg, peak_jy, peak_err_jy, flux_jy, flux_err_jy,
    local_rms_jy, snr, label, measured_by)
VALUES (%(image_id)s, %(ra_deg)s, %(dec_deg)s, %(peak_jy)s, %(peak_err_jy)s, %(flux_jy)s, %(flux_err_jy)s,
    %(local_rms_jy)s, %(snr)s, %(label)s, %(measured_by)s)
RETURNING id
"""
_MEASUREMENTS = """
SELECT id, ra_deg, dec_deg, peak_jy, flux_jy, flux_err_jy, local_rms_jy, snr, label, measured_by, measured_at
FROM web.measurements WHERE image_id = %s ORDER BY id DESC
"""


class SourceQuery(BaseModel):
    """The source search's filters, as they appear in the page's URL and the API's query string."""

    name: str | None = Field(default=None, max_length=100)
    ra: float | None = Field(default=None, ge=0, lt=360, description="cone centre RA, degrees")
    dec: float | None = Field(default=None, ge=-90, le=90, description="cone centre Dec, degrees")
    radius: float = Field(default=1.0, gt=0, le=180, description="cone radius, degrees")
    min_eta: float | None = None
    min_v: float | None = None
    min_flux: float | None = Field(default=None, description="Jy")
    max_flux: float | None = Field(default=None, description="Jy")
    min_detections: int | None = Field(default=None, ge=0)
    sort: SourceSort = "name"
    limit: int = Field(default=200, ge=1, le=2000)


class SavedMeasurement(BaseModel):
    """A click-to-measure result an operator keeps."""

    image_id: int
    ra_deg: float
    dec_deg: float
    peak_jy: float | None
    peak_err_jy: float | None
    flux_jy: float | None
    flux_err_jy: float | None
    local_rms_jy: float | None
    snr: float | None
    label: str = ""
    measured_by: str


def images(conn: psycopg.Connection, before: int | None = None, limit: int = 24) -> list[dict[str, Any]]:
    """Images, newest first, paged by id."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_IMAGES, {"before": before, "limit": limit}).fetchall()


def image(conn: psycopg.Connection, image_id: int) -> dict[str, Any] | None:
    """One image with the task that made it (its provenance), or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_IMAGE, (image_id,)).fetchone()


def mosaics(conn: psycopg.Connection, limit: int = 24) -> list[dict[str, Any]]:
    """Mosaics, newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_MOSAICS, (limit,)).fetchall()


def mosaic(conn: psycopg.Connection, mosaic_id: int) -> dict[str, Any] | None:
    """One mosaic with the task that made it, or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_MOSAIC, (mosaic_id,)).fetchone()


def mosaic_sources(conn: psycopg.Connection, mosaic_id: int) -> list[dict[str, Any]]:
    """The monitored sources measured on a mosaic."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_MOSAIC_SOURCES, (mosaic_id,)).fetchall()


def image_id_of(conn: psycopg.Connection, path: str) -> int | None:
    """The id of the image recorded at ``path``, or None."""
    row = conn.execute(_IMAGE_BY_PATH, (path,)).fetchone()
    return int(row[0]) if row else None


def image_sources(conn: psycopg.Connection, image_id: int) -> list[dict[str, Any]]:
    """The monitored sources measured on an image (the sky view's overlay)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_IMAGE_SOURCES, (image_id,)).fetchall()


def search_sources(conn: psycopg.Connection, query: SourceQuery) -> list[dict[str, Any]]:
    """Sources matching every filter in ``query``, sorted as it asks. A cone needs both RA and Dec."""
    if (query.ra is None) != (query.dec is None):
        raise ValueError("a cone search needs both ra and dec")
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_SEARCH, query.model_dump()).fetchall()


def source(conn: psycopg.Connection, name: str) -> dict[str, Any] | None:
    """A catalogue row, or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_SOURCE, (name,)).fetchone()


def source_epochs(conn: psycopg.Connection, name: str) -> list[dict[str, Any]]:
    """A source's measurements on recorded images, in time order (for the postage stamps)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_STAMPS, (name,)).fetchall()


def alerts(
    conn: psycopg.Connection, state: TriageState | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    """Alerts with their triage state, newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_ALERTS, {"state": state, "limit": limit}).fetchall()


def triage(
    conn: psycopg.Connection,
    alert_id: int,
    state: TriageState,
    actor: str,
    classification: str | None = None,
    notes: str = "",
) -> None:
    """Set an alert's triage state; LookupError for an unknown alert, ValueError for a classification
    without the 'classified' state or the reverse."""
    if (state == "classified") != bool(classification):
        raise ValueError("a classification is given exactly when the state is 'classified'")
    if conn.execute(_ALERT_EXISTS, (alert_id,)).fetchone() is None:
        raise LookupError(f"no alert with id {alert_id}")
    conn.execute(
        _UPSERT_TRIAGE,
        {"id": alert_id, "state": state, "classification": classification, "notes": notes, "actor": actor},
    )
    if state != "new":
        conn.execute(_ACK, (alert_id,))


def save_measurement(conn: psycopg.Connection, measurement: SavedMeasurement) -> int:
    """Store a sky-view measurement; returns its id."""
    row = conn.execute(_SAVE_MEASUREMENT, measurement.model_dump()).fetchone()
    assert row is not None
    return int(row[0])


def measurements(conn: psycopg.Connection, image_id: int) -> list[dict[str, Any]]:
    """Measurements saved on an image, newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_MEASUREMENTS, (image_id,)).fetchall()
