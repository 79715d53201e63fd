"""Images and the sky view: gallery, detail with provenance, a rendered window with overlays, the WCS
for the cursor read-out, click-to-measure photometry on the server, and saving a measurement."""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field, model_validator
from starlette.concurrency import run_in_threadpool

from contimg.store import browse
from contimg.store.sky import detections_of
from contimg.web.auth import Operator, Principal, User, audit_action
from contimg.web.db import Conn
from contimg.web.errors import ERRORS
from contimg.web.ops import Id
from contimg.web.templating import page
from science.fits_image import read_image, read_plane
from science.photometry import PhotometryOptions, PhotometryResult, measure, with_planes
from science.sky_render import View, Window, render, wcs_json, window

router = APIRouter(responses=ERRORS)
API = "/api/v1"
PNG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/png": {}}, "description": "a PNG"}}


def _image_row(conn: psycopg.Connection, image_id: int) -> dict[str, Any]:
    row = browse.image(conn, image_id)
    if row is None:
        raise LookupError(f"no image with id {image_id}")
    return row


@router.get(f"{API}/images", response_model=list[dict[str, Any]], tags=["science"])
def api_images(
    who: User,
    conn: Conn,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 24,
) -> list[dict[str, Any]]:
    """Images newest first, paged by id (``before``)."""
    return browse.images(conn, before, limit)


@router.get(API + "/images/{image_id}", response_model=dict[str, Any], tags=["science"])
def api_image(who: User, conn: Conn, image_id: Id) -> dict[str, Any]:
    """One image: beam, noise, time, and the task that made it."""
    return _image_row(conn, image_id)


@router.get(API + "/images/{image_id}/wcs", response_model=dict[str, Any], tags=["science"])
def api_image_wcs(who: User, conn: Conn, image_id: Id) -> dict[str, Any]:
    """The image's celestial WCS, for mapping pixels to RA/Dec in the browser."""
    _, wcs, _ = read_plane(_image_row(conn, image_id)["path"])
    return wcs_json(wcs)


@router.get(API + "/images/{image_id}/render.png", response_class=Response, responses=PNG, tags=["science"])
async def api_render(who: User, conn: Conn, image_id: Id, view: Annotated[View, Depends()]) -> Response:
    """A window of the image as PNG: centre (cx, cy), zoom, stretch, colour map."""
    path = _image_row(conn, image_id)["path"]

    def draw() -> bytes:
        data, _, _ = read_plane(path)
        return render(data, view)[0]

    return Response(
        await run_in_threadpool(draw),
        media_type="image/png",
        headers={"Cache-Control": "private, max-age=60"},
    )


class Click(BaseModel):
    """Where to measure: a zero-based image pixel (the sky view sends this) or a sky position."""

    x: float | None = Field(default=None, ge=-1e6, le=1e6)
    y: float | None = Field(default=None, ge=-1e6, le=1e6)
    ra_deg: float | None = Field(default=None, ge=0, lt=360)
    dec_deg: float | None = Field(default=None, ge=-90, le=90)
    label: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _one_position(self) -> Click:
        pixel = self.x is not None and self.y is not None
        sky = self.ra_deg is not None and self.dec_deg is not None
        if pixel == sky:
            raise ValueError("give either x and y (image pixels) or ra_deg and dec_deg, not both or neither")
        return self


def measure_click(row: dict[str, Any], click: Click) -> PhotometryResult:
    """Forced photometry where the user clicked, with the pipeline's own options and the image's PSF
    (for correlated-noise errors) when it is on disk."""
    image = read_image(row["path"])
    if click.x is not None and click.y is not None:
        ny, nx = image.shape
        if not (-0.5 <= click.x <= nx - 0.5 and -0.5 <= click.y <= ny - 0.5):
            raise ValueError(f"pixel ({click.x:.1f}, {click.y:.1f}) is outside the {nx}×{ny} image")
        ra, dec = (float(v) for v in image.wcs.all_pix2world(click.x, click.y, 0))
    else:
        assert click.ra_deg is not None and click.dec_deg is not None
        ra, dec = click.ra_deg, click.dec_deg
    psf = row.get("psf_path")
    options = PhotometryOptions(psf_image=FilePath(psf) if psf and FilePath(psf).is_file() else None)
    return measure(image, ra % 360.0, dec, click.label, with_planes(FilePath(row["path"]), options))


@router.post(API + "/images/{image_id}/measure", response_model=PhotometryResult, tags=["science"])
async def api_measure(
    who: User, conn: Conn, image_id: Id, click: Annotated[Click, Body()]
) -> PhotometryResult:
    """Measure at a point (nothing is stored): peak, integrated flux, local noise and SNR."""
    row = _image_row(conn, image_id)
    return await run_in_threadpool(measure_click, row, click)


@router.post(API + "/images/{image_id}/measurements", response_model=dict[str, Any], tags=["science"])
async def api_save_measurement(
    who: Operator, conn: Conn, image_id: Id, click: Annotated[Click, Body()]
) -> dict[str, Any]:
    """Measure at a point again on the server and store it (operators only); returns the stored id."""
    row = _image_row(conn, image_id)
    result = await run_in_threadpool(measure_click, row, click)
    saved = browse.SavedMeasurement(
        image_id=image_id, measured_by=who.name, label=click.label,
        **result.model_dump(include={"ra_deg", "dec_deg", "peak_jy", "peak_err_jy", "flux_jy", "flux_err_jy",
                                     "local_rms_jy", "snr"}),
    )  # fmt: skip
    measurement_id = browse.save_measurement(conn, saved)
    audit_action(conn, who, "photometry.save", f"image:{image_id}", measurement_id=measurement_id)
    return {"id": measurement_id, **saved.model_dump()}


@router.get(API + "/images/{image_id}/measurements", response_model=list[dict[str, Any]], tags=["science"])
def api_measurements(who: User, conn: Conn, image_id: Id) -> list[dict[str, Any]]:
    """Measurements saved on the image."""
    _image_row(conn, image_id)
    return browse.measurements(conn, image_id)


@router.get(API + "/images/{image_id}/stamp.png", response_class=Response, responses=PNG, tags=["science"])
async def api_stamp(
    who: User,
    conn: Conn,
    image_id: Id,
    ra: Annotated[float, Query(ge=0, lt=360)],
    dec: Annotated[float, Query(ge=-90, le=90)],
    size: Annotated[int, Query(ge=16, le=256)] = 96,
    half_width_pix: Annotated[int, Query(ge=4, le=256)] = 16,
) -> Response:
    """A postage stamp centred on (ra, dec)."""
    path = _image_row(conn, image_id)["path"]

    def draw() -> bytes:
        data, wcs, _ = read_plane(path)
        x, y = (float(v) for v in wcs.all_world2pix(ra, dec, 0))
        zoom = max(data.shape) / (2 * half_width_pix)
        return render(data, View(cx=x, cy=y, zoom=min(max(zoom, 0.25), 32), size=size))[0]

    return Response(
        await run_in_threadpool(draw),
        media_type="image/png",
        headers={"Cache-Control": "private, max-age=300"},
    )


# Pages ---------------------------------------------------------------------------------------------


@router.get("/images", response_class=HTMLResponse, include_in_schema=False)
def gallery_page(
    request: Request, who: User, conn: Conn, before: Annotated[int | None, Query(ge=1, le=2**62)] = None
) -> Response:
    """Image thumbnails, newest first."""
    rows = browse.images(conn, before, 25)
    more = len(rows) > 24
    return page(
        request, "images.html", who, images=rows[:24], next_before=rows[23]["id"] if more else None,
        mosaics=browse.mosaics(conn, 12) if before is None else [],
    )  # fmt: skip


def place(
    path: str, win: Window, sources: list[dict[str, Any]], detections: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Monitored sources (circles) and blind detections (crosses) at their places on the rendered window."""
    _, wcs, _ = read_plane(path)
    marks = []
    for s in sources:
        u, v = (float(p) for p in wcs.all_world2pix(s["ra_deg"], s["dec_deg"], 0))
        col, r = win.to_output(u, v)
        kind = "reference" if s["reference"] else "monitored"
        marks.append({"kind": kind, "name": s["name"], "col": col, "row": r, "flux_jy": s["flux_jy"]})
    for d in detections:
        u, v = (float(p) for p in wcs.all_world2pix(d["ra_deg"], d["dec_deg"], 0))
        col, r = win.to_output(u, v)
        marks.append({"kind": "detection", "name": d.get("match_name") or "", "col": col, "row": r})
    return marks


def sky_page(
    request: Request,
    who: Principal,
    row: dict[str, Any],
    kind: str,
    view: View,
    overlays: list[dict[str, Any]],
    saved: list[dict[str, Any]],
) -> Response:
    """The sky view of an image or a mosaic (``kind``), with its zoom and pan links."""
    data, _, _ = read_plane(row["path"])
    win = window(data.shape, view)
    base = view.model_dump(exclude_none=True)

    def link(**change: Any) -> str:
        params = {**base, "cx": round(win.cx, 2), "cy": round(win.cy, 2), **change}
        return "?" + "&".join(f"{k}={v}" for k, v in params.items())

    step = max(win.width / win.scale / 4, 1.0)
    nav = {
        "in": link(zoom=min(view.zoom * 2, 32)),
        "out": link(zoom=max(view.zoom / 2, 0.25)),
        "left": link(cx=round(win.cx - step, 2)),
        "right": link(cx=round(win.cx + step, 2)),
        "up": link(cy=round(win.cy + step, 2)),
        "down": link(cy=round(win.cy - step, 2)),
        "reset": "?",
    }
    query = "&".join(f"{k}={v}" for k, v in {**base, "cx": win.cx, "cy": win.cy}.items())
    return page(
        request, "image.html", who, img=row, kind=kind, api=f"{API}/{kind}s/{row['id']}", view=view, win=win,
        nav=nav, render_query=query, overlays=[m for m in overlays if _on(m, win)], saved=saved,
        stretches=("linear", "sqrt", "asinh", "log"),
        cmaps=("inferno", "viridis", "gray", "magma", "cubehelix", "coolwarm"),
    )  # fmt: skip


def _on(mark: dict[str, Any], win: Window) -> bool:
    return bool(0 <= mark["col"] <= win.width and 0 <= mark["row"] <= win.height)


@router.get("/images/{image_id}", response_class=HTMLResponse, include_in_schema=False)
def image_page(
    request: Request, who: User, conn: Conn, image_id: Id, view: Annotated[View, Depends()]
) -> Response:
    """One image: its facts and provenance, and the sky view."""
    row = _image_row(conn, image_id)
    data, _, _ = read_plane(row["path"])
    win = window(data.shape, view)
    overlays = place(row["path"], win, browse.image_sources(conn, image_id), detections_of(conn, row["path"]))
    return sky_page(request, who, row, "image", view, overlays, browse.measurements(conn, image_id))
