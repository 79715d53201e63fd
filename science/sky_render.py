"""A window onto a FITS image as a PNG, for an interactive viewer: any centre and zoom, a choice of
stretch and colour map, and the exact pixel mapping so a client can turn a cursor position back into
image pixels (and, with :func:`wcs_json`, into RA/Dec).

The mapping: output column ``i`` (0 at the left) and row ``r`` (0 at the top) show the image pixel
nearest ``u = x0 - 0.5 + (i + 0.5) / scale``, ``v = y0 - 0.5 + (height - r - 0.5) / scale`` (zero-based
pixel centres, FITS row 0 at the bottom).
"""

from __future__ import annotations

import io
import math
from typing import Any, Literal

import matplotlib

matplotlib.use("Agg")

import numpy as np
from astropy.visualization import (
    AsinhStretch,
    LinearStretch,
    LogStretch,
    SqrtStretch,
)
from astropy.wcs import WCS
from matplotlib import colormaps
from matplotlib.image import imsave
from numpy.typing import NDArray
from pydantic import BaseModel, Field

Stretch = Literal["linear", "sqrt", "asinh", "log"]
Colormap = Literal["inferno", "viridis", "gray", "magma", "cubehelix", "coolwarm"]
_STRETCHES = {
    "linear": LinearStretch,
    "sqrt": SqrtStretch,
    "asinh": lambda: AsinhStretch(0.05),
    "log": LogStretch,
}


class View(BaseModel):
    """What part of the image to draw and how."""

    cx: float | None = Field(default=None, description="centre, zero-based image x; default the middle")
    cy: float | None = Field(default=None, description="centre, zero-based image y; default the middle")
    zoom: float = Field(default=1.0, ge=0.25, le=32, description="1 fits the whole image in the window")
    size: int = Field(default=512, ge=32, le=2048, description="output width and height, pixels")
    stretch: Stretch = "asinh"
    cmap: Colormap = "inferno"
    percentile: float = Field(default=100.0, gt=50, le=100, description="top of the scale: this percentile")


class Window(BaseModel):
    """Where the rendered PNG sits on the image: see the module docstring for the mapping."""

    x0: float
    y0: float
    scale: float = Field(description="output pixels per image pixel")
    width: int
    height: int
    cx: float
    cy: float
    zoom: float
    nx: int
    ny: int

    def to_output(self, u: float, v: float) -> tuple[float, float]:
        """The output (column, row) position of zero-based image pixel (u, v)."""
        return (u - self.x0 + 0.5) * self.scale, self.height - (v - self.y0 + 0.5) * self.scale


def window(shape: tuple[int, int], view: View) -> Window:
    """The window of ``view`` on an image of ``shape`` (ny, nx); the centre is kept inside the image."""
    ny, nx = shape
    scale = view.zoom * view.size / max(nx, ny)
    cx = min(max(view.cx if view.cx is not None else (nx - 1) / 2, 0.0), nx - 1.0)
    cy = min(max(view.cy if view.cy is not None else (ny - 1) / 2, 0.0), ny - 1.0)
    span = view.size / scale
    return Window(
        x0=cx - span / 2 + 0.5, y0=cy - span / 2 + 0.5, scale=scale, width=view.size, height=view.size,
        cx=cx, cy=cy, zoom=view.zoom, nx=nx, ny=ny,
    )  # fmt: skip


def render(data: NDArray[np.float64], view: View) -> tuple[bytes, Window]:
    """The PNG of ``view`` on ``data`` and its window. Pixels outside the image are blank; the colour
    scale comes from the whole image, so panning does not change brightness."""
    win = window(data.shape, view)
    cols = np.floor(win.x0 - 0.5 + (np.arange(win.width) + 0.5) / win.scale + 0.5).astype(int)
    rows = np.floor(win.y0 - 0.5 + (win.height - np.arange(win.height) - 0.5) / win.scale + 0.5).astype(int)
    inside_x = (cols >= 0) & (cols < win.nx)
    inside_y = (rows >= 0) & (rows < win.ny)
    cut = np.full((win.height, win.width), np.nan)
    cut[np.ix_(inside_y, inside_x)] = data[np.ix_(rows[inside_y], cols[inside_x])]

    lo, hi = limits(data, view.percentile)
    if not hi > lo:
        hi = lo + 1.0
    scaled = _STRETCHES[view.stretch]()(np.clip((cut - lo) / (hi - lo), 0.0, 1.0), clip=True)
    rgba = colormaps[view.cmap](np.ma.masked_invalid(scaled))
    rgba[~np.isfinite(cut)] = (0.12, 0.12, 0.14, 1.0)
    out = io.BytesIO()
    imsave(out, rgba, format="png")
    return out.getvalue(), win


def limits(data: NDArray[np.float64], percentile: float) -> tuple[float, float]:
    """The colour scale: from 2σ below the median (σ from the MAD, so sources do not inflate it) to the
    chosen percentile (the peak by default), as radio images are usually shown."""
    finite = data[np.isfinite(data)]
    if not finite.size:
        return 0.0, 1.0
    median = float(np.median(finite))
    sigma = 1.4826 * float(np.median(np.abs(finite - median)))
    return median - 2.0 * sigma, float(np.percentile(finite, percentile))


def wcs_json(wcs: WCS) -> dict[str, Any]:
    """The celestial WCS as a client needs it to map pixels to RA/Dec: projection code, reference
    pixel (1-based), reference value and the CD matrix (degrees per pixel)."""
    cd = wcs.pixel_scale_matrix
    lon, lat = wcs.wcs.ctype[0], wcs.wcs.ctype[1]
    return {
        "projection": lon[-3:],
        "ctype": [lon, lat],
        "crpix": [float(v) for v in wcs.wcs.crpix],
        "crval": [float(v) for v in wcs.wcs.crval],
        "cd": [[float(cd[0, 0]), float(cd[0, 1])], [float(cd[1, 0]), float(cd[1, 1])]],
        "lonpole": float(wcs.wcs.lonpole) if math.isfinite(wcs.wcs.lonpole) else 180.0,
    }
