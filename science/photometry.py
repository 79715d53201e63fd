"""Forced photometry at fixed sky positions in restored images or mosaics.

At each position this measures:

- the peak: the pixel nearest the position (``peak_mode="nearest"``, unbiased for faint sources)
  or the maximum within half a beam FWHM (``"max"``);
- the flux (``flux_jy``): when the image's PSF, CLEAN model and residual are beside it
  (``<name>.psf.fits``, ``<name>.model.fits``, ``<name>.residual.fits``, found by :func:`measure_file`),
  the least-squares amplitude of the PSF centred on the position, fitted to the dirty image of what lies
  there (:mod:`science.dirty_flux`), which counts a point source exactly whatever CLEAN did with it.
  Otherwise (mosaics, images without their planes) the beam-weighted flux: the least-squares amplitude
  of the restoring beam, Σ(I·B)/Σ(B²). Both use the pixels within ``fit_radius_fwhm`` beam FWHMs and
  ``flux_method`` says which was used;
- the local rms: the MAD-based, sigma-clipped scatter of pixels in an annulus around the position;
- the flux error: the rms propagated through the fit with the noise's pixel-to-pixel correlation. The
  noise of a restored image is that of its residual, so the correlation is the residual's own
  autocorrelation when the residual is there (``residual_image``); else the PSF (``psf_image``), which
  is broader than the noise's correlation under robust weighting and overstates the error; else the
  restoring beam (about 1.15 × rms for a large aperture);
- a systematic error, ``systematic_fraction`` of the flux, added in quadrature to both errors when set:
  the benchmark (``bench/accuracy.py``) finds none to add on simulated data, where the scatter of the
  brightest sources is their noise; real calibration may need one;
- the signal-to-noise ratio, flux over its thermal error (without the systematic part);
- a fitted position and flux: the restoring beam with free amplitude and centre, least-squares fitted
  to the same aperture (``fit_position``), for where the source really is and how far it is from the
  position asked for.

Flags: ``off_image`` (nothing measured), ``near_edge`` (the fit aperture leaves the image),
``blanked`` (NaN pixels in the aperture), ``few_noise_pixels`` (the rms rests on few pixels),
``low_pb`` (primary-beam response below the threshold, when a PB image or pointing is given).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path

import numpy as np
import structlog
from astropy.coordinates import SkyCoord
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning
from numpy.typing import NDArray
from photutils.psf import GaussianPSF, PSFPhotometry
from pydantic import BaseModel, Field

from science.beam import airy_response
from science.catalogs import SkyPosition
from science.constants import BAND_CENTRE_HZ, PB_CUTOFF
from science.dirty_flux import DirtyBeamFlux
from science.fits_image import FOUR_LN2, FitsImage, read_image, read_plane

log = structlog.get_logger(__name__)

MAD_TO_SIGMA = 1.4826
# Below this many annulus pixels the rms is flagged as poorly determined.
MIN_NOISE_PIXELS = 50
# Apertures larger than this use the continuum-limit correlation factor instead of the pair sum.
MAX_PAIR_PIXELS = 3000
# The noise correlation is measured on at most this square of the residual's centre.
ACF_MAX_PIXELS = 1024


class PeakMode(StrEnum):
    """How the peak is read off the image."""

    NEAREST = "nearest"
    MAX = "max"


class Flag(StrEnum):
    """Quality flags attached to a forced measurement."""

    OFF_IMAGE = "off_image"
    NEAR_EDGE = "near_edge"
    BLANKED = "blanked"
    FEW_NOISE_PIXELS = "few_noise_pixels"
    LOW_PB = "low_pb"


class PhotometryOptions(BaseModel):
    """Tunable settings of forced photometry; the defaults suit DSA-110 restored images."""

    peak_mode: PeakMode = PeakMode.NEAREST
    fit_radius_fwhm: float = Field(default=1.0, gt=0.0, description="fit aperture radius, in beam FWHMs")
    annulus_inner_fwhm: float = Field(default=3.0, gt=0.0, description="noise annulus inner radius, in BMAJ")
    annulus_outer_fwhm: float = Field(default=8.0, gt=0.0, description="noise annulus outer radius, in BMAJ")
    clip_sigma: float = Field(default=3.0, gt=0.0)
    pb_threshold: float = Field(default=PB_CUTOFF, ge=0.0, le=1.0)
    pb_image: Path | None = Field(default=None, description="primary-beam FITS image (1 at the peak)")
    pointing_ra_deg: float | None = None
    pointing_dec_deg: float | None = None
    freq_hz: float | None = Field(default=None, description="frequency for the Airy model; default: header")
    fit_position: bool = Field(
        default=True, description="also fit an elliptical Gaussian with a free centre (photutils)"
    )
    fit_shape: bool = Field(
        default=False, description="let the fitted Gaussian's axes and angle vary too (resolved sources)"
    )
    fit_fixed_position: bool = Field(
        default=False, description="hold the fitted Gaussian at the forced position (amplitude, and shape)"
    )
    psf_image: Path | None = Field(default=None, description="the image's PSF (dirty beam), same pixel grid")
    model_image: Path | None = Field(default=None, description="the CLEAN model (Jy/pixel), same pixel grid")
    residual_image: Path | None = Field(default=None, description="the image's residual, same pixel grid")
    dirty_psf_flux: bool = Field(
        default=True, description="with PSF, model and residual: flux from the source's own dirty image"
    )
    # None by default: with the flux from the dirty image and errors from the residual's correlation, the
    # scatter of 200-2000σ sources in bench/accuracy.py (0.2 %) is their noise (docs/flux-accuracy.md).
    systematic_fraction: float = Field(
        default=0.0, ge=0.0, lt=1.0, description="fractional flux error added in quadrature"
    )


class FluxMethod(StrEnum):
    """How ``flux_jy`` was measured."""

    DIRTY_PSF = "dirty_psf"  # the PSF fitted to the source's own dirty image (science.dirty_flux)
    RESTORED_BEAM = "restored_beam"  # the restoring beam fitted to the restored image


class PhotometryResult(BaseModel):
    """One forced measurement at one position in one image."""

    name: str
    ra_deg: float
    dec_deg: float
    image_path: str
    mjd: float | None = None
    x_pix: float | None = None
    y_pix: float | None = None
    peak_jy: float | None = None
    peak_err_jy: float | None = None
    flux_jy: float | None = None
    flux_err_jy: float | None = None
    flux_method: FluxMethod | None = None
    local_rms_jy: float | None = None
    snr: float | None = None
    pb_response: float | None = None
    fit_flux_jy: float | None = Field(default=None, description="fitted Gaussian's integrated flux, Jy")
    fit_flux_err_jy: float | None = None
    fit_ra_deg: float | None = None
    fit_dec_deg: float | None = None
    fit_pos_err_arcsec: float | None = Field(default=None, description="1σ radius of the fitted centre")
    fit_offset_arcsec: float | None = Field(default=None, description="fitted position − forced position")
    fit_major_arcsec: float | None = None
    fit_minor_arcsec: float | None = None
    flags: list[Flag] = Field(default_factory=list)


def clipped_rms(values: NDArray[np.float64], clip_sigma: float = 3.0, max_iter: int = 10) -> float:
    """Robust noise: MAD-based sigma after iterative clipping at ``clip_sigma``; NaN if no finite values."""
    kept = values[np.isfinite(values)]
    if kept.size == 0:
        return math.nan
    sigma = math.nan
    for _ in range(max_iter):
        median = float(np.median(kept))
        sigma = MAD_TO_SIGMA * float(np.median(np.abs(kept - median)))
        if sigma == 0.0:
            break
        inside = np.abs(kept - median) <= clip_sigma * sigma
        if inside.all():
            break
        kept = kept[inside]
    return sigma


def _primary_beam(image: FitsImage, options: PhotometryOptions) -> Callable[[float, float], float] | None:
    """Return a function giving the PB response at (ra, dec), or None if no PB information is given."""
    if options.pb_image is not None:
        pb_data, pb_wcs, _ = read_plane(options.pb_image)

        def from_image(ra: float, dec: float) -> float:
            x, y = (float(v) for v in pb_wcs.all_world2pix(ra, dec, 0))
            if not (math.isfinite(x) and math.isfinite(y)):
                return 0.0
            ix, iy = round(x), round(y)
            ny, nx = pb_data.shape
            # Outside the PB image counts as no response.
            if not (0 <= ix < nx and 0 <= iy < ny):
                return 0.0
            return float(pb_data[iy, ix])

        return from_image
    if options.pointing_ra_deg is not None and options.pointing_dec_deg is not None:
        centre = SkyCoord(options.pointing_ra_deg, options.pointing_dec_deg, unit="deg")
        freq = options.freq_hz or image.freq_hz or BAND_CENTRE_HZ

        def from_model(ra: float, dec: float) -> float:
            offset = centre.separation(SkyCoord(ra, dec, unit="deg")).rad
            return float(airy_response(offset, freq))

        return from_model
    return None


class NoiseCorrelation:
    """The noise correlation between two pixels, read at their offset off a correlation image whose
    peak is zero lag: the residual's autocorrelation, or the PSF when there is no residual."""

    def __init__(self, correlation: NDArray[np.float64], path: Path) -> None:
        peak = np.nanmax(correlation)
        if not (np.isfinite(peak) and peak > 0):
            raise ValueError(f"{path}: the correlation image has no positive peak")
        self.rho = np.nan_to_num(correlation / peak)
        self.cy, self.cx = np.unravel_index(int(np.nanargmax(correlation)), correlation.shape)

    def at(self, dx: NDArray[np.float64], dy: NDArray[np.float64]) -> NDArray[np.float64]:
        """ρ at integer pixel offsets (0 beyond the correlation image)."""
        ny, nx = self.rho.shape
        ix = np.rint(dx).astype(int) + int(self.cx)
        iy = np.rint(dy).astype(int) + int(self.cy)
        inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
        return np.where(inside, self.rho[np.clip(iy, 0, ny - 1), np.clip(ix, 0, nx - 1)], 0.0)


def residual_autocorrelation(residual: NDArray[np.float64]) -> NDArray[np.float64]:
    """The autocorrelation of the residual's central ``ACF_MAX_PIXELS``² (circular, by FFT), zero lag at
    the centre. With robust weighting the noise is correlated like the PSF of the squared weights, which
    is narrower than the PSF: taking the PSF overstated the flux errors by 1.4 (bench/accuracy.py)."""
    ny, nx = residual.shape
    half_y, half_x = min(ny, ACF_MAX_PIXELS) // 2, min(nx, ACF_MAX_PIXELS) // 2
    cut = residual[ny // 2 - half_y : ny // 2 + half_y, nx // 2 - half_x : nx // 2 + half_x]
    cut = np.nan_to_num(cut - np.nanmedian(cut))
    power = np.abs(np.fft.rfft2(cut)) ** 2
    return np.asarray(np.fft.fftshift(np.fft.irfft2(power, s=cut.shape)))


def _correlated_error_factor(
    image: FitsImage,
    x0: float,
    y0: float,
    xs: NDArray[np.float64],
    ys: NDArray[np.float64],
    weights: NDArray[np.float64],
    noise: NoiseCorrelation | None = None,
) -> float:
    """sqrt(Σ_ij B_i B_j ρ_ij)/Σ B²: the flux error in units of the rms for correlated noise."""
    sum_b2 = float(np.sum(weights**2))
    if xs.size > MAX_PAIR_PIXELS:
        # Continuum limit of three Gaussians of equal width: variance factor (2/√3)² = 4/3.
        return math.sqrt(4.0 / 3.0)
    dx = xs[:, None] - xs[None, :]
    dy = ys[:, None] - ys[None, :]
    if noise is not None:
        rho = noise.at(dx, dy)
    else:
        jac = image.pixel_offsets_to_sky(x0, y0)
        east = dx * jac[0, 0] + dy * jac[1, 0]
        north = dx * jac[0, 1] + dy * jac[1, 1]
        rho = image.beam.response(east, north)
    return math.sqrt(max(float(weights @ rho @ weights), 0.0)) / sum_b2


def _measure_one(
    image: FitsImage,
    position: SkyPosition,
    options: PhotometryOptions,
    pb: Callable[[float, float], float] | None,
    noise: NoiseCorrelation | None = None,
    dirty: DirtyBeamFlux | None = None,
) -> PhotometryResult:
    result = PhotometryResult(
        name=position.name,
        ra_deg=position.ra_deg,
        dec_deg=position.dec_deg,
        image_path=str(image.path),
        mjd=image.mjd,
    )
    if pb is not None:
        result.pb_response = pb(position.ra_deg, position.dec_deg)
        if result.pb_response < options.pb_threshold:
            result.flags.append(Flag.LOW_PB)

    ny, nx = image.shape
    x0, y0 = image.world_to_pixel(position.ra_deg, position.dec_deg)
    if not (math.isfinite(x0) and math.isfinite(y0)) or not (-0.5 <= x0 < nx - 0.5 and -0.5 <= y0 < ny - 0.5):
        result.flags.append(Flag.OFF_IMAGE)
        return result
    result.x_pix, result.y_pix = x0, y0

    fwhm_pix = image.beam.bmaj_deg / image.pixel_scale_deg

    # Fit aperture: the region where the beam is above its value at fit_radius_fwhm FWHMs.
    half = math.ceil(options.fit_radius_fwhm * fwhm_pix) + 1
    full_x = (math.floor(x0) - half, math.ceil(x0) + half + 1)
    full_y = (math.floor(y0) - half, math.ceil(y0) + half + 1)
    box_x = (max(full_x[0], 0), min(full_x[1], nx))
    box_y = (max(full_y[0], 0), min(full_y[1], ny))
    yy, xx = np.mgrid[box_y[0] : box_y[1], box_x[0] : box_x[1]].astype(float)
    beam = image.beam_at(x0, y0, xx, yy)
    in_aperture = beam >= math.exp(-FOUR_LN2 * options.fit_radius_fwhm**2)
    pixels = image.data[box_y[0] : box_y[1], box_x[0] : box_x[1]]
    if (box_x, box_y) != (full_x, full_y):
        # Check against the beam as it would be on an unbounded image.
        fyy, fxx = np.mgrid[full_y[0] : full_y[1], full_x[0] : full_x[1]].astype(float)
        full_beam = image.beam_at(x0, y0, fxx, fyy)
        outside = (fxx < 0) | (fxx >= nx) | (fyy < 0) | (fyy >= ny)
        if np.any(outside & (full_beam >= math.exp(-FOUR_LN2 * options.fit_radius_fwhm**2))):
            result.flags.append(Flag.NEAR_EDGE)
    finite = np.isfinite(pixels)
    if np.any(in_aperture & ~finite):
        result.flags.append(Flag.BLANKED)
    use = in_aperture & finite

    # Peak.
    ix, iy = round(x0), round(y0)
    nearest = float(image.data[iy, ix])
    if options.peak_mode is PeakMode.MAX:
        core = use & (beam >= 0.5)
        result.peak_jy = float(np.max(pixels[core])) if core.any() else None
    else:
        result.peak_jy = nearest if math.isfinite(nearest) else None

    # Local noise in an annulus (radii in units of the major-axis FWHM).
    outer = options.annulus_outer_fwhm * fwhm_pix
    inner = options.annulus_inner_fwhm * fwhm_pix
    ax = (max(int(x0 - outer), 0), min(int(x0 + outer) + 2, nx))
    ay = (max(int(y0 - outer), 0), min(int(y0 + outer) + 2, ny))
    ayy, axx = np.mgrid[ay[0] : ay[1], ax[0] : ax[1]].astype(float)
    radius = np.hypot(axx - x0, ayy - y0)
    ring = image.data[ay[0] : ay[1], ax[0] : ax[1]][(radius >= inner) & (radius <= outer)]
    ring = ring[np.isfinite(ring)]
    if ring.size < MIN_NOISE_PIXELS:
        result.flags.append(Flag.FEW_NOISE_PIXELS)
    rms = clipped_rms(ring, options.clip_sigma) if ring.size else math.nan
    if math.isfinite(rms) and rms > 0:
        result.local_rms_jy = rms
        result.peak_err_jy = rms
        if result.peak_jy is not None:
            result.peak_err_jy = math.hypot(rms, options.systematic_fraction * result.peak_jy)

    if use.any():
        beam_weights = beam[use]
        beam_flux = float(np.sum(pixels[use] * beam_weights)) / float(np.sum(beam_weights**2))
        if dirty is not None:
            xs, ys = xx[use].astype(int), yy[use].astype(int)
            result.flux_jy, weights = dirty.flux(x0, y0, xs, ys, near_pix=fwhm_pix)
            result.flux_method = FluxMethod.DIRTY_PSF
        else:
            result.flux_jy, weights = beam_flux, beam_weights
            result.flux_method = FluxMethod.RESTORED_BEAM
        if result.local_rms_jy is not None:
            factor = _correlated_error_factor(image, x0, y0, xx[use], yy[use], weights, noise)
            thermal = result.local_rms_jy * factor
            result.snr = result.flux_jy / thermal
            result.flux_err_jy = math.hypot(thermal, options.systematic_fraction * result.flux_jy)
            if options.fit_position and beam_flux > 0:
                # The fixed-position fit's independent-pixel error, inflated as the beam-weighted one is.
                beam_factor = _correlated_error_factor(image, x0, y0, xx[use], yy[use], beam_weights, noise)
                independent = 1.0 / math.sqrt(float(np.sum(beam_weights**2)))
                _fit_gaussian(image, result, options, (box_x, box_y), beam_factor / independent)
    return result


def _beam_in_pixels(image: FitsImage, x0: float, y0: float) -> tuple[float, float, float]:
    """The restoring beam at (x0, y0) as photutils wants it: x and y FWHMs in pixels, and the angle
    of the x axis counter-clockwise from +x in degrees (local Jacobian: any rotation or flip)."""
    to_sky = image.pixel_offsets_to_sky(x0, y0).T  # (east, north) = to_sky @ (dx, dy)
    to_pixels = np.linalg.inv(to_sky)
    pa = math.radians(image.beam.bpa_deg)
    major = to_pixels @ (image.beam.bmaj_deg * np.array([math.sin(pa), math.cos(pa)]))
    minor = to_pixels @ (image.beam.bmin_deg * np.array([math.cos(pa), -math.sin(pa)]))
    theta = math.degrees(math.atan2(major[1], major[0]))
    return float(np.hypot(*major)), float(np.hypot(*minor)), theta


def _fit_gaussian(
    image: FitsImage,
    result: PhotometryResult,
    options: PhotometryOptions,
    box: tuple[tuple[int, int], tuple[int, int]],
    noise_factor: float,
) -> None:
    """Fit an elliptical Gaussian (the restoring beam, or free axes with ``fit_shape``) with a free
    centre inside the fit box, using photutils; fills the ``fit_*`` fields."""
    if result.x_pix is None or result.y_pix is None or result.local_rms_jy is None or not result.flux_jy:
        return
    (x_lo, x_hi), (y_lo, y_hi) = box
    cutout = image.data[y_lo:y_hi, x_lo:x_hi]
    ny, nx = cutout.shape
    if min(nx, ny) < 3:
        return
    x0, y0 = result.x_pix - x_lo, result.y_pix - y_lo
    x_fwhm, y_fwhm, theta = _beam_in_pixels(image, result.x_pix, result.y_pix)
    model = GaussianPSF(x_fwhm=x_fwhm, y_fwhm=y_fwhm, theta=theta)
    for shape_parameter in (model.x_fwhm, model.y_fwhm, model.theta):
        shape_parameter.fixed = not options.fit_shape
    model.x_0.fixed = model.y_0.fixed = options.fit_fixed_position
    # photutils fits an odd square around the start; the box is already the aperture's size.
    side = min(nx, ny) if min(nx, ny) % 2 else min(nx, ny) - 1
    reach = 0.5 * min(x_fwhm, y_fwhm)
    photometry = PSFPhotometry(model, (side, side), xy_bounds=(reach, reach), aperture_radius=reach)
    # A Gaussian normalised to unit integral: its fitted "flux" is the peak times the beam area.
    area_pix = math.pi / FOUR_LN2 * x_fwhm * y_fwhm
    init = QTable({"x": [x0], "y": [y0], "flux": [result.flux_jy * area_pix]})
    finite = np.isfinite(cutout)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)
        table = photometry(
            np.where(finite, cutout, 0.0),
            mask=~finite,
            error=np.full(cutout.shape, result.local_rms_jy),
            init_params=init,
        )
    row = table[0]
    flux = float(row["flux_fit"])
    if not math.isfinite(flux) or flux <= 0:
        return
    if options.fit_shape:
        scale = image.pixel_scale_deg * 3600
        axes = sorted((float(row["x_fwhm_fit"]), float(row["y_fwhm_fit"])))
        result.fit_minor_arcsec, result.fit_major_arcsec = axes[0] * scale, axes[1] * scale
    # Integrated flux density: the fitted Gaussian's integral over the beam's (equal to its peak when
    # the shape is the beam's).
    result.fit_flux_jy = flux / area_pix
    # photutils takes the pixels as independent; restored-image noise is correlated over a beam.
    err = float(row["flux_err"]) / area_pix * noise_factor
    if math.isfinite(err):
        result.fit_flux_err_jy = math.hypot(err, options.systematic_fraction * result.fit_flux_jy)
    xf, yf = float(row["x_fit"]) + x_lo, float(row["y_fit"]) + y_lo
    ra, dec = (float(v) for v in image.wcs.all_pix2world(xf, yf, 0))
    result.fit_ra_deg = ra % 360.0
    result.fit_dec_deg = dec
    pos_err = float(np.hypot(row["x_err"], row["y_err"])) * noise_factor * image.pixel_scale_deg * 3600
    result.fit_pos_err_arcsec = pos_err if math.isfinite(pos_err) else None
    result.fit_offset_arcsec = float(
        SkyCoord(result.ra_deg, result.dec_deg, unit="deg").separation(SkyCoord(ra, dec, unit="deg")).arcsec
    )


def measure_many(
    image: FitsImage, positions: Sequence[SkyPosition], options: PhotometryOptions | None = None
) -> list[PhotometryResult]:
    """Forced photometry at each of ``positions`` in one image, in the given order."""
    options = options or PhotometryOptions()
    pb = _primary_beam(image, options)
    noise = dirty = None
    residual = None
    if options.residual_image is not None:
        residual, _, _ = read_plane(options.residual_image)
        if residual.shape != image.shape:
            raise ValueError(f"{options.residual_image}: residual {residual.shape}, image {image.shape}")
        noise = NoiseCorrelation(residual_autocorrelation(residual), options.residual_image)
    if options.psf_image is not None:
        psf_plane, _, _ = read_plane(options.psf_image)
        if psf_plane.shape != image.shape:
            raise ValueError(f"{options.psf_image}: PSF is {psf_plane.shape}, the image {image.shape}")
        if noise is None:
            noise = NoiseCorrelation(psf_plane, options.psf_image)
        if options.dirty_psf_flux and options.model_image and residual is not None:
            model, _, _ = read_plane(options.model_image)
            dirty = DirtyBeamFlux(psf_plane, model, residual, source=image.path)
    results = [_measure_one(image, position, options, pb, noise, dirty) for position in positions]
    log.info(
        "forced photometry",
        image=str(image.path),
        n_positions=len(results),
        n_flagged=sum(1 for r in results if r.flags),
        flux_method=(FluxMethod.DIRTY_PSF if dirty else FluxMethod.RESTORED_BEAM).value,
    )
    return results


def measure(
    image: FitsImage, ra_deg: float, dec_deg: float, name: str = "", options: PhotometryOptions | None = None
) -> PhotometryResult:
    """Forced photometry at one position."""
    position = SkyPosition(name=name or f"{ra_deg:.5f},{dec_deg:+.5f}", ra_deg=ra_deg, dec_deg=dec_deg)
    return measure_many(image, [position], options)[0]


def measure_file(
    path: Path | str, positions: Sequence[SkyPosition], options: PhotometryOptions | None = None
) -> list[PhotometryResult]:
    """Read a FITS image and run forced photometry at ``positions``, with its planes (:func:`with_planes`)."""
    path = Path(path)
    return measure_many(read_image(path), positions, with_planes(path, options or PhotometryOptions()))


def with_planes(path: Path, options: PhotometryOptions) -> PhotometryOptions:
    """``options`` with the PSF, model and residual an imager wrote beside ``<name>.image.fits``
    (``<name>.psf.fits`` ...) filled in where ``options`` names none and the file exists."""
    path = Path(path)
    if not path.name.endswith(".image.fits"):
        return options
    stem = path.name.removesuffix(".image.fits")
    update = {}
    for field, suffix in (("psf_image", "psf"), ("model_image", "model"), ("residual_image", "residual")):
        sibling = path.with_name(f"{stem}.{suffix}.fits")
        if getattr(options, field) is None and sibling.is_file():
            update[field] = sibling
    return options.model_copy(update=update)
