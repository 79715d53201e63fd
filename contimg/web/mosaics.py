"""Mosaics: the list, and each one in the sky view (render, WCS, click-to-measure) as images have it.
Saved measurements belong to images, so a mosaic's sky view measures but does not save."""

from __future__ import annotations

from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from contimg.store import browse
from contimg.web.auth import User
from contimg.web.db import Conn
from contimg.web.errors import ERRORS
from contimg.web.ops import Id
from contimg.web.sky import PNG, Click, measure_click, place, sky_page
from science.fits_image import read_plane
from science.photometry import PhotometryResult
from science.sky_render import View, render, wcs_json, window

router = APIRouter(responses=ERRORS)
API = "/api/v1"


def _mosaic_row(conn: psycopg.Connection, mosaic_id: int) -> dict[str, Any]:
    row = browse.mosaic(conn, mosaic_id)
    if row is None:
        raise LookupError(f"no mosaic with id {mosaic_id}")
    return row


@router.get(f"{API}/mosaics", response_model=list[dict[str, Any]], tags=["science"])
def api_mosaics(
    who: User, conn: Conn, limit: Annotated[int, Query(ge=1, le=500)] = 24
) -> list[dict[str, Any]]:
    """Mosaics newest first."""
    return browse.mosaics(conn, limit)


@router.get(API + "/mosaics/{mosaic_id}", response_model=dict[str, Any], tags=["science"])
def api_mosaic(who: User, conn: Conn, mosaic_id: Id) -> dict[str, Any]:
    """One mosaic: inputs, beam, noise, coverage, and the task that made it."""
    return _mosaic_row(conn, mosaic_id)


@router.get(API + "/mosaics/{mosaic_id}/wcs", response_model=dict[str, Any], tags=["science"])
def api_mosaic_wcs(who: User, conn: Conn, mosaic_id: Id) -> dict[str, Any]:
    """The mosaic's celestial WCS."""
    _, wcs, _ = read_plane(_mosaic_row(conn, mosaic_id)["path"])
    return wcs_json(wcs)


@router.get(API + "/mosaics/{mosaic_id}/render.png", response_class=Response, responses=PNG, tags=["science"])
async def api_mosaic_render(
    who: User, conn: Conn, mosaic_id: Id, view: Annotated[View, Depends()]
) -> Response:
    """A window of the mosaic as PNG."""
    path = _mosaic_row(conn, mosaic_id)["path"]

    def draw() -> bytes:
        data, _, _ = read_plane(path)
        return render(data, view)[0]

    png = await run_in_threadpool(draw)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=60"})


@router.post(API + "/mosaics/{mosaic_id}/measure", response_model=PhotometryResult, tags=["science"])
async def api_mosaic_measure(
    who: User, conn: Conn, mosaic_id: Id, click: Annotated[Click, Body()]
) -> PhotometryResult:
    """Measure at a point of the mosaic (nothing is stored)."""
    row = {**_mosaic_row(conn, mosaic_id), "psf_path": None}
    return await run_in_threadpool(measure_click, row, click)


@router.get("/mosaics/{mosaic_id}", response_class=HTMLResponse, include_in_schema=False)
def mosaic_page(
    request: Request, who: User, conn: Conn, mosaic_id: Id, view: Annotated[View, Depends()]
) -> Response:
    """One mosaic: its facts and provenance, and the sky view."""
    row = _mosaic_row(conn, mosaic_id)
    data, _, _ = read_plane(row["path"])
    overlays = place(row["path"], window(data.shape, view), browse.mosaic_sources(conn, mosaic_id), [])
    return sky_page(request, who, row, "mosaic", view, overlays, [])
