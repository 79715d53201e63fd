"""The science benchmark: ``python -m bench.science [--quick] [--json] [--antennas 24,48,96]``.

For each array size it simulates a calibrator transit and a target observation in the real correlator's
file layout (fringestopped old-style UVH5, float32 uvw, 117-antenna table; not timed), then times the
stages one observation goes through: convert (target UVH5 → MS: read, undo the fringestop, phase, flag
with AOFlagger, write), solve (on the
calibrator; once per transit, not per observation), apply, image (WSClean when installed) and
photometry (forced, at the simulated sources). Each size runs in its own child process, at lower
CPU priority so that it yields to other work on a shared machine, and a sampler follows the resident
memory of that process and its children (WSClean) to report the peak per stage.

The per-observation time (convert + apply + image + photometry) is compared with the observation's
own duration, 24 × 12.885 s ≈ 309 s: processing keeps up in real time when it is below that.
Scaling between sizes is reported as the exponent p in time ∝ baselines^p.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from science.constants import TILE_DURATION_S

T = TypeVar("T")
STAGES = ("convert", "solve", "apply", "image", "photometry")
PER_OBSERVATION = ("convert", "apply", "image", "photometry")


class ScaleSettings(BaseModel):
    """One benchmark point."""

    n_antennas: int
    n_channels: int
    n_integrations: int
    imsize: int
    cell_arcsec: float
    workdir: Path


class StageResult(BaseModel):
    """Wall time and peak resident memory (process tree) of one stage."""

    stage: str
    seconds: float
    peak_rss_bytes: int


class ScaleResult(BaseModel):
    """All stages at one array size."""

    n_antennas: int
    n_baselines: int
    n_channels_total: int
    n_integrations: int
    visibilities: int
    stages: list[StageResult]
    per_observation_s: float
    peak_rss_bytes: int
    memory_source: str
    ms_bytes: int


class BenchReport(BaseModel):
    """The whole run."""

    scales: list[ScaleResult]
    observation_s: float
    scaling_exponents: dict[str, float]
    largest_per_observation_s: float
    largest_real_time_factor: float
    cpu_count: int


# Memory ---------------------------------------------------------------------------------------


class PeakSampler:
    """Polls the resident memory of this process and its descendants; psutil if present, else getrusage."""

    def __init__(self, interval_s: float = 0.1) -> None:
        self.interval_s = interval_s
        self.peak = 0
        self._stop = threading.Event()
        try:
            import psutil

            self._proc: Any = psutil.Process()
            self.source = "psutil (process tree RSS, sampled)"
        except ImportError:
            self._proc = None
            self.source = "getrusage maxrss (self + children, not summed)"

    def _tree_rss(self) -> int:
        total = 0
        for proc in [self._proc, *self._proc.children(recursive=True)]:
            try:
                total += int(proc.memory_info().rss)
            except Exception:  # a child may exit between listing and reading
                continue
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak = max(self.peak, self._tree_rss())

    @contextmanager
    def measure(self) -> Iterator[PeakSampler]:
        """Track the peak while the block runs."""
        if self._proc is None:
            yield self
            usage = max(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
            )
            self.peak = usage * 1024  # kilobytes on Linux
            return
        self.peak = self._tree_rss()
        self._stop.clear()
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
            self.peak = max(self.peak, self._tree_rss())


def _timed(stage: str, fn: Callable[[], T], results: list[StageResult]) -> T:
    sampler = PeakSampler()
    with sampler.measure():
        start = time.perf_counter()
        value = fn()
        seconds = time.perf_counter() - start
    results.append(StageResult(stage=stage, seconds=seconds, peak_rss_bytes=sampler.peak))
    return value


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# One scale (runs in a child process) -----------------------------------------------------------


def run_scale(settings: ScaleSettings) -> ScaleResult:
    """Simulate, then time every stage at one array size."""
    from science.applycal import apply_calibration
    from science.calibrate import solve_calibration
    from science.catalogs import read_catalog
    from science.constants import N_SUBBANDS
    from science.convert import convert_group
    from science.grouping import find_groups
    from science.imaging import ImagingParams, create_image
    from science.photometry import measure_file
    from science.simulate import calibrator_transit, simulate_observation, target_field

    work = settings.workdir
    logs = work / "logs"
    common: dict[str, Any] = {
        "n_antennas": settings.n_antennas,
        "n_channels": settings.n_channels,
        "n_integrations": settings.n_integrations,
        "gain_seed": 1234,
    }
    cal_config = calibrator_transit(datetime(2025, 6, 1, 4, 0, tzinfo=UTC), seed=1, **common)
    target_config = target_field(
        cal_config.start_time + timedelta(hours=1), cal_config.dec_deg, seed=2, **common
    )
    calibrator = simulate_observation(cal_config, work / "cal-uvh5")
    target = simulate_observation(target_config, work / "target-uvh5")
    (cal_group,) = find_groups(work / "cal-uvh5")
    (target_group,) = find_groups(work / "target-uvh5")
    cal_ms = convert_group(cal_group, work / "ms").ms_path  # the calibrator's own conversion is set-up

    stages: list[StageResult] = []
    target_ms = _timed("convert", lambda: convert_group(target_group, work / "ms").ms_path, stages)
    solved = _timed("solve", lambda: solve_calibration(cal_ms, work / "caltables", log_dir=logs), stages)
    _timed("apply", lambda: apply_calibration(target_ms, solved.apply_tables, log_dir=logs), stages)
    imaging = ImagingParams(imsize=settings.imsize, cell_arcsec=settings.cell_arcsec)
    image = _timed(
        "image", lambda: create_image(target_ms, work / "images", log_dir=logs, params=imaging), stages
    )
    sources = read_catalog(target.sources_csv)
    _timed("photometry", lambda: measure_file(image.image, sources), stages)

    n_ant = len(calibrator.antenna_names)
    by_stage = {s.stage: s.seconds for s in stages}
    return ScaleResult(
        n_antennas=n_ant,
        n_baselines=n_ant * (n_ant - 1) // 2,
        n_channels_total=settings.n_channels * N_SUBBANDS,
        n_integrations=settings.n_integrations,
        visibilities=n_ant
        * (n_ant + 1)
        // 2
        * settings.n_integrations
        * settings.n_channels
        * N_SUBBANDS
        * 2,
        stages=stages,
        per_observation_s=sum(by_stage[s] for s in PER_OBSERVATION),
        peak_rss_bytes=max(s.peak_rss_bytes for s in stages),
        memory_source=PeakSampler().source,
        ms_bytes=_dir_bytes(target_ms),
    )


def _run_child(settings: ScaleSettings) -> ScaleResult:
    """Run one scale in a fresh, lower-priority Python process and read its JSON result."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.science", "--one-scale", settings.model_dump_json()],
        stdout=subprocess.PIPE,
        check=False,
        preexec_fn=lambda: os.nice(10),
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark at {settings.n_antennas} antennas failed (exit {done.returncode})")
    return ScaleResult.model_validate_json(done.stdout.decode().strip().splitlines()[-1])


# Report ---------------------------------------------------------------------------------------


def scaling_exponents(scales: list[ScaleResult]) -> dict[str, float]:
    """Exponent p of time ∝ baselines^p between the smallest and largest sizes, per stage and in total."""
    if len(scales) < 2:
        return {}
    small, large = scales[0], scales[-1]
    ratio = math.log(large.n_baselines / small.n_baselines)
    times_small = {s.stage: s.seconds for s in small.stages} | {"per observation": small.per_observation_s}
    times_large = {s.stage: s.seconds for s in large.stages} | {"per observation": large.per_observation_s}
    return {k: math.log(times_large[k] / times_small[k]) / ratio for k in times_small if times_small[k] > 0}


def build_report(scales: list[ScaleResult]) -> BenchReport:
    """Summarise the scales against the observation's duration."""
    largest = scales[-1]
    return BenchReport(
        scales=scales,
        observation_s=TILE_DURATION_S,
        scaling_exponents=scaling_exponents(scales),
        largest_per_observation_s=largest.per_observation_s,
        largest_real_time_factor=largest.per_observation_s / TILE_DURATION_S,
        cpu_count=os.cpu_count() or 1,
    )


def print_report(report: BenchReport, console: Console) -> None:
    """Readable tables of the report."""
    table = Table(title="science stages: seconds (peak RSS of the process tree, MB)")
    table.add_column("ants", justify="right")
    table.add_column("baselines", justify="right")
    table.add_column("chan x int", justify="right")
    for stage in STAGES:
        table.add_column(stage, justify="right")
    table.add_column("per obs", justify="right")
    table.add_column("MS MB", justify="right")
    for scale in report.scales:
        cells = {s.stage: f"{s.seconds:.2f} ({s.peak_rss_bytes / 1e6:.0f})" for s in scale.stages}
        table.add_row(
            str(scale.n_antennas),
            str(scale.n_baselines),
            f"{scale.n_channels_total}x{scale.n_integrations}",
            *(cells[s] for s in STAGES),
            f"{scale.per_observation_s:.1f}",
            f"{scale.ms_bytes / 1e6:.0f}",
        )
    console.print(table)
    if report.scaling_exponents:
        exps = ", ".join(f"{k} {v:.2f}" for k, v in report.scaling_exponents.items())
        console.print(f"time ∝ baselines^p between the smallest and largest size: {exps}")
    largest = report.scales[-1]
    verdict = "keeps up" if report.largest_real_time_factor < 1 else "does NOT keep up"
    console.print(
        f"{largest.n_antennas} antennas: {report.largest_per_observation_s:.1f} s per observation "
        f"(convert+apply+image+photometry) vs {report.observation_s:.1f} s observed = "
        f"{report.largest_real_time_factor:.2f}x real time on {report.cpu_count} cores: {verdict}; "
        f"peak memory {largest.peak_rss_bytes / 1e9:.2f} GB ({largest.memory_source})"
    )


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench.science", description=__doc__.splitlines()[0])
    parser.add_argument("--antennas", default="24,48,96", help="comma-separated array sizes")
    parser.add_argument("--channels", type=int, default=48, help="channels per subband")
    parser.add_argument("--integrations", type=int, default=24)
    # 4096 × 3″ (3.4°) covers the primary beam to its half-power radius (1.35°), as the tutorial default does.
    parser.add_argument("--imsize", type=int, default=4096)
    parser.add_argument("--cell-arcsec", type=float, default=3.0)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="12, 24 and 48 antennas, 8 channels, 10 integrations, 1024 × 5″ images",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directories")
    parser.add_argument("--one-scale", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    from absurd.logging import configure_logging

    configure_logging("WARNING", json=True)
    if args.one_scale:
        result = run_scale(ScaleSettings.model_validate_json(args.one_scale))
        print(result.model_dump_json())  # the parent reads this line
        return

    if args.quick:
        antennas, channels, integrations = [12, 24, 48], 8, 10
        args.imsize, args.cell_arcsec = 1024, 5.0
    else:
        antennas, channels, integrations = (
            [int(a) for a in args.antennas.split(",")],
            args.channels,
            args.integrations,
        )
    # Wide enough for the table when the output is a file or a pipe.
    console = Console(stderr=args.json, width=None if sys.stdout.isatty() else 140)
    scales = []
    for n in sorted(antennas):
        workdir = Path(tempfile.mkdtemp(prefix=f"bench-science-{n}-"))
        console.print(
            f"{n} antennas, {channels} channels/subband, {integrations} integrations in {workdir} ..."
        )
        try:
            scales.append(
                _run_child(
                    ScaleSettings(
                        n_antennas=n,
                        n_channels=channels,
                        n_integrations=integrations,
                        imsize=args.imsize,
                        cell_arcsec=args.cell_arcsec,
                        workdir=workdir,
                    )
                )
            )
        finally:
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
    report = build_report(scales)
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        print_report(report, console)


if __name__ == "__main__":
    main()
