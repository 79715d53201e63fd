"""Synthetic restored images with known point sources, beam and noise, for photometry and mosaic tests.

Sources are drawn with astropy's Gaussian2D in pixel coordinates, deliberately independent of the
beam code under test. The noise is white noise smoothed so that its correlation has the shape of
the restoring beam, as in a real restored image, and scaled analytically to the requested rms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.modeling.models import Gaussian2D
from astropy.wcs import WCS
from scipy.signal import fftconvolve

from science.beam import airy_response

FWHM_TO_SIGMA = 1.0 / math.sqrt(8.0 * math.log(2.0))


@dataclass(frozen=True)
class Source:
    """A point source of known flux at a sky position."""

    name: str
    ra_deg: float
    dec_deg: float
    flux_jy: float


@dataclass(frozen=True)
class ImageSpec:
    """Geometry, beam and noise of a synthetic image."""

    ra0_deg: float = 150.0
    dec0_deg: float = 50.0
    npix: int = 256
    pixel_arcsec: float = 4.0
    bmaj_arcsec: float = 20.0
    bmin_arcsec: float = 14.0
    bpa_deg: float = 30.0
    noise_jy: float = 1e-3
    mjd: float | None = 60000.25
    freq_hz: float = 1.405e9


def make_wcs(spec: ImageSpec) -> WCS:
    """SIN-projection WCS centred on the spec's pointing, RA increasing to the left."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    wcs.wcs.crval = [spec.ra0_deg, spec.dec0_deg]
    wcs.wcs.crpix = [spec.npix / 2 + 1, spec.npix / 2 + 1]
    wcs.wcs.cdelt = [-spec.pixel_arcsec / 3600.0, spec.pixel_arcsec / 3600.0]
    wcs.wcs.cunit = ["deg", "deg"]
    return wcs


def _beam_model(spec: ImageSpec, amplitude: float, x0: float, y0: float, scale: float = 1.0) -> Gaussian2D:
    # With RA to the left and Dec up, a position angle east of north is theta = PA + 90° from +x.
    return Gaussian2D(
        amplitude=amplitude,
        x_mean=x0,
        y_mean=y0,
        x_stddev=scale * spec.bmaj_arcsec / spec.pixel_arcsec * FWHM_TO_SIGMA,
        y_stddev=scale * spec.bmin_arcsec / spec.pixel_arcsec * FWHM_TO_SIGMA,
        theta=math.radians(spec.bpa_deg + 90.0),
    )


def correlated_noise(spec: ImageSpec, rng: np.random.Generator) -> np.ndarray:
    """Noise with rms ``spec.noise_jy`` whose autocorrelation is the restoring beam."""
    # A kernel of FWHM/sqrt(2) convolved with itself gives the beam.
    half = int(3 * spec.bmaj_arcsec / spec.pixel_arcsec) + 1
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1].astype(float)
    kernel = _beam_model(spec, 1.0, 0.0, 0.0, scale=1.0 / math.sqrt(2.0))(xx, yy)
    kernel /= math.sqrt(float(np.sum(kernel**2)))
    white = rng.normal(0.0, spec.noise_jy, size=(spec.npix + 2 * half, spec.npix + 2 * half))
    return np.asarray(fftconvolve(white, kernel, mode="valid"))


def make_image(
    path: Path,
    sources: list[Source],
    spec: ImageSpec | None = None,
    *,
    seed: int = 0,
    with_beam: bool = True,
    apply_pb: bool = False,
    cube: bool = False,
) -> Path:
    """Write a restored image of ``sources`` plus noise; ``apply_pb`` attenuates them by the Airy beam."""
    spec = spec or ImageSpec()
    rng = np.random.default_rng(seed)
    wcs = make_wcs(spec)
    yy, xx = np.mgrid[0 : spec.npix, 0 : spec.npix].astype(float)
    data = correlated_noise(spec, rng) if spec.noise_jy > 0 else np.zeros((spec.npix, spec.npix))
    centre = SkyCoord(spec.ra0_deg, spec.dec0_deg, unit="deg")
    for src in sources:
        x0, y0 = wcs.world_to_pixel_values(src.ra_deg, src.dec_deg)
        flux = src.flux_jy
        if apply_pb:
            offset = centre.separation(SkyCoord(src.ra_deg, src.dec_deg, unit="deg")).rad
            flux *= float(airy_response(offset, spec.freq_hz))
        data += _beam_model(spec, flux, float(x0), float(y0))(xx, yy)

    header = wcs.to_header()
    header["BUNIT"] = "Jy/beam"
    if with_beam:
        header["BMAJ"] = spec.bmaj_arcsec / 3600.0
        header["BMIN"] = spec.bmin_arcsec / 3600.0
        header["BPA"] = spec.bpa_deg
    if spec.mjd is not None:
        header["MJD-OBS"] = spec.mjd
    header["RESTFRQ"] = spec.freq_hz
    if cube:
        # Lay the plane out as an imager does: (Stokes, freq, Dec, RA) with degenerate extra axes.
        header["NAXIS"] = 4
        for key, value in {
            "WCSAXES": 4,
            "CTYPE3": "FREQ",
            "CRVAL3": spec.freq_hz,
            "CDELT3": 1e6,
            "CRPIX3": 1.0,
            "CTYPE4": "STOKES",
            "CRVAL4": 1.0,
            "CDELT4": 1.0,
            "CRPIX4": 1.0,
        }.items():
            header[key] = value
        hdu = fits.PrimaryHDU(data=data[np.newaxis, np.newaxis].astype(np.float32), header=header)
    else:
        hdu = fits.PrimaryHDU(data=data.astype(np.float32), header=header)
    hdu.writeto(path, overwrite=True)
    return path


def offset_position(spec: ImageSpec, dx_pix: float, dy_pix: float) -> tuple[float, float]:
    """Sky position (RA, Dec) of a pixel offset from the image centre (positive dx is west)."""
    wcs = make_wcs(spec)
    ra, dec = wcs.pixel_to_world_values(spec.npix / 2 + dx_pix, spec.npix / 2 + dy_pix)
    return float(ra), float(dec)
