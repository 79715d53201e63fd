"""Sources, light curves and alerts: search, the η–V plane, source detail with its light curve and
postage stamps, exports, the normalise endpoint, and alert triage."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import psycopg
from fastapi import APIRouter, Body, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from contimg.store import browse, lightcurves
from contimg.store.browse import SourceQuery, TriageState
from contimg.web.auth import Operator, User, audit_action
from contimg.web.db import Conn
from contimg.web.errors import ERRORS, NO_NUL
from contimg.web.ops import Id
from contimg.web.plots import eta_v_svg, lightcurve_svg
from contimg.web.templating import page
from science.lightcurve_export import MEDIA_TYPES, ExportFormat, export
from science.lightcurves import SourceLightcurve, StoredVariability
from science.variability import Normalisation, VariabilityThresholds

router = APIRouter(responses=ERRORS)
API = "/api/v1"
SourceName = Annotated[
    str, Path(max_length=200, pattern=NO_NUL, description="as in the monitoring catalogue")
]
DEFAULTS = VariabilityThresholds()


def _query(
    name: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
    ra: Annotated[float | None, Query(ge=0, lt=360)] = None,
    dec: Annotated[float | None, Query(ge=-90, le=90)] = None,
    radius: Annotated[float, Query(gt=0, le=180)] = 1.0,
    min_eta: float | None = None,
    min_v: float | None = None,
    min_flux: float | None = None,
    max_flux: float | None = None,
    min_detections: Annotated[int | None, Query(ge=0, le=100_000)] = None,
    sort: browse.SourceSort = "name",
    limit: Annotated[int, Query(ge=1, le=2000)] = 200,
) -> SourceQuery:
    return SourceQuery(
        name=name or None, ra=ra, dec=dec, radius=radius, min_eta=min_eta, min_v=min_v, min_flux=min_flux,
        max_flux=max_flux, min_detections=min_detections, sort=sort, limit=limit,
    )  # fmt: skip


Search = Annotated[SourceQuery, Depends(_query)]


@router.get(f"{API}/sources", response_model=list[dict[str, Any]], tags=["science"])
def api_sources(who: User, conn: Conn, query: Search) -> list[dict[str, Any]]:
    """Sources by name or cone (ra, dec, radius in degrees), filtered on η, V, flux and detections."""
    return browse.search_sources(conn, query)


def _metrics(conn: psycopg.Connection, name: str) -> StoredVariability | None:
    return lightcurves.stored_variability(conn, name)


class SourceDetail(BaseModel):
    """A catalogue source with its stored metrics."""

    source: dict[str, Any]
    metrics: StoredVariability | None


def get_source(conn: psycopg.Connection, name: str) -> SourceDetail:
    """A source and its metrics; LookupError if unknown."""
    row = browse.source(conn, name)
    if row is None:
        raise LookupError(f"no source named {name!r}")
    return SourceDetail(source=row, metrics=_metrics(conn, name))


@router.get(API + "/sources/{name}", response_model=SourceDetail, tags=["science"])
def api_source(who: User, conn: Conn, name: SourceName) -> SourceDetail:
    """A catalogue source with η, V, χ²_ν and the rest of its stored metrics."""
    return get_source(conn, name)


@router.get(
    API + "/sources/{name}/lightcurve",
    response_model=SourceLightcurve,
    responses={200: {"content": {"text/csv": {}, "application/x-votable+xml": {}}}},
    tags=["science"],
)
def api_lightcurve(who: User, conn: Conn, name: SourceName, format: ExportFormat = ExportFormat.JSON) -> Any:
    """The light curve, measured and reference-normalised, per epoch. ``format`` json returns this
    model; csv and votable return files (the VOTable reads with astropy)."""
    curve = lightcurves.source_lightcurve(conn, name)
    if format is ExportFormat.JSON:
        return curve
    filename = f"{name}.{'xml' if format is ExportFormat.VOTABLE else 'csv'}"
    return Response(
        export(curve, format),
        media_type=MEDIA_TYPES[format],
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"},
    )


class NormaliseRequest(BaseModel):
    """The tutorial's normalise step: a time range, the sources, and the references to divide out."""

    start_mjd: float = Field(ge=0, le=1e6)
    end_mjd: float = Field(ge=0, le=1e6)
    names: list[str] | None = Field(default=None, max_length=10_000, description="default: every source")
    reference_names: list[str] | None = Field(
        default=None, max_length=1000, description="default: the catalogue's"
    )


@router.post(f"{API}/photometry/normalize", response_model=Normalisation, tags=["science"])
def api_normalise(who: User, conn: Conn, body: Annotated[NormaliseRequest, Body()]) -> Normalisation:
    """Light curves between two times normalised on reference sources, with each epoch's scale factor.
    Nothing is stored."""
    return lightcurves.normalise_range(conn, body.start_mjd, body.end_mjd, body.names, body.reference_names)


@router.get(f"{API}/plots/eta-v.svg", response_class=Response, tags=["science"],
            responses={200: {"content": {"image/svg+xml": {}}}})  # fmt: skip
def api_eta_v(
    who: User,
    conn: Conn,
    eta_cut: Annotated[float, Query(gt=0, le=1e9)] = DEFAULTS.eta,
    v_cut: Annotated[float, Query(gt=0, le=1e9)] = DEFAULTS.v,
) -> Response:
    """The η–V plane of every source as SVG; each point links to its source page."""
    rows = browse.search_sources(conn, SourceQuery(limit=2000))
    return Response(eta_v_svg(rows, eta_cut, v_cut), media_type="image/svg+xml")


# Alerts --------------------------------------------------------------------------------------------


@router.get(f"{API}/alerts", response_model=list[dict[str, Any]], tags=["science"])
def api_alerts(who: User, conn: Conn, state: TriageState | None = None) -> list[dict[str, Any]]:
    """Alerts with their triage state, newest first."""
    return browse.alerts(conn, state)


class Triage(BaseModel):
    """A triage decision on one alert."""

    state: TriageState
    classification: str | None = Field(default=None, max_length=200)
    notes: str = Field(default="", max_length=5000)


@router.post(API + "/alerts/{alert_id}/triage", response_model=dict[str, Any], tags=["science"])
def api_triage(who: Operator, conn: Conn, alert_id: Id, body: Annotated[Triage, Body()]) -> dict[str, Any]:
    """Set an alert's triage state (new, acknowledged, classified with a class) and notes."""
    with conn.transaction():
        browse.triage(conn, alert_id, body.state, who.name, body.classification or None, body.notes)
        audit_action(conn, who, "alert.triage", f"alert:{alert_id}", **body.model_dump())
    return {"alert_id": alert_id, **body.model_dump()}


# Pages ---------------------------------------------------------------------------------------------


@router.get("/sources", response_class=HTMLResponse, include_in_schema=False)
def sources_page(
    request: Request,
    who: User,
    conn: Conn,
    query: Search,
    eta_cut: Annotated[float, Query(gt=0, le=1e9)] = DEFAULTS.eta,
    v_cut: Annotated[float, Query(gt=0, le=1e9)] = DEFAULTS.v,
) -> Response:
    """Source search and the η–V plane."""
    rows = browse.search_sources(conn, query)
    plane = eta_v_svg(browse.search_sources(conn, SourceQuery(limit=2000)), eta_cut, v_cut)
    return page(
        request, "sources.html", who, rows=rows, q=query, plane=plane, eta_cut=eta_cut, v_cut=v_cut,
        query_string=request.url.query,
        sorts=("name", "eta", "v", "flux", "detections", "snr"),
    )  # fmt: skip


@router.get("/sources/{name}", response_class=HTMLResponse, include_in_schema=False)
def source_page(
    request: Request,
    who: User,
    conn: Conn,
    name: SourceName,
    start_mjd: float | None = None,
    end_mjd: float | None = None,
) -> Response:
    """One source: metrics, light curves, stamps, exports and links."""
    detail = get_source(conn, name)
    curve = lightcurves.source_lightcurve(conn, name)
    span = (start_mjd, end_mjd) if start_mjd is not None and end_mjd is not None else None
    stamps = browse.source_epochs(conn, name)
    ra, dec = detail.source["ra_deg"], detail.source["dec_deg"]
    links = {
        "SIMBAD": f"https://simbad.cds.unistra.fr/simbad/sim-coo?Coord={ra:.6f}%20{dec:+.6f}&Radius=1&Radius.unit=arcmin",
        "NED": f"https://ned.ipac.caltech.edu/conesearch?coordinates={ra:.6f}d%20{dec:+.6f}d&radius=1",
        "Gaia": f"https://vizier.cds.unistra.fr/viz-bin/VizieR-4?-source=I/355/gaiadr3&-c={ra:.6f}%20{dec:+.6f}&-c.rm=1",
    }
    return page(
        request, "source.html", who, d=detail, curve=curve, stamps=stamps, links=links,
        raw_svg=lightcurve_svg(curve, False, span), norm_svg=lightcurve_svg(curve, True, span),
        qname=quote(name, safe=""), span=span,
    )  # fmt: skip


@router.get("/alerts", response_class=HTMLResponse, include_in_schema=False)
def alerts_page(request: Request, who: User, conn: Conn, state: TriageState | None = None) -> Response:
    """Alerts with their triage state."""
    return page(request, "alerts.html", who, alerts=browse.alerts(conn, state), state=state or "")


@router.post("/alerts/{alert_id}/triage", include_in_schema=False)
def triage_form(
    who: Operator,
    conn: Conn,
    alert_id: Id,
    state: Annotated[TriageState, Form()],
    classification: Annotated[str, Form(max_length=200)] = "",
    notes: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    """Triage an alert from the page."""
    api_triage(who, conn, alert_id, Triage(state=state, classification=classification or None, notes=notes))
    return RedirectResponse("/alerts", status_code=303)
