"""Monitoring lists, blind detections and new-source alerts in the products database.

A monitoring list is a named CSV of sources (``name,ra,dec,priority``) an operator registered; its
sources go into ``products.sources`` like any catalogue's, and its membership into
``products.monitoring_members``. Detections are what source finding found in an image, with what each
was identified as; an unidentified one bright enough raises a ``new_source`` alert unless an open one
already stands near the same position (a new source stays new until someone looks). Writers take the
caller's connection and open no transaction, so task completion hooks can call them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from contimg.store import products
from science.catalogs import MonitoringSource
from science.lightcurves import Alert
from science.source_finding import DEFAULT_MATCH_RADIUS_ARCSEC, Identification

_REGISTER_LIST = """
INSERT INTO products.monitoring_lists (name, path) VALUES (%s, %s)
ON CONFLICT (name) DO UPDATE SET path = excluded.path, registered_at = now()
"""
_CLEAR_MEMBERS = "DELETE FROM products.monitoring_members WHERE list_name = %s"
_ADD_MEMBER = """
INSERT INTO products.monitoring_members (list_name, source_name, priority) VALUES (%s, %s, %s)
"""
_REMOVE_LIST = "DELETE FROM products.monitoring_lists WHERE name = %s RETURNING name"
_LISTS = """
SELECT l.name, l.path, l.registered_at, count(m.source_name) AS n_sources,
       min(m.priority) AS top_priority
FROM products.monitoring_lists l
LEFT JOIN products.monitoring_members m ON m.list_name = l.name
GROUP BY l.name ORDER BY l.name
"""
_MEMBERS = """
SELECT s.name, s.ra_deg, s.dec_deg, m.priority, s.reference, s.flux_mjy
FROM products.monitoring_members m JOIN products.sources s ON s.name = m.source_name
WHERE m.list_name = ANY(%s)
ORDER BY m.priority NULLS LAST, s.name
"""

_CLEAR_DETECTIONS = "DELETE FROM products.detections WHERE image_path = %s"
_INSERT_DETECTION = """
INSERT INTO products.detections (image_path, mjd, ra_deg, dec_deg, pos_err_arcsec, peak_jy, peak_err_jy,
    flux_jy, flux_err_jy, major_arcsec, minor_arcsec, pa_deg, local_rms_jy, snr, match_kind, match_name,
    separation_arcsec, nearest_survey, nearest_name, nearest_separation_arcsec, nearest_flux_mjy, task_id)
VALUES (%(image_path)s, %(mjd)s, %(ra_deg)s, %(dec_deg)s, %(pos_err_arcsec)s, %(peak_jy)s, %(peak_err_jy)s,
    %(flux_jy)s, %(flux_err_jy)s, %(major_arcsec)s, %(minor_arcsec)s, %(pa_deg)s, %(local_rms_jy)s, %(snr)s,
    %(match_kind)s, %(match_name)s, %(separation_arcsec)s, %(nearest_survey)s, %(nearest_name)s,
    %(nearest_separation_arcsec)s, %(nearest_flux_mjy)s, %(task_id)s)
RETURNING id
"""
# Open new-source alerts within a box around a position (the caller checks the true separation).
_OPEN_NEW_SOURCES_NEAR = """
SELECT d.ra_deg, d.dec_deg
FROM products.alerts a JOIN products.detections d ON d.id = a.detection_id
WHERE a.kind = 'new_source' AND NOT a.acknowledged
  AND d.dec_deg BETWEEN %(dec)s - %(r)s AND %(dec)s + %(r)s
"""
_INSERT_NEW_SOURCE_ALERT = """
INSERT INTO products.alerts (detection_id, kind, metrics, task_id)
VALUES (%s, 'new_source', %s, %s)
RETURNING id, source_name, detection_id, kind, metrics, task_id, created_at, acknowledged
"""
_DETECTIONS_OF = """
SELECT * FROM products.detections WHERE image_path = %s ORDER BY peak_jy DESC
"""


class MonitoringList(BaseModel):
    """A registered list and how many sources it holds."""

    name: str
    path: str
    registered_at: datetime
    n_sources: int
    top_priority: int | None


def register_list(
    conn: psycopg.Connection, name: str, path: Path | str, sources: Sequence[MonitoringSource]
) -> int:
    """Register (or replace) list ``name`` with ``sources``; returns how many it holds."""
    products.upsert_sources(conn, sources, path)
    conn.execute(_REGISTER_LIST, (name, str(path)))
    conn.execute(_CLEAR_MEMBERS, (name,))
    with conn.cursor() as cur:
        cur.executemany(_ADD_MEMBER, [(name, s.name, s.priority) for s in sources])
    return len(sources)


def remove_list(conn: psycopg.Connection, name: str) -> bool:
    """Forget list ``name`` (its sources and their photometry stay); False if there is none."""
    return conn.execute(_REMOVE_LIST, (name,)).fetchone() is not None


def monitoring_lists(conn: psycopg.Connection) -> list[MonitoringList]:
    """Every registered list, by name."""
    with conn.cursor(row_factory=dict_row) as cur:
        return [MonitoringList.model_validate(r) for r in cur.execute(_LISTS).fetchall()]


def monitored_sources(conn: psycopg.Connection, list_names: Sequence[str]) -> list[MonitoringSource]:
    """The sources of the named lists, highest priority (lowest number) first; each once."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_MEMBERS, (list(list_names),)).fetchall()
    seen: dict[str, MonitoringSource] = {}
    for row in rows:
        seen.setdefault(row["name"], MonitoringSource.model_validate(row))
    return list(seen.values())


def record_detections(
    conn: psycopg.Connection,
    image_path: Path | str,
    mjd: float | None,
    identified: Sequence[Identification],
    new: Sequence[Identification],
    task_id: int | None = None,
    radius_arcsec: float = DEFAULT_MATCH_RADIUS_ARCSEC,
) -> list[Alert]:
    """Replace the image's detections with ``identified`` and raise alerts for ``new``; returns them.

    ``new`` is a subset of ``identified`` (the same objects, as ``new_sources`` returns them). A new
    source near an open new-source alert raises nothing.
    """
    conn.execute(_CLEAR_DETECTIONS, (str(image_path),))
    ids: dict[int, int] = {}
    for ident in identified:
        row = conn.execute(_INSERT_DETECTION, _detection_row(ident, image_path, mjd, task_id)).fetchone()
        assert row is not None
        ids[id(ident)] = int(row[0])
    alerts = []
    for ident in new:
        source = ident.source
        radius_deg = radius_arcsec / 3600.0
        nearby = conn.execute(_OPEN_NEW_SOURCES_NEAR, {"dec": source.dec_deg, "r": radius_deg}).fetchall()
        if any(_separation_deg(source.ra_deg, source.dec_deg, ra, dec) <= radius_deg for ra, dec in nearby):
            continue
        evidence: dict[str, Any] = {
            "image_path": str(image_path),
            "mjd": mjd,
            **source.model_dump(include={"ra_deg", "dec_deg", "peak_jy", "flux_jy", "snr", "local_rms_jy"}),
            "nearest": None
            if ident.nearest_name is None
            else {
                "survey": ident.nearest_survey,
                "name": ident.nearest_name,
                "separation_arcsec": ident.nearest_separation_arcsec,
                "flux_mjy": ident.nearest_flux_mjy,
            },
        }
        with conn.cursor(row_factory=dict_row) as cur:
            alert = cur.execute(
                _INSERT_NEW_SOURCE_ALERT, (ids[id(ident)], Jsonb(evidence), task_id)
            ).fetchone()
        alerts.append(Alert.model_validate(alert))
    return alerts


def detections_of(conn: psycopg.Connection, image_path: Path | str) -> list[dict[str, Any]]:
    """The detections stored for an image, brightest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_DETECTIONS_OF, (str(image_path),)).fetchall()


def _detection_row(
    ident: Identification, image_path: Path | str, mjd: float | None, task_id: int | None
) -> dict[str, Any]:
    return {
        **ident.source.model_dump(exclude={"fit_flags"}),
        **ident.model_dump(exclude={"source", "matched"}),
        "image_path": str(image_path),
        "mjd": mjd,
        "task_id": task_id,
    }


def _separation_deg(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Great-circle separation (haversine), in degrees."""
    ra1, dec1, ra2, dec2 = (math.radians(v) for v in (ra1, dec1, ra2, dec2))
    h = math.sin((dec2 - dec1) / 2) ** 2 + math.cos(dec1) * math.cos(dec2) * math.sin((ra2 - ra1) / 2) ** 2
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(h))))
