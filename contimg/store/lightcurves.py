"""Light curves in the products database: load photometry, store metrics, raise alerts.

The tables are ``products.variability`` (one row per source, the last update's metrics) and
``products.alerts``. Writers take the caller's connection and open no transaction:
``update-lightcurves`` calls them from its completion hook. The assessment itself is
``science.lightcurves``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import psycopg
import structlog
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from science.errors import InvalidInputError
from science.lightcurves import (
    DEFAULT_MIN_EPOCHS,
    Alert,
    AlertKind,
    Epoch,
    LightcurveUpdate,
    SortKey,
    SourceLightcurve,
    SourceVariability,
    StoredVariability,
    TransientCriteria,
    alert_snapshot,
    assess,
)
from science.photometry import PhotometryResult
from science.variability import Normalisation, VariabilityThresholds, lightcurves_from_photometry, normalise

log = structlog.get_logger(__name__)


# Queries ---------------------------------------------------------------------------------------

_SOURCE_NAMES = "SELECT name FROM products.sources ORDER BY name"
_KNOWN_SOURCES = "SELECT name FROM products.sources WHERE name = ANY(%s)"
_REFERENCE_SOURCES = "SELECT name FROM products.sources WHERE reference ORDER BY name"
_SOURCE_REFERENCE_FLAG = "SELECT reference FROM products.sources WHERE name = %s"

# Measurements of a mosaic repeat epochs already measured on its input images, so they are left
# out unless asked for; so are those of an image made from a superseded MS (a late subband led to a
# reconversion, whose images are measured in their turn).
_PHOTOMETRY_OF = """
SELECT p.source_name AS name, p.ra_deg, p.dec_deg, p.image_path, p.mjd, p.peak_jy, p.peak_err_jy,
       p.flux_jy, p.flux_err_jy, p.local_rms_jy, p.snr, p.pb_response, p.flags
FROM products.photometry p
LEFT JOIN products.images i ON i.id = p.image_id
LEFT JOIN products.ms_index m ON m.id = i.ms_id
WHERE p.source_name = ANY(%(names)s) AND (%(include_mosaics)s OR p.mosaic_id IS NULL)
  AND m.superseded_by IS NULL
ORDER BY p.source_name, p.mjd
"""

_PREVIOUS_FLAGS = """
SELECT source_name, is_variable, transient_candidate, rapid_rise
FROM products.variability
WHERE source_name = ANY(%s)
FOR UPDATE
"""

_UPSERT_VARIABILITY = """
INSERT INTO products.variability (source_name, n_epochs, first_mjd, last_mjd, mean_flux_jy,
    weighted_mean_flux_jy, eta, v, chi2_nu, vs, m, vs_mjd_a, vs_mjd_b, is_variable,
    consistent_with_constant, transient_candidate, latest_snr, exceeded, thresholds, n_references, task_id,
    rise_sigma, rapid_rise)
VALUES (%(name)s, %(n_epochs)s, %(first_mjd)s, %(last_mjd)s, %(mean_flux_jy)s, %(weighted_mean_flux_jy)s,
    %(eta)s, %(v)s, %(chi2_nu)s, %(vs)s, %(m)s, %(vs_mjd_a)s, %(vs_mjd_b)s, %(is_variable)s,
    %(consistent_with_constant)s, %(transient_candidate)s, %(latest_snr)s, %(exceeded)s, %(thresholds)s,
    %(n_references)s, %(task_id)s, %(rise_sigma)s, %(rapid_rise)s)
ON CONFLICT (source_name) DO UPDATE SET
    n_epochs = excluded.n_epochs, first_mjd = excluded.first_mjd, last_mjd = excluded.last_mjd,
    mean_flux_jy = excluded.mean_flux_jy, weighted_mean_flux_jy = excluded.weighted_mean_flux_jy,
    eta = excluded.eta, v = excluded.v, chi2_nu = excluded.chi2_nu, vs = excluded.vs, m = excluded.m,
    vs_mjd_a = excluded.vs_mjd_a, vs_mjd_b = excluded.vs_mjd_b, is_variable = excluded.is_variable,
    consistent_with_constant = excluded.consistent_with_constant,
    transient_candidate = excluded.transient_candidate, latest_snr = excluded.latest_snr,
    exceeded = excluded.exceeded, thresholds = excluded.thresholds, n_references = excluded.n_references,
    task_id = excluded.task_id, rise_sigma = excluded.rise_sigma, rapid_rise = excluded.rapid_rise,
    updated_at = now()
"""

# The partial unique index keeps one open alert per source and kind; a duplicate returns no row.
_INSERT_ALERT = """
INSERT INTO products.alerts (source_name, kind, metrics, task_id)
VALUES (%s, %s, %s, %s)
ON CONFLICT (source_name, kind) WHERE NOT acknowledged DO NOTHING
RETURNING id, source_name, detection_id, kind, metrics, task_id, created_at, acknowledged
"""

_STORED_VARIABILITY = "SELECT * FROM products.variability WHERE source_name = %s"

# Sorted by the chosen metric, largest first, then by name; the sort key is a parameter, not SQL.
_LIST_SOURCES = """
SELECT s.name, s.priority, s.reference, v.n_epochs, v.eta, v.v, v.chi2_nu, v.vs, v.m,
       v.is_variable, v.transient_candidate, v.weighted_mean_flux_jy, v.updated_at
FROM products.sources s
LEFT JOIN products.variability v ON v.source_name = s.name
WHERE NOT %(variable_only)s OR v.is_variable OR v.transient_candidate
ORDER BY CASE WHEN %(sort)s = 'eta' THEN v.eta END DESC NULLS LAST,
         CASE WHEN %(sort)s = 'v' THEN v.v END DESC NULLS LAST,
         CASE WHEN %(sort)s = 'chi2' THEN v.chi2_nu END DESC NULLS LAST,
         s.name
LIMIT %(limit)s
"""

_LIST_ALERTS = """
SELECT id, source_name, detection_id, kind, metrics, task_id, created_at, acknowledged
FROM products.alerts
WHERE %(all)s OR NOT acknowledged
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s
"""

_ACKNOWLEDGE_ALERT = """
UPDATE products.alerts SET acknowledged = true, acknowledged_at = now()
WHERE id = %s AND NOT acknowledged
RETURNING id
"""


# Reading ---------------------------------------------------------------------------------------


def source_names(conn: psycopg.Connection) -> list[str]:
    """Every monitored source, by name."""
    return [str(r[0]) for r in conn.execute(_SOURCE_NAMES).fetchall()]


def reference_sources(conn: psycopg.Connection) -> list[str]:
    """The sources flagged ``reference`` in the catalogue."""
    return [str(r[0]) for r in conn.execute(_REFERENCE_SOURCES).fetchall()]


def unknown_sources(conn: psycopg.Connection, names: Collection[str]) -> list[str]:
    """Those of ``names`` that are not in ``products.sources``, sorted."""
    known = {str(r[0]) for r in conn.execute(_KNOWN_SOURCES, (list(names),)).fetchall()}
    return sorted(set(names) - known)


def load_photometry(
    conn: psycopg.Connection, names: Collection[str], include_mosaics: bool = False
) -> list[PhotometryResult]:
    """The stored forced measurements of ``names``, by source and time."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            _PHOTOMETRY_OF, {"names": list(names), "include_mosaics": include_mosaics}
        ).fetchall()
    return [PhotometryResult.model_validate(r) for r in rows]


def _resolve(
    conn: psycopg.Connection, names: Sequence[str] | None, reference_names: Sequence[str] | None
) -> tuple[list[str], list[str]]:
    """The sources to assess and the references to use; InvalidInputError names unknown ones."""
    asked = [*(names or []), *(reference_names or [])]
    missing = unknown_sources(conn, asked) if asked else []
    if missing:
        raise InvalidInputError(
            f"unknown sources {', '.join(missing)}: not in products.sources; "
            "run run-photometry with a catalogue that lists them"
        )
    chosen = list(dict.fromkeys(names)) if names else source_names(conn)
    refs = list(reference_names) if reference_names is not None else reference_sources(conn)
    return chosen, refs


def compute_update(
    conn: psycopg.Connection,
    names: Sequence[str] | None = None,
    reference_names: Sequence[str] | None = None,
    thresholds: VariabilityThresholds | None = None,
    min_epochs: int = DEFAULT_MIN_EPOCHS,
    criteria: TransientCriteria | None = None,
    include_mosaics: bool = False,
) -> LightcurveUpdate:
    """Assess ``names`` (default: every source) from the stored photometry; writes nothing.

    ``reference_names`` None means the catalogue's reference sources; an empty list turns
    normalisation off.
    """
    chosen, refs = _resolve(conn, names, reference_names)
    results = load_photometry(conn, {*chosen, *refs}, include_mosaics)
    update = assess(results, chosen, refs, thresholds, min_epochs, criteria)
    log.info(
        "light curves assessed",
        sources=len(chosen),
        references=len(update.references),
        variable=sum(s.metrics.is_variable for s in update.sources),
        transient=sum(s.transient_candidate for s in update.sources),
    )
    return update


def stored_variability(conn: psycopg.Connection, name: str) -> StoredVariability | None:
    """The metrics last stored for ``name``, or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_STORED_VARIABILITY, (name,)).fetchone()
    return StoredVariability.model_validate(row) if row else None


def normalise_range(
    conn: psycopg.Connection,
    start_mjd: float,
    end_mjd: float,
    names: Sequence[str] | None = None,
    reference_names: Sequence[str] | None = None,
    include_mosaics: bool = False,
) -> Normalisation:
    """The photometry of ``names`` (default: every source) between two times, normalised on the
    references (default: the catalogue's), with each epoch's scale factor: the tutorial's normalise
    step, shared by the CLI and the HTTP API. InvalidInputError names unknown sources."""
    if end_mjd < start_mjd:
        raise InvalidInputError(f"the range ends (MJD {end_mjd}) before it starts (MJD {start_mjd})")
    chosen, refs = _resolve(conn, names, reference_names)
    results = [
        r
        for r in load_photometry(conn, {*chosen, *refs}, include_mosaics)
        if r.mjd is not None and start_mjd <= r.mjd <= end_mjd
    ]
    curves = lightcurves_from_photometry(results, refs)
    done = normalise(curves, refs)
    keep = set(chosen)
    return Normalisation(lightcurves=[lc for lc in done.lightcurves if lc.name in keep], scales=done.scales)


def source_lightcurve(
    conn: psycopg.Connection,
    name: str,
    reference_names: Sequence[str] | None = None,
    include_mosaics: bool = False,
) -> SourceLightcurve:
    """The light curve of ``name``, measured and normalised; LookupError if the source is unknown."""
    flag = conn.execute(_SOURCE_REFERENCE_FLAG, (name,)).fetchone()
    if flag is None:
        raise LookupError(f"no source named {name!r} in products.sources; see `contimg sources list`")
    refs = list(reference_names) if reference_names is not None else reference_sources(conn)
    results = load_photometry(conn, {name, *refs}, include_mosaics)
    raw = {lc.name: lc for lc in lightcurves_from_photometry(results, refs)}
    normalised = {lc.name: lc for lc in normalise(list(raw.values()), refs).lightcurves}
    snr_of = {r.image_path: r.snr for r in results if r.name == name}
    epochs = []
    if name in raw:
        # normalise keeps each curve's measurement order, so measured and normalised points pair up.
        pairs = zip(raw[name].measurements, normalised[name].measurements, strict=True)
        for measured, scaled in sorted(pairs, key=lambda pair: pair[0].mjd):
            epochs.append(
                Epoch(
                    mjd=measured.mjd,
                    flux_jy=measured.flux_jy,
                    flux_err_jy=measured.flux_err_jy,
                    norm_flux_jy=scaled.flux_jy,
                    norm_flux_err_jy=scaled.flux_err_jy,
                    snr=snr_of.get(measured.image_path or ""),
                    image_path=measured.image_path,
                )
            )
    return SourceLightcurve(
        name=name, reference=bool(flag[0]), epochs=epochs, references=sorted(set(refs) & set(raw))
    )


def list_sources(
    conn: psycopg.Connection, variable_only: bool = False, sort: SortKey = "name", limit: int = 1000
) -> list[dict[str, Any]]:
    """Sources with their stored metrics; ``variable_only`` keeps variables and transient candidates."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            _LIST_SOURCES, {"variable_only": variable_only, "sort": sort, "limit": limit}
        ).fetchall()


def list_alerts(
    conn: psycopg.Connection, include_acknowledged: bool = False, limit: int = 200
) -> list[Alert]:
    """Alerts, newest first; open ones only unless ``include_acknowledged``."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_LIST_ALERTS, {"all": include_acknowledged, "limit": limit}).fetchall()
    return [Alert.model_validate(r) for r in rows]


# Writing ---------------------------------------------------------------------------------------


def _row(assessed: SourceVariability, update: LightcurveUpdate, task_id: int | None) -> dict[str, Any]:
    metrics = assessed.metrics
    pair = metrics.vs_epochs_mjd or (None, None)
    return {
        **metrics.model_dump(exclude={"vs_epochs_mjd"}),
        "first_mjd": assessed.first_mjd,
        "last_mjd": assessed.last_mjd,
        "vs_mjd_a": pair[0],
        "vs_mjd_b": pair[1],
        "transient_candidate": assessed.transient_candidate,
        "latest_snr": assessed.latest_snr,
        "rise_sigma": assessed.rise_sigma,
        "rapid_rise": assessed.rapid_rise,
        "thresholds": Jsonb({**update.thresholds.model_dump(), "min_epochs": update.min_epochs}),
        "n_references": len(update.references),
        "task_id": task_id,
    }


def record_update(
    conn: psycopg.Connection, update: LightcurveUpdate, task_id: int | None = None
) -> list[Alert]:
    """Store the update's metrics and raise alerts for sources newly flagged; returns the new alerts.

    A source is newly flagged when this update flags it (variable, transient candidate, or rapid rise)
    and the previous update did not. The previous rows are locked first, so two updates finishing together
    agree on what was new.
    """
    names = [s.metrics.name for s in update.sources]
    previous = {
        str(name): (bool(variable), bool(transient), bool(rose))
        for name, variable, transient, rose in conn.execute(_PREVIOUS_FLAGS, (names,)).fetchall()
    }
    with conn.cursor() as cur:
        cur.executemany(_UPSERT_VARIABILITY, [_row(s, update, task_id) for s in update.sources])

    alerts: list[Alert] = []
    for assessed in update.sources:
        was_variable, was_transient, had_risen = previous.get(assessed.metrics.name, (False, False, False))
        kinds: list[AlertKind] = []
        if assessed.metrics.is_variable and not was_variable:
            kinds.append("variable")
        if assessed.transient_candidate and not was_transient:
            kinds.append("transient")
        if assessed.rapid_rise and not had_risen:
            kinds.append("rapid_rise")
        for kind in kinds:
            with conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute(
                    _INSERT_ALERT, (assessed.metrics.name, kind, Jsonb(alert_snapshot(assessed)), task_id)
                ).fetchone()
            if row is not None:
                alerts.append(Alert.model_validate(row))
    return alerts


def acknowledge_alert(conn: psycopg.Connection, alert_id: int) -> bool:
    """Mark an open alert acknowledged; False if there is no open alert with that id."""
    return conn.execute(_ACKNOWLEDGE_ALERT, (alert_id,)).fetchone() is not None
