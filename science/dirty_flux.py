"""The flux of a point source measured on the dirty image of that source alone.

A restored image is the CLEAN components convolved with a Gaussian, plus the residual. Neither part
counts a point source exactly:

- CLEAN puts a source that sits between pixels on several neighbouring pixels, so its restored blob is
  wider than the beam and a beam-shaped template at the true position undercounts it. With a cell of a
  quarter of the minor axis this cost 0.2-1.9 % per source at 48 antennas (``bench/accuracy.py``;
  ``docs/flux-accuracy.md``), depending on where the source falls within its pixel;
- what CLEAN left in the residual is in Jy per *dirty* beam, which a Gaussian template counts at about
  0.6 for this array's snapshot PSF.

The dirty image has neither problem: a point source of flux S at (x0, y0) is exactly S times the PSF
centred there. So the source's own dirty image is rebuilt from the residual plus the components within
``near_pix`` of the position, each spread by the PSF, and the PSF shifted to the position is fitted to it
by least squares over the aperture. The components of every other source stay subtracted, and their
sidelobes with them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import map_coordinates

from science.errors import InvalidInputError

# Cubic splines shift the PSF to a sub-pixel position to ~1e-3 at a quarter-beam cell.
SHIFT_SPLINE_ORDER = 3


class DirtyBeamFlux:
    """A PSF, CLEAN model and residual on one pixel grid, ready to measure point sources at any position."""

    def __init__(
        self,
        psf: NDArray[np.float64],
        model: NDArray[np.float64],
        residual: NDArray[np.float64],
        *,
        source: Path,
    ) -> None:
        if not psf.shape == model.shape == residual.shape:
            raise InvalidInputError(
                f"{source}: PSF {psf.shape}, model {model.shape} and residual {residual.shape} differ"
            )
        peak = np.nanmax(psf)
        if not (np.isfinite(peak) and peak > 0):
            raise InvalidInputError(f"{source}: the PSF image has no positive peak")
        self.psf = np.nan_to_num(psf / peak)
        self.model = np.nan_to_num(model)
        self.residual = residual
        self.cy, self.cx = (int(v) for v in np.unravel_index(int(np.argmax(self.psf)), self.psf.shape))

    def template(
        self, x0: float, y0: float, xs: NDArray[np.int_], ys: NDArray[np.int_]
    ) -> NDArray[np.float64]:
        """The PSF (peak 1) centred on (x0, y0), at the pixels (xs, ys)."""
        coords = [ys - y0 + self.cy, xs - x0 + self.cx]
        return np.asarray(map_coordinates(self.psf, coords, order=SHIFT_SPLINE_ORDER, cval=0.0))

    def source_alone(
        self, x0: float, y0: float, xs: NDArray[np.int_], ys: NDArray[np.int_], near_pix: float
    ) -> NDArray[np.float64]:
        """The dirty image at (xs, ys) of what lies within ``near_pix`` of (x0, y0): the residual plus the
        nearby components, each times the PSF centred on its pixel."""
        ny, nx = self.model.shape
        reach = int(np.ceil(near_pix))
        x_lo, x_hi = max(int(np.floor(x0)) - reach, 0), min(int(np.ceil(x0)) + reach + 1, nx)
        y_lo, y_hi = max(int(np.floor(y0)) - reach, 0), min(int(np.ceil(y0)) + reach + 1, ny)
        cy, cx = np.nonzero(self.model[y_lo:y_hi, x_lo:x_hi])
        cy, cx = cy + y_lo, cx + x_lo
        near = np.hypot(cx - x0, cy - y0) <= near_pix
        local = np.array(self.residual[ys, xs], dtype=np.float64)
        for y, x in zip(cy[near], cx[near], strict=True):
            py, px = ys - y + self.cy, xs - x + self.cx
            inside = (py >= 0) & (py < ny) & (px >= 0) & (px < nx)
            local[inside] += self.model[y, x] * self.psf[py[inside], px[inside]]
        return local

    def flux(
        self, x0: float, y0: float, xs: NDArray[np.int_], ys: NDArray[np.int_], near_pix: float
    ) -> tuple[float, NDArray[np.float64]]:
        """The least-squares amplitude of the PSF at (x0, y0) over the pixels (xs, ys), and the template
        used (for the error). NaN where the residual is blank."""
        template = self.template(x0, y0, xs, ys)
        local = self.source_alone(x0, y0, xs, ys, near_pix)
        finite = np.isfinite(local)
        norm = float(np.sum(template[finite] ** 2))
        if norm <= 0:
            return float("nan"), template
        return float(np.sum(local[finite] * template[finite]) / norm), template
