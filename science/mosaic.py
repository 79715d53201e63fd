"""Mosaics: reproject restored images onto one grid and combine them, with an effective-noise map.

Methods (σ is each input's robust image noise, PB its primary-beam response):

- ``mean``: plain average of the images covering a pixel;
- ``weighted``: inverse-variance average, weights 1/σ²;
- ``pbweighted``: each input is primary-beam corrected (I/PB) and weighted by PB²/σ², the inverse
  variance of the corrected image; pixels with PB below the cutoff are left out. Inputs are taken to
  be apparent-flux images as the imager writes them; the mosaic is then on the true-flux scale.

All three are the weighted mean M = Σ wᵢvᵢ / Σ wᵢ with per-pixel noise sqrt(Σ wᵢ²sᵢ²) / Σ wᵢ, where
vᵢ is the (corrected) value and sᵢ its noise, so one code path serves them all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path

import numpy as np
import structlog
from astropy import units as u
from astropy.io import fits
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import NDArray
from pydantic import BaseModel, Field, model_validator
from reproject import reproject_interp
from reproject.mosaicking import find_optimal_celestial_wcs

from science.beam import airy_response
from science.constants import BAND_CENTRE_HZ, PB_CUTOFF
from science.errors import InvalidInputError
from science.fits_image import (
    Beam,
    FitsImage,
    ImageReadError,
    read_beam,
    read_epoch_mjd,
    read_image,
    read_plane,
    write_image,
)
from science.photometry import clipped_rms

log = structlog.get_logger(__name__)

# Arrays held at once per output pixel while building (value, weight, noise sums, one input, PB, footprint).
_BYTES_PER_PIXEL_IN_MEMORY = 8 * 7


class MosaicMethod(StrEnum):
    """How overlapping images are combined."""

    MEAN = "mean"
    WEIGHTED = "weighted"
    PBWEIGHTED = "pbweighted"


class MosaicPlan(BaseModel):
    """What to mosaic: written by the planner, executed by ``build_plan`` or previewed by ``dry_run``."""

    name: str
    image_paths: list[Path] = Field(min_length=1)
    method: MosaicMethod = MosaicMethod.WEIGHTED
    output_path: Path
    pb_paths: list[Path] | None = Field(default=None, description="one PB image per input, same order")

    @model_validator(mode="after")
    def _pb_per_image(self) -> MosaicPlan:
        if self.pb_paths is not None and len(self.pb_paths) != len(self.image_paths):
            raise ValueError(f"{len(self.pb_paths)} PB images given for {len(self.image_paths)} input images")
        return self


class MosaicInput(BaseModel):
    """One input image as the mosaic saw it."""

    path: str
    shape: tuple[int, int]
    pointing_ra_deg: float
    pointing_dec_deg: float
    bmaj_arcsec: float
    bmin_arcsec: float
    bpa_deg: float
    mjd: float | None = None
    noise_jy: float | None = Field(default=None, description="robust image noise; None in a dry run")


class MosaicDryRun(BaseModel):
    """What ``build`` would produce, computed from headers alone."""

    name: str
    method: MosaicMethod
    inputs: list[MosaicInput]
    shape: tuple[int, int]
    centre_ra_deg: float
    centre_dec_deg: float
    width_deg: float
    height_deg: float
    pixel_arcsec: float
    output_path: Path
    noise_path: Path
    preview_path: Path
    estimated_output_bytes: int
    estimated_memory_bytes: int


class MosaicResult(BaseModel):
    """A written mosaic and its effective-noise map."""

    name: str
    method: MosaicMethod
    inputs: list[MosaicInput]
    shape: tuple[int, int]
    output_path: Path
    noise_path: Path
    preview_path: Path | None
    bmaj_arcsec: float
    bmin_arcsec: float
    bpa_deg: float
    mjd: float | None
    min_noise_jy: float
    median_noise_jy: float
    covered_fraction: float


def companion_paths(output: Path) -> tuple[Path, Path]:
    """Paths of the noise map and PNG preview written next to mosaic ``output``."""
    stem = output.with_suffix("") if output.suffix.lower() in {".fits", ".fit"} else output
    return stem.with_name(stem.name + ".noise.fits"), stem.with_name(stem.name + ".png")


def mosaic_grid(footprints: Sequence[tuple[tuple[int, int], WCS]]) -> tuple[WCS, tuple[int, int]]:
    """SIN grid covering every (shape, WCS), at the finest input pixel scale, north up."""
    finest_deg = min(float(np.min(proj_plane_pixel_scales(wcs))) for _, wcs in footprints)
    wcs_out, shape_out = find_optimal_celestial_wcs(
        list(footprints), projection="SIN", resolution=finest_deg * u.deg
    )
    return wcs_out, (int(shape_out[0]), int(shape_out[1]))


def _summary(path: Path, header: fits.Header, wcs: WCS, shape: tuple[int, int], beam: Beam) -> MosaicInput:
    ra, dec = wcs.wcs.crval
    return MosaicInput(
        path=str(path),
        shape=shape,
        pointing_ra_deg=float(ra),
        pointing_dec_deg=float(dec),
        bmaj_arcsec=beam.bmaj_deg * 3600.0,
        bmin_arcsec=beam.bmin_deg * 3600.0,
        bpa_deg=beam.bpa_deg,
        mjd=read_epoch_mjd(header),
    )


def _read_header(path: Path) -> tuple[fits.Header, WCS, tuple[int, int]]:
    if not path.is_file():
        raise ImageReadError(f"{path}: no such FITS image")
    try:
        header = fits.getheader(path)
    except OSError as exc:
        raise ImageReadError(f"{path}: not a readable FITS file ({exc})") from exc
    wcs = WCS(header, naxis=header.get("NAXIS", 0)).celestial
    if wcs.naxis != 2:
        raise ImageReadError(f"{path}: header has no celestial (RA/Dec) WCS")
    return header, wcs, (int(header["NAXIS2"]), int(header["NAXIS1"]))


def dry_run(plan: MosaicPlan) -> MosaicDryRun:
    """Report the grid, inputs and output sizes of ``plan`` from the FITS headers, writing nothing."""
    inputs = []
    footprints = []
    for path in plan.image_paths:
        header, wcs, shape = _read_header(path)
        inputs.append(_summary(path, header, wcs, shape, read_beam(header, path)))
        footprints.append((shape, wcs))
    if plan.pb_paths is not None:
        for pb_path in plan.pb_paths:
            _read_header(pb_path)
    wcs_out, shape = mosaic_grid(footprints)
    pixel_deg = float(np.mean(proj_plane_pixel_scales(wcs_out)))
    centre_ra, centre_dec = wcs_out.wcs.crval
    noise_path, preview_path = companion_paths(plan.output_path)
    n_pix = shape[0] * shape[1]
    return MosaicDryRun(
        name=plan.name,
        method=plan.method,
        inputs=inputs,
        shape=shape,
        centre_ra_deg=float(centre_ra),
        centre_dec_deg=float(centre_dec),
        width_deg=shape[1] * pixel_deg,
        height_deg=shape[0] * pixel_deg,
        pixel_arcsec=pixel_deg * 3600.0,
        output_path=plan.output_path,
        noise_path=noise_path,
        preview_path=preview_path,
        # Two float32 maps plus headers.
        estimated_output_bytes=2 * (4 * n_pix + 2880 * 4),
        estimated_memory_bytes=_BYTES_PER_PIXEL_IN_MEMORY * n_pix,
    )


def _pixel_sky_positions(wcs: WCS, shape: tuple[int, int]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """RA and Dec (degrees) of every pixel of a grid."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    ra, dec = wcs.all_pix2world(xx, yy, 0)
    return np.asarray(ra), np.asarray(dec)


def _angular_offset_rad(
    ra_deg: NDArray[np.float64], dec_deg: NDArray[np.float64], ra0: float, dec0: float
) -> NDArray[np.float64]:
    """Great-circle distance (haversine) from (ra0, dec0) to each position."""
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    ra0_r, dec0_r = math.radians(ra0), math.radians(dec0)
    h = np.sin((dec - dec0_r) / 2) ** 2 + np.cos(dec) * math.cos(dec0_r) * np.sin((ra - ra0_r) / 2) ** 2
    return np.asarray(2 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))))


def _primary_beam_on_grid(
    image: FitsImage,
    pb_path: Path | None,
    grid_radec: tuple[NDArray[np.float64], NDArray[np.float64]],
    wcs_out: WCS,
    shape: tuple[int, int],
    freq_hz: float | None,
) -> NDArray[np.float64]:
    """PB response of one input on the output grid: from its PB image, or the Airy model about CRVAL."""
    if pb_path is not None:
        pb_data, pb_wcs, _ = read_plane(pb_path)
        pb, footprint = reproject_interp((pb_data, pb_wcs), wcs_out, shape_out=shape, order="bilinear")
        return np.where(footprint > 0, pb, np.nan)
    freq = freq_hz or image.freq_hz or BAND_CENTRE_HZ
    ra0, dec0 = image.pointing_deg
    return airy_response(_angular_offset_rad(grid_radec[0], grid_radec[1], ra0, dec0), freq)


def _write_preview(path: Path, data: NDArray[np.float64], wcs: WCS, title: str) -> Path:
    """PNG of the mosaic with a percentile stretch and sky axes."""
    finite = data[np.isfinite(data)]
    lo, hi = np.percentile(finite, [1.0, 99.5]) if finite.size else (0.0, 1.0)
    fig = Figure(figsize=(7, 6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(projection=wcs)
    shown = ax.imshow(data * 1e3, origin="lower", cmap="inferno", vmin=lo * 1e3, vmax=hi * 1e3)
    fig.colorbar(shown, ax=ax, label="mJy/beam")
    ax.set_xlabel("RA")
    ax.set_ylabel("Dec")
    ax.set_title(title)
    fig.savefig(path, dpi=100)
    return path


def build(
    images: Sequence[Path | str],
    method: MosaicMethod | str,
    output: Path | str,
    *,
    pb_images: Sequence[Path | str] | None = None,
    freq_hz: float | None = None,
    pb_cutoff: float = PB_CUTOFF,
    name: str | None = None,
    preview: bool = True,
) -> MosaicResult:
    """Reproject ``images`` onto a common grid, combine them by ``method`` and write the mosaic.

    Writes ``output`` (Jy/beam, carrying the largest input beam), ``<stem>.noise.fits`` (effective
    noise, Jy/beam) and, if ``preview``, ``<stem>.png``. ``pb_images`` (one per input) replace the
    Airy model about each image's CRVAL for ``pbweighted``; ``freq_hz`` overrides the header frequency.
    """
    method = MosaicMethod(method)
    output = Path(output)
    paths = [Path(p) for p in images]
    if not paths:
        raise InvalidInputError("a mosaic needs at least one input image")
    pb_paths: list[Path | None] = [Path(p) for p in pb_images] if pb_images else [None] * len(paths)
    if len(pb_paths) != len(paths):
        raise InvalidInputError(f"{len(pb_paths)} PB images given for {len(paths)} input images")

    loaded = [read_image(p) for p in paths]
    wcs_out, shape = mosaic_grid([(img.shape, img.wcs) for img in loaded])
    # Sky positions of the output pixels, needed only to evaluate primary beams.
    grid_radec = _pixel_sky_positions(wcs_out, shape) if method is MosaicMethod.PBWEIGHTED else None

    sum_wv = np.zeros(shape)
    sum_w = np.zeros(shape)
    sum_w2s2 = np.zeros(shape)
    inputs = []
    for img, pb_path in zip(loaded, pb_paths, strict=True):
        sigma = clipped_rms(img.data.ravel())
        if not (math.isfinite(sigma) and sigma > 0):
            raise InvalidInputError(f"{img.path}: cannot estimate the image noise (blank or constant image)")
        summary = _summary(img.path, img.header, img.wcs, img.shape, img.beam)
        summary.noise_jy = sigma
        inputs.append(summary)

        values, footprint = reproject_interp((img.data, img.wcs), wcs_out, shape_out=shape, order="bicubic")
        covered = (footprint > 0) & np.isfinite(values)
        if grid_radec is not None:
            pb = _primary_beam_on_grid(img, pb_path, grid_radec, wcs_out, shape, freq_hz)
            covered &= np.isfinite(pb) & (pb >= pb_cutoff)
            safe_pb = np.where(covered, pb, 1.0)
            weight = safe_pb**2 / sigma**2
            value = values / safe_pb
            noise = sigma / safe_pb
        else:
            weight = np.full(shape, 1.0 if method is MosaicMethod.MEAN else 1.0 / sigma**2)
            value = values
            noise = np.full(shape, sigma)
        weight = np.where(covered, weight, 0.0)
        sum_wv += weight * np.where(covered, value, 0.0)
        sum_w += weight
        sum_w2s2 += weight**2 * noise**2
        log.debug("mosaic input", path=str(img.path), noise_jy=sigma, covered_pixels=int(covered.sum()))

    with np.errstate(invalid="ignore", divide="ignore"):
        mosaic = np.where(sum_w > 0, sum_wv / sum_w, np.nan)
        noise_map = np.where(sum_w > 0, np.sqrt(sum_w2s2) / sum_w, np.nan)

    # Carry the largest beam: fluxes of sources imaged with smaller beams are then read conservatively.
    beam = max((img.beam for img in loaded), key=lambda b: b.bmaj_deg * b.bmin_deg)
    if any(abs(img.beam.bmaj_deg - beam.bmaj_deg) > 0.05 * beam.bmaj_deg for img in loaded):
        log.warning(
            "input beams differ by more than 5%; the mosaic carries the largest", bmaj_deg=beam.bmaj_deg
        )
    mjds = [img.mjd for img in loaded if img.mjd is not None]
    mjd = float(np.mean(mjds)) if mjds else None
    name = name or output.stem
    extra: dict[str, object] = {"MOSMETH": (method.value, "mosaic combination"), "NINPUTS": len(loaded)}
    if mjds:
        extra.update({"MJD-OBS": mjd, "MJD-BEG": min(mjds), "MJD-END": max(mjds)})
    freqs = [img.freq_hz for img in loaded if img.freq_hz]
    if freqs:
        extra["RESTFRQ"] = float(np.mean(freqs))
    history = [f"mosaic input {inp.path} noise {inp.noise_jy:.4g} Jy/beam" for inp in inputs]

    noise_path, preview_path = companion_paths(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_image(output, mosaic, wcs_out, beam, "Jy/beam", extra, history)
    write_image(noise_path, noise_map, wcs_out, beam, "Jy/beam", {**extra, "IMAGTYPE": "noise"}, history)
    written_preview = (
        _write_preview(preview_path, mosaic, wcs_out, f"{name} ({method.value})") if preview else None
    )

    finite_noise = noise_map[np.isfinite(noise_map)]
    result = MosaicResult(
        name=name,
        method=method,
        inputs=inputs,
        shape=shape,
        output_path=output,
        noise_path=noise_path,
        preview_path=written_preview,
        bmaj_arcsec=beam.bmaj_deg * 3600.0,
        bmin_arcsec=beam.bmin_deg * 3600.0,
        bpa_deg=beam.bpa_deg,
        mjd=mjd,
        min_noise_jy=float(finite_noise.min()),
        median_noise_jy=float(np.median(finite_noise)),
        covered_fraction=float(np.mean(sum_w > 0)),
    )
    log.info(
        "mosaic written",
        name=name,
        method=method.value,
        output=str(output),
        shape=shape,
        n_inputs=len(loaded),
    )
    return result


def build_plan(plan: MosaicPlan, preview: bool = True) -> MosaicResult:
    """Build the mosaic a ``MosaicPlan`` describes."""
    return build(
        plan.image_paths,
        plan.method,
        plan.output_path,
        pb_images=plan.pb_paths,
        name=plan.name,
        preview=preview,
    )
