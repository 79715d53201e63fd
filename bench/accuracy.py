"""The flux-accuracy benchmark: ``python -m bench.accuracy [--quick | --realisations N] [--table]``.

Each realisation simulates, in the real correlator's file layout, a 3C286 calibrator transit and a
target field five minutes later (new noise, new gains, new source positions and fluxes), then runs the
real chain on them: convert → solve → apply → image → forced photometry at the true positions, with
the defaults of ``contimg image`` and ``contimg photometry`` unless overridden. Fluxes are drawn
log-uniformly between ``--snr-min`` and ``--snr-max`` times the image noise predicted by the
radiometer equation; the measured SNR is the true flux over the measured image noise.

Per SNR bin it reports the median measured/true (beam-weighted flux and peak), the scatter of that
ratio, the pull (measured − true)/σ_reported with its mean and width (a robust width, 1.4826 × MAD,
and the standard deviation),
and the position error of the fitted position in units of the restoring beam's minor axis.

``--table`` instead measures the fixed scene of the accuracy issue (500, 150, 50, 20 and 10 mJy
within 10′ of the centre) with WSClean and tclean, as one table.

Truth is the source's flux at the band centre through the primary beam averaged over the drift
(``apparent_flux_jy`` in the simulator's truth), which is what an image that is not
primary-beam-corrected shows.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

# The scene: (name, east°, north°, flux Jy, spectral index), all within 10′ of the centre.
TABLE_SCENE: tuple[tuple[str, float, float, float, float], ...] = (
    ("S1", 0.080, 0.050, 0.500, -0.7),
    ("S2", -0.110, 0.070, 0.150, -0.7),
    ("S3", 0.050, -0.120, 0.050, -0.5),
    ("S4", -0.090, -0.080, 0.020, -0.8),
    ("S5", 0.130, 0.100, 0.010, -0.7),
)
SNR_BINS: tuple[tuple[float, float], ...] = ((5, 10), (10, 20), (20, 50), (50, 200), (200, 2000))
MAD_TO_SIGMA = 1.4826


class ChainSettings(BaseModel):
    """The size of the simulated data and the images."""

    n_antennas: int = 24
    n_channels: int = 8
    n_integrations: int = 10
    imsize: int | None = None
    cell_arcsec: float | None = None
    fov_deg: float = 0.57

    @property
    def width_deg(self) -> float:
        """The image's width: imsize × cell when both are fixed, else fov_deg (the imager's rule)."""
        if self.imsize is not None and self.cell_arcsec is not None:
            return self.imsize * self.cell_arcsec / 3600.0
        return self.fov_deg

    @property
    def pixels(self) -> str:
        """How the image is sampled, for titles."""
        cell = f"{self.cell_arcsec}″" if self.cell_arcsec else "beam/4"
        return f"{self.imsize or 'auto'} × {cell}, {self.width_deg:.2f}°"

    imaging: dict[str, Any] = {}
    photometry: dict[str, Any] = {}


class SourceRow(BaseModel):
    """One source in one realisation: truth against what the chain measured."""

    realisation: int
    name: str
    true_jy: float
    flux_jy: float | None
    flux_err_jy: float | None
    peak_jy: float | None
    fit_flux_jy: float | None
    local_rms_jy: float | None
    image_rms_jy: float
    offset_arcmin: float
    position_error_minor: float | None
    beam_minor_arcsec: float
    spectral_index: float | None = None
    ra_deg: float | None = None
    dec_deg: float | None = None


class BinSummary(BaseModel):
    """The statistics of one SNR bin."""

    snr_lo: float
    snr_hi: float
    n: int
    median_ratio: float
    scatter_ratio: float
    median_peak_ratio: float
    median_fit_ratio: float | None
    pull_mean: float
    pull_width: float
    pull_sd: float
    position_error_minor_median: float | None


def _robust_width(values: Sequence[float]) -> float:
    arr = np.asarray(values, dtype=float)
    if arr.size < 2:
        return math.nan
    return float(MAD_TO_SIGMA * np.median(np.abs(arr - np.median(arr))))


def predicted_image_noise_jy(settings: ChainSettings) -> float:
    """Natural-weight Stokes I image noise from the radiometer equation, times 1.2 for robust 0."""
    from science.simulate import ObservationConfig, noise_sigma_jy

    config = ObservationConfig(
        start_time=datetime(2025, 6, 1, tzinfo=UTC),
        dec_deg=30.0,
        n_antennas=settings.n_antennas,
        n_channels=settings.n_channels,
        n_integrations=settings.n_integrations,
    )
    n_bl = settings.n_antennas * (settings.n_antennas - 1) // 2
    n_samples = n_bl * settings.n_channels * 16 * settings.n_integrations
    # Stokes I averages XX and YY: the real part of each sample has σ/√2.
    return 1.2 * noise_sigma_jy(config) / math.sqrt(2.0 * n_samples)


def _scene(
    rng: np.random.Generator, n_sources: int, settings: ChainSettings, snr_range: tuple[float, float]
) -> list[tuple[str, float, float, float, float]]:
    """Random positions (at least 3′ apart, within 40 % of the image half-width) and log-uniform SNRs."""
    noise = predicted_image_noise_jy(settings)
    half_deg = 0.4 * settings.width_deg
    placed: list[tuple[float, float]] = []
    while len(placed) < n_sources:
        east, north = rng.uniform(-half_deg, half_deg, 2)
        if all(math.hypot(east - e, north - n) > 0.05 for e, n in placed):
            placed.append((float(east), float(north)))
    lo, hi = (math.log(s) for s in snr_range)
    fluxes = noise * np.exp(rng.uniform(lo, hi, n_sources))
    alphas = rng.uniform(-1.0, 0.0, n_sources)
    return [
        (f"R{i:02d}", e, n, float(f), float(a))
        for i, ((e, n), f, a) in enumerate(zip(placed, fluxes, alphas, strict=True))
    ]


class Prepared(BaseModel):
    """A calibrated target Measurement Set and its truth, ready to image any number of ways."""

    realisation: int
    target_ms: Path
    sources_csv: Path
    truth: list[dict[str, Any]]
    seconds: float


def prepare(
    index: int,
    scene: Sequence[tuple[str, float, float, float, float]],
    settings: ChainSettings,
    workdir: Path,
    *,
    seed: int,
) -> Prepared:
    """Simulate the calibrator and the target, convert both, solve on the calibrator, apply to the target."""
    from science.applycal import apply_calibration
    from science.calibrate import solve_calibration
    from science.convert import convert_group
    from science.grouping import find_groups
    from science.simulate import calibrator_transit, simulate_observation, target_field

    start = time.perf_counter()
    work = workdir / f"r{index:03d}"
    logs = work / "logs"
    common: dict[str, Any] = {
        "n_antennas": settings.n_antennas,
        "n_channels": settings.n_channels,
        "n_integrations": settings.n_integrations,
        "gain_seed": seed * 1000 + index,
    }
    cal_config = calibrator_transit(
        datetime(2025, 6, 1, 4, 0, tzinfo=UTC), seed=seed * 1000 + 2 * index, **common
    )
    cal_end = cal_config.start_time + timedelta(seconds=cal_config.n_integrations * cal_config.integration_s)
    target_config = target_field(
        cal_end + timedelta(minutes=5),
        cal_config.dec_deg,
        sources=scene,
        seed=seed * 1000 + 2 * index + 1,
        **common,
    )
    calibrator = simulate_observation(cal_config, work / "cal-uvh5")
    target = simulate_observation(target_config, work / "target-uvh5")
    del calibrator
    (cal_group,) = find_groups(work / "cal-uvh5")
    (target_group,) = find_groups(work / "target-uvh5")
    cal_ms = convert_group(cal_group, work / "ms").ms_path
    target_ms = convert_group(target_group, work / "ms").ms_path
    solved = solve_calibration(cal_ms, work / "caltables", log_dir=logs)
    apply_calibration(target_ms, solved.apply_tables, log_dir=logs)
    shutil.rmtree(work / "cal-uvh5")
    shutil.rmtree(work / "target-uvh5")
    return Prepared(
        realisation=index,
        target_ms=target_ms,
        sources_csv=target.sources_csv,
        truth=[s.model_dump() for s in target.sources],
        seconds=time.perf_counter() - start,
    )


def measure(prepared: Prepared, settings: ChainSettings, workdir: Path, label: str = "") -> list[SourceRow]:
    """Image the calibrated target with the given settings and measure every true source."""
    from astropy.coordinates import SkyCoord

    from science.catalogs import SkyPosition
    from science.imaging import ImagingParams, create_image
    from science.photometry import PhotometryOptions, measure_file

    params = ImagingParams.model_validate(
        {
            "imsize": settings.imsize,
            "cell_arcsec": settings.cell_arcsec,
            "fov_deg": settings.fov_deg,
            **settings.imaging,
        }
    )
    work = workdir / f"r{prepared.realisation:03d}"
    image = create_image(
        prepared.target_ms,
        work / f"images{label}",
        log_dir=work / "logs",
        params=params,
    )
    positions = [
        SkyPosition(name=t["name"], ra_deg=t["ra_deg"], dec_deg=t["dec_deg"]) for t in prepared.truth
    ]
    options = PhotometryOptions.model_validate(settings.photometry)
    results = measure_file(image.image, positions, options)
    centre = SkyCoord(image.center_ra_deg, image.center_dec_deg, unit="deg")
    rows = []
    for truth, result in zip(prepared.truth, results, strict=True):
        where = SkyCoord(truth["ra_deg"], truth["dec_deg"], unit="deg")
        position_error = None
        if result.fit_ra_deg is not None and result.fit_dec_deg is not None:
            error_arcsec = where.separation(
                SkyCoord(result.fit_ra_deg, result.fit_dec_deg, unit="deg")
            ).arcsec
            position_error = error_arcsec / image.beam.bmin_arcsec
        rows.append(
            SourceRow(
                realisation=prepared.realisation,
                name=truth["name"],
                true_jy=truth["apparent_flux_jy"],
                flux_jy=result.flux_jy,
                flux_err_jy=result.flux_err_jy,
                peak_jy=result.peak_jy,
                fit_flux_jy=result.fit_flux_jy,
                local_rms_jy=result.local_rms_jy,
                image_rms_jy=image.noise_jy,
                offset_arcmin=centre.separation(where).arcmin,
                position_error_minor=position_error,
                beam_minor_arcsec=image.beam.bmin_arcsec,
                spectral_index=truth["spectral_index"],
                ra_deg=truth["ra_deg"],
                dec_deg=truth["dec_deg"],
            )
        )
    return rows


def summarise(rows: Sequence[SourceRow]) -> list[BinSummary]:
    """Statistics per SNR bin (SNR = true flux over the image noise)."""
    summaries = []
    for lo, hi in SNR_BINS:
        chosen = [r for r in rows if r.flux_jy is not None and lo <= r.true_jy / r.image_rms_jy < hi]
        if not chosen:
            continue
        ratios = [r.flux_jy / r.true_jy for r in chosen if r.flux_jy is not None]
        peaks = [r.peak_jy / r.true_jy for r in chosen if r.peak_jy is not None]
        fits = [r.fit_flux_jy / r.true_jy for r in chosen if r.fit_flux_jy is not None]
        pulls = [
            (r.flux_jy - r.true_jy) / r.flux_err_jy for r in chosen if r.flux_jy is not None and r.flux_err_jy
        ]
        positions = [r.position_error_minor for r in chosen if r.position_error_minor is not None]
        summaries.append(
            BinSummary(
                snr_lo=lo,
                snr_hi=hi,
                n=len(chosen),
                median_ratio=float(np.median(ratios)),
                scatter_ratio=_robust_width(ratios),
                median_peak_ratio=float(np.median(peaks)) if peaks else math.nan,
                median_fit_ratio=float(np.median(fits)) if fits else None,
                pull_mean=float(np.mean(pulls)) if pulls else math.nan,
                pull_width=_robust_width(pulls),
                pull_sd=float(np.std(pulls, ddof=1)) if len(pulls) > 1 else math.nan,
                position_error_minor_median=float(np.median(positions)) if positions else None,
            )
        )
    return summaries


# Report ---------------------------------------------------------------------------------------


class AccuracyReport(BaseModel):
    """The whole run: settings, every source, and the per-bin statistics."""

    settings: ChainSettings
    realisations: int
    predicted_noise_jy: float
    bins: list[BinSummary]
    rows: list[SourceRow]
    prepare_s: float
    measure_s: float
    failures: list[str] = []


def print_bins(report: AccuracyReport, console: Console) -> None:
    """The per-SNR-bin table."""
    s = report.settings
    table = Table(
        title=(
            f"flux accuracy: {report.realisations} realisations, {s.n_antennas} antennas, "
            f"{s.n_channels}×16 channels, {s.n_integrations} integrations, {s.pixels}"
        )
    )
    columns = (
        "SNR",
        "n",
        "flux/true",
        "scatter",
        "peak/true",
        "fit/true",
        "pull mean",
        "pull width",
        "pull sd",
    )
    for column in (*columns, "pos err/bmin"):
        table.add_column(column, justify="right")
    for b in report.bins:
        table.add_row(
            f"{b.snr_lo:g}–{b.snr_hi:g}",
            str(b.n),
            f"{b.median_ratio:.4f}",
            f"{b.scatter_ratio:.4f}",
            f"{b.median_peak_ratio:.4f}",
            "-" if b.median_fit_ratio is None else f"{b.median_fit_ratio:.4f}",
            f"{b.pull_mean:+.2f}",
            f"{b.pull_width:.2f}",
            f"{b.pull_sd:.2f}",
            "-" if b.position_error_minor_median is None else f"{b.position_error_minor_median:.3f}",
        )
    console.print(table)


def print_sources(rows: Sequence[SourceRow], console: Console, title: str) -> None:
    """One line per source (the fixed-scene table)."""
    table = Table(title=title)
    for column in ("source", "true mJy", "peak/true", "flux/true", "fit/true", "SNR", "pull", "pos err/bmin"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            r.name,
            f"{r.true_jy * 1e3:.1f}",
            "-" if r.peak_jy is None else f"{r.peak_jy / r.true_jy:.3f}",
            "-" if r.flux_jy is None else f"{r.flux_jy / r.true_jy:.3f}",
            "-" if r.fit_flux_jy is None else f"{r.fit_flux_jy / r.true_jy:.3f}",
            f"{r.true_jy / r.image_rms_jy:.0f}",
            "-"
            if r.flux_jy is None or not r.flux_err_jy
            else f"{(r.flux_jy - r.true_jy) / r.flux_err_jy:+.2f}",
            "-" if r.position_error_minor is None else f"{r.position_error_minor:.3f}",
        )
    console.print(table)


def run_monte_carlo(
    settings: ChainSettings,
    workdir: Path,
    *,
    realisations: int,
    sources: int,
    snr_range: tuple[float, float],
    seed: int,
    console: Console,
) -> AccuracyReport:
    """Independent realisations through the whole chain."""
    rng = np.random.default_rng(seed)
    rows: list[SourceRow] = []
    failures: list[str] = []
    prepare_s = measure_s = 0.0
    for index in range(realisations):
        scene = _scene(rng, sources, settings, snr_range)
        try:
            prepared = prepare(index, scene, settings, workdir, seed=seed)
            prepare_s += prepared.seconds
            start = time.perf_counter()
            rows += measure(prepared, settings, workdir)
            measure_s += time.perf_counter() - start
        except Exception as exc:  # a failure is a finding: count it, keep its logs, go on
            kept = Path(tempfile.mkdtemp(prefix=f"bench-accuracy-failed-r{index:03d}-"))
            logs = workdir / f"r{index:03d}" / "logs"
            if logs.is_dir():
                shutil.copytree(logs, kept / "logs", dirs_exist_ok=True)
            failures.append(f"realisation {index}: {type(exc).__name__}: {exc} (logs kept in {kept})")
            console.print(f"[red]realisation {index} failed[/]: {failures[-1]}")
        shutil.rmtree(workdir / f"r{index:03d}", ignore_errors=True)
        elapsed = prepare_s + measure_s
        console.print(
            f"realisation {index + 1}/{realisations} done, {elapsed:.0f} s so far, "
            f"about {elapsed / (index + 1) * (realisations - index - 1):.0f} s to go"
        )
    return AccuracyReport(
        settings=settings,
        realisations=realisations,
        predicted_noise_jy=predicted_image_noise_jy(settings),
        bins=summarise(rows),
        rows=rows,
        prepare_s=prepare_s,
        measure_s=measure_s,
        failures=failures,
    )


def run_table(
    settings: ChainSettings, workdir: Path, *, seed: int, console: Console
) -> dict[str, list[SourceRow]]:
    """The issue's five-source scene, imaged with WSClean and with tclean."""
    prepared = prepare(0, TABLE_SCENE, settings, workdir, seed=seed)
    out: dict[str, list[SourceRow]] = {}
    for imager in ("wsclean", "tclean"):
        chosen = settings.model_copy(update={"imaging": {**settings.imaging, "imager": imager}})
        out[imager] = measure(prepared, chosen, workdir, label=f"-{imager}")
        print_sources(out[imager], console, f"the five-source scene, {imager}")
    return out


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench.accuracy", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 realisations of 8 sources (a few minutes)")
    parser.add_argument("--realisations", type=int, default=20)
    parser.add_argument("--sources", type=int, default=8, help="sources per realisation")
    parser.add_argument("--snr-min", type=float, default=5.0)
    parser.add_argument("--snr-max", type=float, default=1000.0)
    parser.add_argument("--antennas", type=int, default=24)
    parser.add_argument("--channels", type=int, default=8, help="channels per subband")
    parser.add_argument("--integrations", type=int, default=10)
    parser.add_argument("--imsize", type=int, help="image width in pixels (default: from --fov-deg)")
    parser.add_argument("--cell-arcsec", type=float, help="pixel size (default: a quarter of the beam)")
    parser.add_argument("--fov-deg", type=float, default=0.57, help="image width when --imsize is not given")
    parser.add_argument("--imaging", default="{}", help="JSON overrides of the imaging parameters")
    parser.add_argument("--photometry", default="{}", help="JSON overrides of the photometry options")
    parser.add_argument(
        "--table", action="store_true", help="the fixed five-source scene, WSClean and tclean"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the report (every source) to this file")
    parser.add_argument("--workdir", type=Path, help="scratch directory (default: a new temporary one)")
    args = parser.parse_args(argv)

    from absurd.logging import configure_logging

    configure_logging("WARNING", json=True)
    console = Console(width=None if sys.stdout.isatty() else 140)
    settings = ChainSettings(
        n_antennas=args.antennas,
        n_channels=args.channels,
        n_integrations=args.integrations,
        imsize=args.imsize,
        cell_arcsec=args.cell_arcsec,
        fov_deg=args.fov_deg,
        imaging=json.loads(args.imaging),
        photometry=json.loads(args.photometry),
    )
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-accuracy-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if args.table:
            table = run_table(settings, workdir, seed=args.seed, console=console)
            if args.json:
                args.json.write_text(
                    json.dumps({k: [r.model_dump() for r in v] for k, v in table.items()}, indent=2)
                )
            return
        realisations = 4 if args.quick else args.realisations
        report = run_monte_carlo(
            settings,
            workdir,
            realisations=realisations,
            sources=args.sources,
            snr_range=(args.snr_min, args.snr_max),
            seed=args.seed,
            console=console,
        )
        print_bins(report, console)
        for failure in report.failures:
            console.print(f"[red]failed:[/] {failure}")
        console.print(
            f"predicted image noise {report.predicted_noise_jy * 1e3:.3f} mJy; "
            f"prepare {report.prepare_s:.0f} s, image+measure {report.measure_s:.0f} s "
            "(wall clock, perf_counter)"
        )
        if args.json:
            args.json.write_text(report.model_dump_json(indent=2))
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
