"""PNG quick-look previews of FITS images."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on workers

import matplotlib.pyplot as plt
import numpy as np
from astropy.io import fits
from astropy.visualization import AsinhStretch, ImageNormalize
from astropy.wcs import WCS
from matplotlib.patches import Ellipse


def write_preview(fits_path: Path, png_path: Path, *, title: str = "", noise_jy: float | None = None) -> Path:
    """Draw the first plane of ``fits_path`` with RA/Dec axes, an asinh stretch and the beam; save a PNG.

    The grey scale runs from -3σ to the peak when ``noise_jy`` is given, else from the 1st percentile.
    """
    with fits.open(fits_path) as hdul:
        header = hdul[0].header
        data = np.asarray(hdul[0].data, dtype=float)
    while data.ndim > 2:
        data = data[0]
    wcs = WCS(header).celestial
    finite = data[np.isfinite(data)]
    if finite.size:
        vmax = float(finite.max())
        vmin = -3.0 * noise_jy if noise_jy else float(np.percentile(finite, 1))
    else:
        vmin, vmax = 0.0, 1.0
    if vmax <= vmin:
        vmax = vmin + 1e-9
    norm = ImageNormalize(vmin=vmin * 1e3, vmax=vmax * 1e3, stretch=AsinhStretch(0.02))

    fig = plt.figure(figsize=(6.4, 5.6))
    ax = fig.add_subplot(projection=wcs)
    shown = ax.imshow(data * 1e3, origin="lower", cmap="inferno", norm=norm)
    fig.colorbar(shown, ax=ax, label="mJy/beam")
    ax.set_xlabel("RA")
    ax.set_ylabel("Dec")
    if all(k in header for k in ("BMAJ", "BMIN", "BPA")):
        pix_deg = abs(float(header["CDELT2"])) if "CDELT2" in header else None
        if pix_deg:
            ny, nx = data.shape
            ax.add_patch(
                Ellipse(
                    (0.08 * nx, 0.08 * ny),
                    width=float(header["BMIN"]) / pix_deg,
                    height=float(header["BMAJ"]) / pix_deg,
                    angle=float(header["BPA"]),
                    edgecolor="cyan",
                    facecolor="none",
                )
            )
    ax.set_title(title or Path(fits_path).name, fontsize=9)
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return png_path
