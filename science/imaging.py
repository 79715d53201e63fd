"""Image a calibrated Measurement Set with WSClean (default) or CASA tclean.

Both read CORRECTED_DATA and image Stokes I over the whole band as one multi-frequency image. WSClean,
in multi-term mode, fits a spectral slope so that bright sources with a spectral index clean properly
across the 13 % fractional bandwidth; tclean uses Hogbom CLEAN unless asked for mtmfs, which diverged
on sparse snapshots, and a tclean run that diverges is refused. The outputs (image, residual, PSF,
CLEAN model, primary beam and primary-beam-corrected image, all FITS, plus a PNG preview) are made in
a scratch directory and moved into place only when complete.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import structlog
from astropy.io import fits
from astropy.wcs import WCS
from numpy.typing import NDArray
from pydantic import BaseModel, Field

from science import casa_env
from science.beam import SPEED_OF_LIGHT_M_S, drift_response
from science.calibrate import (
    SECONDS_PER_DAY,
    SIDEREAL_DEG_PER_S,
    MsSummary,
    read_ms_summary,
)
from science.constants import INTEGRATION_S, PB_CUTOFF
from science.errors import InvalidInputError
from science.image_preview import write_preview

log = structlog.get_logger(__name__)

WSCLEAN = "wsclean"
# The drift-averaged beam is smooth: 8 points along a 24-integration track match 24 points to 0.06 %
# wherever the response is above 0.1, at a third of the cost on a 4096² image.
MAX_TRACK_POINTS = 8
MAD_TO_SIGMA = 1.4826
TCLEAN_SIDELOBE_THRESHOLD = 0.5
# tclean's stop codes for a CLEAN that diverged: the peak residual grew 3× over the previous major cycle
# (5) or over its minimum (6). Its image is then wrong (the five-source scene: +15 % and +30 % at
# the two brightest peaks) and is refused rather than measured.
TCLEAN_DIVERGED = {5, 6}
# When the cell follows the PSF: pixels across its minor axis. With fewer, the peak pixel and the
# Gaussian fit both lose flux: 48 antennas (8.7″ minor axis) gave 0.972 of the truth with 5″ pixels,
# 0.978 with 3″ and 0.987 with 1.5″ (docs/flux-accuracy.md).
PIXELS_PER_MINOR_AXIS = 4.0
# The restored beam's minor axis over 1 / (longest baseline in wavelengths), WSClean's "theoretical beam":
# 0.53-0.58 for this array at robust 0 (24, 48 and 96 antennas); the smaller value errs towards finer pixels.
# A PSF-only WSClean run was tried instead and rejected: its Gaussian fit of a single-frequency snapshot PSF
# took first sidelobes into the core (minor axis 23″ where the multi-frequency image's beam is 8.7″).
MINOR_AXIS_OVER_THEORETICAL = 0.53
# The cell a full DSA-110 array gets (minor axis ~9″), for estimates made before the PSF is measured.
TYPICAL_CELL_ARCSEC = 2.2


class ImagingError(RuntimeError):
    """The imager failed or produced no image (see the log named in the message)."""


class ImagingParams(BaseModel):
    """Imaging parameters shared by both imagers."""

    imager: Literal["auto", "wsclean", "tclean"] = "auto"
    imsize: int | None = Field(
        default=None, ge=16, description="width in pixels; None: enough pixels to cover fov_deg"
    )
    cell_arcsec: float | None = Field(
        default=None,
        gt=0,
        description="pixel size; None: PIXELS_PER_MINOR_AXIS across the expected minor axis (resolve_pixels)",
    )
    fov_deg: float = Field(default=0.6, gt=0, le=20, description="image width when imsize is None")
    robust: float = Field(default=0.0, ge=-2, le=2)
    niter: int = Field(default=20000, ge=0, description="a cap: the thresholds stop CLEAN first")
    threshold_jy: float = Field(default=0.0, ge=0, description="absolute CLEAN stopping threshold")
    nsigma: float = Field(default=0.5, ge=0, description="stop CLEAN at this many times the residual noise")
    auto_mask_sigma: float = Field(
        default=5.0,
        ge=0,
        description="clean to this many sigma unmasked, then to nsigma inside the mask so made (0: off)",
    )
    gain: float = Field(default=0.1, gt=0, le=1)
    mgain: float = Field(default=0.5, gt=0, le=1, description="WSClean: fraction cleaned per major cycle")
    wsclean_gridder: Literal["wgridder", "wstacking"] = Field(
        default="wgridder",
        description="WSClean's gridder: wgridder is accurate to 1e-4; w-stacking aliases near the edges",
    )
    multiterm: bool = True
    nterms: int = Field(
        default=2, ge=1, description="spectral polynomial terms (WSClean); Taylor terms (tclean's mtmfs)"
    )
    tclean_deconvolver: Literal["hogbom", "mtmfs"] = Field(
        default="hogbom",
        description=(
            "tclean's minor cycle. mtmfs (nterms Taylor terms, when multiterm) diverged on the 24-antenna "
            "five-source scene and converged only with 3× the major cycles (docs/flux-accuracy.md)"
        ),
    )
    channels_out: int = Field(
        default=4, ge=1, description="WSClean output channels joined in multi-term mode"
    )
    pbcor: bool = True
    pb_cutoff: float = Field(default=PB_CUTOFF, gt=0, lt=1)
    data_column: str = "CORRECTED_DATA"
    threads: int = Field(default=2, ge=1)


class BeamShape(BaseModel):
    """Restoring beam read from the FITS header."""

    bmaj_arcsec: float
    bmin_arcsec: float
    bpa_deg: float


class ImageResult(BaseModel):
    """The outcome of :func:`create_image`; stored by the caller in the ``images`` table."""

    ms_path: Path
    imager: Literal["wsclean", "tclean"]
    image: Path
    residual: Path
    psf: Path
    model: Path | None = Field(
        default=None, description="CLEAN components (Jy/pixel): photometry rebuilds a source's dirty image"
    )
    pb: Path | None
    pbcor: Path | None
    preview: Path
    noise_jy: float = Field(description="robust (MAD) rms of the residual image")
    beam: BeamShape
    peak_jy: float
    center_ra_deg: float
    center_dec_deg: float
    freq_hz: float
    mid_mjd: float
    params: ImagingParams
    log_path: Path


def wsclean_available() -> bool:
    """True when the ``wsclean`` executable is on PATH."""
    return shutil.which(WSCLEAN) is not None


def create_image(
    ms: Path,
    out_dir: Path,
    *,
    log_dir: Path,
    name: str | None = None,
    params: ImagingParams | None = None,
) -> ImageResult:
    """Image ``ms`` into ``out_dir/<name>.*.fits`` and return the paths and measurements.

    The imager is WSClean if ``params.imager`` is ``auto`` and WSClean is installed, else tclean.
    """
    params = params or ImagingParams()
    ms = Path(ms).resolve()
    out_dir = Path(out_dir).resolve()
    log_dir = Path(log_dir).resolve()
    log_dir.mkdir(parents=True, exist_ok=True)
    casa_env.configure(log_dir)
    summary = read_ms_summary(ms)
    name = name or ms.stem
    imager: Literal["wsclean", "tclean"] = (
        params.imager if params.imager != "auto" else ("wsclean" if wsclean_available() else "tclean")
    )
    if imager == "wsclean" and not wsclean_available():
        raise InvalidInputError("imager 'wsclean' was requested but no wsclean executable is on PATH")
    bound = log.bind(ms=str(ms), imager=imager, name=name)

    out_dir.mkdir(parents=True, exist_ok=True)
    workdir = out_dir / f".image-{name}-{uuid.uuid4().hex[:8]}"
    workdir.mkdir()
    log_path = log_dir / (f"wsclean-{name}.log" if imager == "wsclean" else "casa.log")
    try:
        params = resolve_pixels(ms, params)
        bound.info("pixels", cell_arcsec=params.cell_arcsec, imsize=params.imsize)
        if imager == "wsclean":
            products = _run_wsclean(ms, workdir, params, log_path)
        else:
            products = _run_tclean(ms, workdir, params)
        stage = {kind: workdir / f"{name}.{kind}.fits" for kind in ("image", "residual", "psf", "model")}
        for kind, path in products.items():
            shutil.move(str(path), stage[kind])

        noise = robust_rms(read_plane(stage["residual"]))
        header = fits.getheader(stage["image"])
        beam = read_beam(header, stage["image"])
        image_data = read_plane(stage["image"])
        freq_hz = image_frequency(header) or summary.centre_freq_hz
        if params.pbcor:
            stage["pb"] = workdir / f"{name}.pb.fits"
            stage["pbcor"] = workdir / f"{name}.pbcor.fits"
            write_pb_images(
                stage["image"],
                stage["pb"],
                stage["pbcor"],
                pointing=(summary.phase_centre_ra_deg, summary.phase_centre_dec_deg),
                freq_hz=freq_hz,
                cutoff=params.pb_cutoff,
                track_ra_deg=drift_track_ra_deg(summary),
            )
        stage["preview"] = write_preview(
            stage["image"],
            workdir / f"{name}.png",
            title=f"{name} ({imager}, rms {noise * 1e3:.2f} mJy/beam)",
            noise_jy=noise,
        )
        final = {}
        for kind, path in stage.items():
            target = out_dir / path.name
            if target.exists():
                target.unlink()
            path.rename(target)
            final[kind] = target
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    result = ImageResult(
        ms_path=ms,
        imager=imager,
        image=final["image"],
        residual=final["residual"],
        psf=final["psf"],
        model=final["model"],
        pb=final.get("pb"),
        pbcor=final.get("pbcor"),
        preview=final["preview"],
        noise_jy=noise,
        beam=beam,
        peak_jy=float(np.nanmax(image_data)),
        center_ra_deg=float(header["CRVAL1"]) % 360.0,
        center_dec_deg=float(header["CRVAL2"]),
        freq_hz=freq_hz,
        mid_mjd=summary.mid_mjd,
        params=params,
        log_path=log_path,
    )
    bound.info("imaged", noise_jy=noise, peak_jy=result.peak_jy, bmaj_arcsec=beam.bmaj_arcsec)
    return result


def resolve_pixels(ms: Path, params: ImagingParams) -> ImagingParams:
    """``params`` with the cell and image size fixed: the cell from the expected minor axis unless given,
    the size from ``fov_deg`` unless given."""
    cell = params.cell_arcsec
    if cell is None:
        minor = MINOR_AXIS_OVER_THEORETICAL * theoretical_beam_arcsec(ms)
        cell = round(minor / PIXELS_PER_MINOR_AXIS, 2)
    imsize = params.imsize or 2 * math.ceil(params.fov_deg * 3600.0 / cell / 2)
    return params.model_copy(update={"cell_arcsec": cell, "imsize": imsize})


def planned_imsize(params: ImagingParams) -> int:
    """The image width before the PSF is known, for space estimates: a full array's cell when it follows
    the PSF (PIXELS_PER_MINOR_AXIS across DSA-110's ~9″ minor axis)."""
    if params.imsize is not None:
        return params.imsize
    cell = params.cell_arcsec or TYPICAL_CELL_ARCSEC
    return 2 * math.ceil(params.fov_deg * 3600.0 / cell / 2)


def theoretical_beam_arcsec(ms: Path) -> float:
    """1 / (longest projected baseline in wavelengths at the top of the band), in arcsec."""
    from casatools import table

    tb = table()
    tb.open(str(ms))
    try:
        uvw = tb.getcol("UVW")  # (3, rows), metres
    finally:
        tb.close()
    longest_m = float(np.hypot(uvw[0], uvw[1]).max()) if uvw.size else 0.0
    if longest_m <= 0:
        raise InvalidInputError(f"{ms} has no baselines with a non-zero length")
    freq_max_hz = read_ms_summary(ms).freq_max_hz
    return float(np.degrees(SPEED_OF_LIGHT_M_S / (longest_m * freq_max_hz)) * 3600.0)


def _run_wsclean(ms: Path, workdir: Path, params: ImagingParams, log_path: Path) -> dict[str, Path]:
    prefix = workdir / "ws"
    cmd = [
        WSCLEAN,
        "-name", str(prefix),
        "-size", str(params.imsize), str(params.imsize),
        "-scale", f"{params.cell_arcsec}asec",
        "-weight", "briggs", str(params.robust),
        "-niter", str(params.niter),
        "-gain", str(params.gain),
        "-mgain", str(params.mgain),
        "-data-column", params.data_column,
        "-pol", "I",
        "-j", str(params.threads),
        "-temp-dir", str(workdir),
        # The model column is not needed afterwards; skipping it saves a full pass over the MS.
        "-no-update-model-required",
    ]  # fmt: skip
    if params.wsclean_gridder == "wgridder":
        cmd.append("-use-wgridder")
    if params.nsigma > 0:
        cmd += ["-auto-threshold", str(params.nsigma)]
    if params.auto_mask_sigma > 0:
        cmd += ["-auto-mask", str(params.auto_mask_sigma)]
    if params.threshold_jy > 0:
        cmd += ["-threshold", str(params.threshold_jy)]
    if params.multiterm and params.channels_out > 1:
        cmd += ["-join-channels", "-channels-out", str(params.channels_out)]
        cmd += ["-fit-spectral-pol", str(params.nterms)]
        stem = f"{prefix}-MFS"
    else:
        stem = str(prefix)
    cmd.append(str(ms))
    with log_path.open("a") as handle:
        handle.write("$ " + " ".join(cmd) + "\n")
        handle.flush()
        done = subprocess.run(cmd, cwd=workdir, stdout=handle, stderr=subprocess.STDOUT, check=False)
    products = {kind: Path(f"{stem}-{kind}.fits") for kind in ("image", "residual", "psf", "model")}
    missing = [k for k, p in products.items() if not p.exists()]
    if done.returncode != 0 or missing:
        raise ImagingError(
            f"wsclean exited with {done.returncode} on {ms} (missing: {missing or 'none'}); see {log_path}"
        )
    return products


def _run_tclean(ms: Path, workdir: Path, params: ImagingParams) -> dict[str, Path]:
    from casatasks import exportfits, tclean

    imagename = workdir / "tc"
    mtmfs = params.tclean_deconvolver == "mtmfs" and params.multiterm and params.nterms > 1
    # tclean leaves empty TempLattice directories in the current directory: keep them in the scratch one.
    with contextlib.chdir(workdir):
        summary = tclean(
            vis=str(ms),
            imagename=str(imagename),
            datacolumn="corrected" if params.data_column.upper() == "CORRECTED_DATA" else "data",
            imsize=[params.imsize, params.imsize],
            cell=f"{params.cell_arcsec}arcsec",
            stokes="I",
            specmode="mfs",
            gridder="standard",
            deconvolver="mtmfs" if mtmfs else "hogbom",
            nterms=params.nterms if mtmfs else 1,
            weighting="briggs",
            robust=params.robust,
            niter=params.niter,
            gain=params.gain,
            threshold=f"{params.threshold_jy}Jy",
            nsigma=params.nsigma,
            # tclean's own automasking stands in for WSClean's -auto-mask. Its sidelobe criterion (3 × the
            # PSF's largest sidelobe × the peak) masks nothing with a snapshot PSF whose sidelobes reach 0.5.
            usemask="auto-multithresh" if params.auto_mask_sigma > 0 else "user",
            noisethreshold=params.auto_mask_sigma if params.auto_mask_sigma > 0 else 5.0,
            sidelobethreshold=TCLEAN_SIDELOBE_THRESHOLD,
            pbcor=False,
            savemodel="none",
        )
    check_tclean_summary(summary, ms)
    suffix = ".tt0" if mtmfs else ""
    products = {}
    for kind in ("image", "residual", "psf", "model"):
        casa_image = Path(f"{imagename}.{kind}{suffix}")
        if not casa_image.exists():
            raise ImagingError(f"tclean made no {casa_image.name} for {ms}; see the CASA log")
        fits_path = workdir / f"tc-{kind}.fits"
        exportfits(imagename=str(casa_image), fitsimage=str(fits_path), overwrite=True)
        products[kind] = fits_path
    return products


def check_tclean_summary(summary: object, ms: Path) -> None:
    """Refuse a tclean run whose CLEAN diverged (its summary's stop code), naming why."""
    if not isinstance(summary, dict):
        return
    code = summary.get("stopcode")
    if code in TCLEAN_DIVERGED:
        raise ImagingError(
            f"tclean diverged on {ms} after {summary.get('nmajordone')} major cycles and "
            f"{summary.get('iterdone')} iterations (stop code {code}: {summary.get('stopDescription')}); "
            "the image would be wrong. Image with WSClean, or with tclean_deconvolver=hogbom"
        )


def read_plane(path: Path) -> NDArray[np.float64]:
    """The first 2-D plane of a FITS image (imagers write 4-D cubes with degenerate axes)."""
    data = np.asarray(fits.getdata(path), dtype=float)
    while data.ndim > 2:
        data = data[0]
    return data


def robust_rms(data: NDArray[np.float64]) -> float:
    """Noise estimate from the median absolute deviation, insensitive to the few bright pixels."""
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        return float("nan")
    return float(MAD_TO_SIGMA * np.median(np.abs(finite - np.median(finite))))


def read_beam(header: fits.Header, path: Path) -> BeamShape:
    """Restoring beam from BMAJ/BMIN/BPA (degrees) in ``header``."""
    if not all(k in header for k in ("BMAJ", "BMIN", "BPA")):
        raise ImagingError(f"{path} has no restoring beam (BMAJ/BMIN/BPA) in its header")
    return BeamShape(
        bmaj_arcsec=float(header["BMAJ"]) * 3600.0,
        bmin_arcsec=float(header["BMIN"]) * 3600.0,
        bpa_deg=float(header["BPA"]),
    )


def image_frequency(header: fits.Header) -> float | None:
    """Reference frequency (Hz) of the image's spectral axis, if it has one."""
    for axis in range(1, int(header.get("NAXIS", 0)) + 1):
        if str(header.get(f"CTYPE{axis}", "")).upper().startswith("FREQ"):
            return float(header[f"CRVAL{axis}"])
    return None


def drift_track_ra_deg(summary: MsSummary) -> list[float]:
    """RA of the beam centre through ``summary``'s observation, at the middles of equal stretches of time
    (one per integration, at most MAX_TRACK_POINTS): the phase centre (the beam centre at mid-time) moved
    at the sidereal rate."""
    duration_s = (summary.end_mjd - summary.start_mjd) * SECONDS_PER_DAY
    n = min(MAX_TRACK_POINTS, max(1, round(duration_s / INTEGRATION_S)))
    offsets_s = (np.arange(n) + 0.5) * duration_s / n - duration_s / 2
    return [float((summary.phase_centre_ra_deg + SIDEREAL_DEG_PER_S * dt) % 360.0) for dt in offsets_s]


def write_pb_images(
    image: Path,
    pb_path: Path,
    pbcor_path: Path,
    *,
    pointing: tuple[float, float],
    freq_hz: float,
    cutoff: float,
    track_ra_deg: Sequence[float] | None = None,
) -> None:
    """Write the Airy primary beam on the image grid, and the image divided by it.

    The beam is centred on ``pointing`` (ICRS degrees) at ``freq_hz``; with ``track_ra_deg`` (the beam
    centre's RA at each integration of a drift scan) it is averaged along that track
    (:func:`science.beam.drift_response`). Pixels where it falls below ``cutoff`` are blanked
    (NaN) in the corrected image.
    """
    with fits.open(image) as hdul:
        header = hdul[0].header.copy()
        cube = np.asarray(hdul[0].data, dtype=np.float64)
    plane = cube.reshape(cube.shape[-2:]) if cube.ndim > 2 else cube
    ny, nx = plane.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    world = WCS(header).celestial.pixel_to_world(xx, yy).icrs
    track = [pointing[0]] if track_ra_deg is None else list(track_ra_deg)
    pb = drift_response(world.ra.deg, world.dec.deg, track, pointing[1], freq_hz)
    with np.errstate(invalid="ignore", divide="ignore"):
        corrected = np.where(pb >= cutoff, plane / pb, np.nan)
    pb_header = header.copy()
    pb_header["BUNIT"] = ""
    pb_header["HISTORY"] = f"Airy primary beam, D=4.65 m, at {freq_hz / 1e9:.4f} GHz"
    if len(track) > 1:
        pb_header["HISTORY"] = f"averaged over the drift of the beam centre: {len(track)} integrations"
    fits.PrimaryHDU(pb.reshape(cube.shape).astype(np.float32), header=pb_header).writeto(
        pb_path, overwrite=True
    )
    header["HISTORY"] = f"divided by the Airy primary beam; blanked where it is below {cutoff}"
    fits.PrimaryHDU(corrected.reshape(cube.shape).astype(np.float32), header=header).writeto(
        pbcor_path, overwrite=True
    )
