"""Reading and writing 2-D radio images: pixels, celestial WCS, restoring beam and epoch.

Imagers write 4-D cubes (RA, Dec, frequency, Stokes) with degenerate extra axes; ``read_image``
reduces them to the first plane and keeps only the celestial part of the WCS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import structlog
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales
from numpy.typing import NDArray

from science.errors import InvalidInputError

log = structlog.get_logger(__name__)

# Gaussian exponent factor: B = exp(-FOUR_LN2 * (r / FWHM)^2).
FOUR_LN2 = 4.0 * math.log(2.0)


class ImageReadError(InvalidInputError):
    """A FITS image is missing, unreadable, or has no 2-D celestial WCS."""


class BeamKeywordsMissingError(InvalidInputError):
    """A FITS image header lacks the restoring-beam keywords BMAJ/BMIN/BPA."""


@dataclass(frozen=True)
class Beam:
    """Elliptical Gaussian restoring beam; FWHMs in degrees, position angle east of north in degrees."""

    bmaj_deg: float
    bmin_deg: float
    bpa_deg: float

    @property
    def area_sr(self) -> float:
        """Solid angle of the Gaussian beam in steradians."""
        return math.pi / FOUR_LN2 * math.radians(self.bmaj_deg) * math.radians(self.bmin_deg)

    def response(self, east_deg: NDArray[np.float64], north_deg: NDArray[np.float64]) -> NDArray[np.float64]:
        """Beam value (1 at the centre) at tangent-plane offsets east and north of the beam centre."""
        pa = math.radians(self.bpa_deg)
        along_major = east_deg * math.sin(pa) + north_deg * math.cos(pa)
        along_minor = east_deg * math.cos(pa) - north_deg * math.sin(pa)
        return np.exp(-FOUR_LN2 * ((along_major / self.bmaj_deg) ** 2 + (along_minor / self.bmin_deg) ** 2))


@dataclass
class FitsImage:
    """One image plane with its celestial WCS, beam and observation epoch."""

    path: Path
    data: NDArray[np.float64]
    wcs: WCS
    header: fits.Header
    beam: Beam
    mjd: float | None
    freq_hz: float | None

    @property
    def shape(self) -> tuple[int, int]:
        """(ny, nx) of the image plane."""
        ny, nx = self.data.shape
        return int(ny), int(nx)

    @property
    def pixel_scale_deg(self) -> float:
        """Mean pixel size in degrees (geometric mean of the two axes)."""
        scales = proj_plane_pixel_scales(self.wcs)
        return float(np.sqrt(scales[0] * scales[1]))

    @property
    def pointing_deg(self) -> tuple[float, float]:
        """Reference position (CRVAL) of the WCS, taken as the pointing centre of a single image."""
        ra, dec = self.wcs.wcs.crval
        return float(ra), float(dec)

    def world_to_pixel(self, ra_deg: float, dec_deg: float) -> tuple[float, float]:
        """Zero-based (x, y) pixel position of a sky position; NaN when it does not project."""
        x, y = self.wcs.all_world2pix(ra_deg, dec_deg, 0)
        return float(x), float(y)

    def pixel_offsets_to_sky(self, x0: float, y0: float) -> NDArray[np.float64]:
        """Local Jacobian at (x0, y0): rows are (east, north) degrees per unit step in x and in y.

        Evaluated numerically so that any projection and rotation is handled; over a beam the
        distortion of the projection is negligible.
        """
        pix = np.array([[x0, y0], [x0 + 1.0, y0], [x0, y0 + 1.0]])
        world = self.wcs.all_pix2world(pix, 0)
        ra0, dec0 = world[0]
        cos_dec = math.cos(math.radians(dec0))
        jac = np.empty((2, 2))
        for i in (1, 2):
            dra = (world[i, 0] - ra0 + 180.0) % 360.0 - 180.0
            jac[i - 1] = (dra * cos_dec, world[i, 1] - dec0)
        return jac

    def beam_at(
        self, x0: float, y0: float, xs: NDArray[np.float64], ys: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Restoring beam centred at pixel (x0, y0), evaluated at pixel coordinates (xs, ys)."""
        jac = self.pixel_offsets_to_sky(x0, y0)
        dx = xs - x0
        dy = ys - y0
        east = dx * jac[0, 0] + dy * jac[1, 0]
        north = dx * jac[0, 1] + dy * jac[1, 1]
        return self.beam.response(east, north)


def read_beam(header: fits.Header, path: Path | str = "<header>") -> Beam:
    """Restoring beam from BMAJ/BMIN/BPA (degrees); raises ``BeamKeywordsMissingError`` naming the file."""
    missing = [key for key in ("BMAJ", "BMIN") if key not in header]
    if missing:
        raise BeamKeywordsMissingError(
            f"{path}: header has no {'/'.join(missing)} keyword(s), so the restoring beam is unknown; "
            "add BMAJ, BMIN (and BPA) in degrees, as the imager writes them into the restored image"
        )
    bmaj = float(header["BMAJ"])
    bmin = float(header["BMIN"])
    if not (bmaj > 0 and bmin > 0):
        raise BeamKeywordsMissingError(f"{path}: beam BMAJ={bmaj}, BMIN={bmin} must both be positive degrees")
    return Beam(bmaj_deg=bmaj, bmin_deg=bmin, bpa_deg=float(header.get("BPA", 0.0)))


def read_epoch_mjd(header: fits.Header) -> float | None:
    """Observation epoch as MJD from MJD-OBS, else DATE-OBS; None when neither is usable."""
    if "MJD-OBS" in header:
        return float(header["MJD-OBS"])
    date_obs = header.get("DATE-OBS")
    if date_obs:
        try:
            return float(Time(str(date_obs), scale="utc").mjd)
        except ValueError:
            log.warning("unparsable DATE-OBS", date_obs=date_obs)
    return None


def _read_freq_hz(header: fits.Header) -> float | None:
    """Frequency from a FREQ axis, else RESTFRQ/RESTFREQ."""
    naxis = int(header.get("NAXIS", 0))
    for axis in range(1, naxis + 1):
        if str(header.get(f"CTYPE{axis}", "")).upper().startswith("FREQ"):
            return float(header[f"CRVAL{axis}"])
    for key in ("RESTFRQ", "RESTFREQ"):
        if key in header:
            return float(header[key])
    return None


def read_plane(path: Path | str) -> tuple[NDArray[np.float64], WCS, fits.Header]:
    """First image plane, celestial WCS and header of a FITS file; no beam keywords needed."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such FITS image")
    try:
        with fits.open(path, memmap=False) as hdul:
            header = hdul[0].header.copy()
            raw = hdul[0].data
    except OSError as exc:
        raise ImageReadError(f"{path}: not a readable FITS file ({exc})") from exc
    if raw is None or raw.ndim < 2:
        raise ImageReadError(f"{path}: primary HDU holds no image (need at least 2 axes)")
    # Take the first plane of any degenerate frequency/Stokes axes.
    data = np.asarray(raw, dtype=np.float64)
    while data.ndim > 2:
        data = data[0]
    wcs = WCS(header, naxis=header["NAXIS"]).celestial
    if wcs.naxis != 2 or not wcs.has_celestial:
        raise ImageReadError(f"{path}: header has no celestial (RA/Dec) WCS")
    return data, wcs, header


def read_image(path: Path | str) -> FitsImage:
    """Read the first image plane of a FITS file with its WCS, beam, epoch and frequency."""
    path = Path(path)
    data, wcs, header = read_plane(path)
    return FitsImage(
        path=path,
        data=data,
        wcs=wcs,
        header=header,
        beam=read_beam(header, path),
        mjd=read_epoch_mjd(header),
        freq_hz=_read_freq_hz(header),
    )


def beam_header_cards(beam: Beam) -> dict[str, Any]:
    """Header keywords that record a restoring beam."""
    return {"BMAJ": beam.bmaj_deg, "BMIN": beam.bmin_deg, "BPA": beam.bpa_deg}


def write_image(
    path: Path | str,
    data: NDArray[np.floating[Any]],
    wcs: WCS,
    beam: Beam | None,
    bunit: str = "Jy/beam",
    extra: dict[str, Any] | None = None,
    history: list[str] | None = None,
) -> Path:
    """Write a 2-D float32 image with its WCS, beam keywords, BUNIT and any extra cards."""
    path = Path(path)
    header = wcs.to_header()
    header["BUNIT"] = bunit
    if beam is not None:
        for key, value in beam_header_cards(beam).items():
            header[key] = value
    for key, value in (extra or {}).items():
        header[key] = value
    for line in history or []:
        header.add_history(line)
    fits.PrimaryHDU(data=np.asarray(data, dtype=np.float32), header=header).writeto(path, overwrite=True)
    return path
