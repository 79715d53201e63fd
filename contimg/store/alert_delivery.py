"""Science alerts on their way out: the subject of an alert (where, how bright, in which image), its
VOEvent as built once, and the state of its delivery to each sink (``products.alert_voevents`` and
``products.alert_deliveries``, migration 0008).

Writers take the caller's connection and open no transaction: the notifier creates a delivery's row
(``add_delivery``), then holds its lock from ``lock_delivery`` to ``mark_delivered`` in one transaction
around the send.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel

DeliveryState = Literal["pending", "delivered", "rejected"]

# An alert with its position and the measurement behind it: a new source's detection, or a catalogued
# source's position and its latest forced measurement up to the alert's last epoch.
_SUBJECT = """
SELECT a.id, a.kind, a.metrics, a.created_at, a.source_name, a.detection_id,
       coalesce(d.ra_deg, s.ra_deg) AS ra_deg, coalesce(d.dec_deg, s.dec_deg) AS dec_deg,
       d.pos_err_arcsec,
       coalesce(d.flux_jy, p.flux_jy) AS flux_jy, coalesce(d.flux_err_jy, p.flux_err_jy) AS flux_err_jy,
       coalesce(d.peak_jy, p.peak_jy) AS peak_jy, coalesce(d.snr, p.snr) AS snr,
       coalesce(d.local_rms_jy, p.local_rms_jy) AS local_rms_jy,
       coalesce(d.image_path, p.image_path) AS image_path, coalesce(d.mjd, p.mjd) AS mjd
FROM products.alerts a
LEFT JOIN products.detections d ON d.id = a.detection_id
LEFT JOIN products.sources s ON s.name = a.source_name
LEFT JOIN LATERAL (
    SELECT ph.flux_jy, ph.flux_err_jy, ph.peak_jy, ph.snr, ph.local_rms_jy, ph.image_path, ph.mjd
    FROM products.photometry ph
    WHERE ph.source_name = a.source_name
      AND (a.metrics->>'last_mjd' IS NULL OR ph.mjd <= (a.metrics->>'last_mjd')::double precision)
    ORDER BY ph.mjd DESC NULLS LAST, ph.id DESC
    LIMIT 1
) p ON a.source_name IS NOT NULL
WHERE a.id = %s
"""
_STORE_VOEVENT = """
INSERT INTO products.alert_voevents (alert_id, ivorn, document) VALUES (%s, %s, %s)
ON CONFLICT (alert_id) DO NOTHING
"""
_VOEVENT = "SELECT ivorn, document FROM products.alert_voevents WHERE alert_id = %s"
_ADD_DELIVERY = """
INSERT INTO products.alert_deliveries (alert_id, sink, sink_kind) VALUES (%s, %s, %s)
ON CONFLICT (alert_id, sink) DO NOTHING
"""
_LOCK_DELIVERY = """
SELECT state, attempts FROM products.alert_deliveries WHERE alert_id = %s AND sink = %s FOR UPDATE
"""
_MARK_DELIVERED = """
UPDATE products.alert_deliveries
SET state = 'delivered', attempts = attempts + 1, detail = %s, last_error = NULL, delivered_at = now(),
    updated_at = now()
WHERE alert_id = %s AND sink = %s
"""
_MARK_FAILED = """
UPDATE products.alert_deliveries
SET state = %s, attempts = attempts + 1, last_error = %s, updated_at = now()
WHERE alert_id = %s AND sink = %s AND state = 'pending'
"""
_DELIVERIES_OF = """
SELECT alert_id, sink, sink_kind, state, attempts, last_error, detail, delivered_at, updated_at
FROM products.alert_deliveries WHERE alert_id = ANY(%s) ORDER BY alert_id, sink
"""


class AlertSubject(BaseModel):
    """What a VOEvent says about an alert."""

    id: int
    kind: str
    metrics: dict[str, Any]
    created_at: datetime
    source_name: str | None
    detection_id: int | None
    ra_deg: float
    dec_deg: float
    pos_err_arcsec: float | None
    flux_jy: float | None
    flux_err_jy: float | None
    peak_jy: float | None
    snr: float | None
    local_rms_jy: float | None
    image_path: str | None
    mjd: float | None


class Delivery(BaseModel):
    """One alert's delivery to one sink."""

    alert_id: int
    sink: str
    sink_kind: str
    state: DeliveryState
    attempts: int
    last_error: str | None
    detail: str | None
    delivered_at: datetime | None
    updated_at: datetime


def alert_subject(conn: psycopg.Connection, alert_id: int) -> AlertSubject | None:
    """The alert with its position and measurement; None if there is no such alert."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_SUBJECT, (alert_id,)).fetchone()
    return None if row is None else AlertSubject.model_validate(row)


def store_voevent(conn: psycopg.Connection, alert_id: int, ivorn: str, document: str) -> tuple[str, str]:
    """Keep the alert's VOEvent unless one is kept already; returns the kept (ivorn, document)."""
    conn.execute(_STORE_VOEVENT, (alert_id, ivorn, document))
    row = conn.execute(_VOEVENT, (alert_id,)).fetchone()
    assert row is not None
    return str(row[0]), str(row[1])


def stored_voevent(conn: psycopg.Connection, alert_id: int) -> tuple[str, str] | None:
    """The alert's kept (ivorn, document), if it was built."""
    row = conn.execute(_VOEVENT, (alert_id,)).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


def add_delivery(conn: psycopg.Connection, alert_id: int, sink: str, sink_kind: str) -> None:
    """Create the delivery row, pending, unless it exists. Call it outside the send's transaction, so a
    failed send, rolled back, still has a row to count its attempt on."""
    conn.execute(_ADD_DELIVERY, (alert_id, sink, sink_kind))


def lock_delivery(conn: psycopg.Connection, alert_id: int, sink: str) -> DeliveryState:
    """Lock the delivery row until the transaction ends; returns its state."""
    row = conn.execute(_LOCK_DELIVERY, (alert_id, sink)).fetchone()
    assert row is not None
    state: DeliveryState = row[0]
    return state


def mark_delivered(conn: psycopg.Connection, alert_id: int, sink: str, detail: str) -> None:
    """Record that the sink took the alert."""
    conn.execute(_MARK_DELIVERED, (detail, alert_id, sink))


def mark_failed(conn: psycopg.Connection, alert_id: int, sink: str, error: str, rejected: bool) -> None:
    """Count a failed attempt: ``rejected`` ends the delivery for good, otherwise it stays pending."""
    conn.execute(_MARK_FAILED, ("rejected" if rejected else "pending", error, alert_id, sink))


def deliveries(conn: psycopg.Connection, alert_ids: list[int]) -> dict[int, list[Delivery]]:
    """The delivery rows of the given alerts, by alert id."""
    found: dict[int, list[Delivery]] = {i: [] for i in alert_ids}
    with conn.cursor(row_factory=dict_row) as cur:
        for row in cur.execute(_DELIVERIES_OF, (alert_ids,)).fetchall():
            found[row["alert_id"]].append(Delivery.model_validate(row))
    return found
