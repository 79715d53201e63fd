"""A light curve as a file: CSV, JSON or VOTable, one row per epoch with the measured and normalised
fluxes. The CLI's ``lightcurve export`` and the HTTP API both write through here, so they agree."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from science.lightcurves import SourceLightcurve, StoredVariability

MJD_EPOCH = datetime(1858, 11, 17, tzinfo=UTC)


class ExportFormat(StrEnum):
    """The formats a light curve is exported in."""

    CSV = "csv"
    JSON = "json"
    VOTABLE = "votable"


MEDIA_TYPES = {
    ExportFormat.CSV: "text/csv",
    ExportFormat.JSON: "application/json",
    ExportFormat.VOTABLE: "application/x-votable+xml",
}


def epoch_rows(curve: SourceLightcurve) -> list[dict[str, Any]]:
    """One dict per epoch, in time order."""
    return [
        {
            "source": curve.name,
            "mjd": e.mjd,
            "time_utc": (MJD_EPOCH + timedelta(days=e.mjd)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
            "flux_jy": e.flux_jy,
            "flux_err_jy": e.flux_err_jy,
            "norm_flux_jy": e.norm_flux_jy,
            "norm_flux_err_jy": e.norm_flux_err_jy,
            "snr": e.snr,
            "image_path": e.image_path,
        }
        for e in curve.epochs
    ]


def to_csv(curve: SourceLightcurve) -> bytes:
    """CSV with a header row."""
    rows = epoch_rows(curve)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]) if rows else ["source"])
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue().encode()


def to_json(curve: SourceLightcurve, stored: StoredVariability | None) -> bytes:
    """JSON with the references and the stored metrics beside the epochs."""
    payload = {
        "source": curve.name,
        "references": curve.references,
        "metrics": stored.model_dump(mode="json") if stored else None,
        "epochs": epoch_rows(curve),
    }
    return (json.dumps(payload, indent=2) + "\n").encode()


def to_votable(curve: SourceLightcurve) -> bytes:
    """A VOTable with units (Jy, d); a missing SNR is NaN, as VOTable floats have no null."""
    from astropy import units as u
    from astropy.io.votable import from_table, writeto
    from astropy.table import Table

    rows = epoch_rows(curve)
    table = Table(
        {
            "mjd": [r["mjd"] for r in rows],
            "time_utc": [r["time_utc"] for r in rows],
            "flux": [r["flux_jy"] for r in rows] * u.Jy,
            "flux_err": [r["flux_err_jy"] for r in rows] * u.Jy,
            "norm_flux": [r["norm_flux_jy"] for r in rows] * u.Jy,
            "norm_flux_err": [r["norm_flux_err_jy"] for r in rows] * u.Jy,
            "snr": [math.nan if r["snr"] is None else r["snr"] for r in rows],
            "image_path": [r["image_path"] or "" for r in rows],
        },
        meta={"name": curve.name},
    )
    table["mjd"].unit = u.day
    buffer = io.BytesIO()
    writeto(from_table(table, table_id=curve.name), buffer)
    return buffer.getvalue()


def export(curve: SourceLightcurve, fmt: ExportFormat, stored: StoredVariability | None = None) -> bytes:
    """The light curve in ``fmt``."""
    if fmt is ExportFormat.CSV:
        return to_csv(curve)
    if fmt is ExportFormat.JSON:
        return to_json(curve, stored)
    return to_votable(curve)
