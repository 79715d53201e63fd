"""The night demo: a simulated night through the whole pipeline, with no operator.

1. Simulate a calibrator transit, then N transits of one target field (one sidereal day apart, so the
   field is at the same place in the beam each time), with one variable source and constant ones.
2. Drop the subband files into an incoming directory in time order, as the correlator would.
3. The streaming converter groups them and spawns ``convert-uvh5``; each new MS emits ``new_ms``; the
   scheduler fires the shipped ``stream-imaging`` schedule for it (solve → apply → image → photometry
   → light curves); a worker pool runs the tasks.
4. A nightly mosaic of the target images and a last light-curve update close the night.

The simulated gains are the same on every day, so the one solve on the calibrator transit stays valid
for the whole run: the demo widens the schedule's validity window to cover it (12 h in production).
"""

from __future__ import annotations

import csv
import dataclasses
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from absurd.client import Client
from absurd.database import redact
from absurd.schedules.loader import load_paths
from absurd.schedules.sync import sync
from absurd.states import TASK_STATES
from contimg.demo import DemoRun, prepare
from contimg.runtime import WorkerProcesses
from contimg.store.lightcurves import load_photometry, source_lightcurve, stored_variability
from contimg.tasks import queues
from contimg.web.urls import demo_hint
from science.constants import CHANNELS_PER_SUBBAND, INTEGRATIONS_PER_TILE, N_STATIONS, SIDEREAL_DAY_S
from science.lightcurve_plot import plot_lightcurve
from science.simulate import (
    SimulatedObservation,
    calibrator_transit,
    epoch_series,
    simulate_observation,
    target_field,
)

REPO = Path(__file__).resolve().parents[1]
SCHEDULES = REPO / "schedules"
VARIABLE = "VAR-1"
# name, east offset (deg), north offset (deg), flux at 1.4 GHz (Jy), spectral index, stable reference?
FIELD: tuple[tuple[str, float, float, float, float, bool], ...] = (
    ("REF-A", 0.25, 0.15, 0.40, -0.7, True),
    ("REF-B", -0.30, 0.20, 0.25, -0.7, True),
    ("REF-C", 0.05, -0.35, 0.20, -0.6, True),
    ("CONST-1", 0.10, -0.25, 0.12, -0.6, False),
    ("CONST-2", -0.20, -0.15, 0.08, -0.8, False),
    ("CONST-3", 0.35, -0.10, 0.06, -0.7, False),
    (VARIABLE, -0.05, 0.30, 0.15, -0.7, False),
)
LIGHTCURVE = (1.0, 1.6, 0.6, 1.35, 0.75, 1.5, 0.7, 1.25)


class NightSettings(BaseModel):
    """What the demo simulates and how it runs; ``contimg demo`` options fill it."""

    model_config = ConfigDict(extra="forbid")
    epochs: int = Field(4, ge=3, le=len(LIGHTCURVE), description="target observations (epochs)")
    antennas: int = Field(24, ge=6, le=N_STATIONS)
    channels: int = Field(8, ge=1, le=CHANNELS_PER_SUBBAND, description="channels per subband")
    integrations: int = Field(10, ge=2, le=INTEGRATIONS_PER_TILE)
    dec_deg: float = Field(40.0, ge=-30, le=90, description="target field declination")
    seed: int = 7
    concurrency: int = Field(2, ge=1, description="tasks at once in the worker pool")
    subband_timeout_s: float = Field(60.0, gt=0)
    timeout_s: float = Field(1800.0, gt=0, description="give up if the night is not done by then")


class Night(BaseModel):
    """The simulated observations, in the order the correlator would write them."""

    observations: list[SimulatedObservation]
    catalogue: Path
    truth: dict[str, list[float]]  # source → apparent flux per target epoch (Jy)
    target_start: datetime
    target_end: datetime


def simulate_night(settings: NightSettings, sim_dir: Path, console: Console) -> Night:
    """Write the calibrator transit and the target epochs, and the monitoring catalogue."""
    shape: dict[str, Any] = {
        "n_antennas": settings.antennas,
        "n_channels": settings.channels,
        "n_integrations": settings.integrations,
        "gain_seed": settings.seed,
    }
    near = datetime(2026, 3, 20, 2, 0, tzinfo=UTC)
    with console.status("simulating the calibrator transit (3C286)"):
        calibrator = simulate_observation(
            calibrator_transit(near, seed=settings.seed, **shape), sim_dir / "calibrator"
        )
    field = [(name, east, north, flux, alpha) for name, east, north, flux, alpha, _ in FIELD]
    base = target_field(
        calibrator.start_time + timedelta(hours=1),
        settings.dec_deg,
        sources=field,
        seed=settings.seed,
        **shape,
    )
    configs = epoch_series(base, VARIABLE, LIGHTCURVE[: settings.epochs], epoch_step_s=SIDEREAL_DAY_S)
    targets = []
    for i, config in enumerate(configs):
        with console.status(f"simulating target epoch {i + 1} of {len(configs)}"):
            targets.append(simulate_observation(config, sim_dir / f"target_{i:02d}"))
    catalogue = sim_dir / "monitoring_sources.csv"
    references = {name for name, *_, ref in FIELD if ref}
    with catalogue.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["name", "ra_deg", "dec_deg", "priority", "reference"])
        for source in targets[0].sources:
            writer.writerow(
                [
                    source.name,
                    f"{source.ra_deg:.6f}",
                    f"{source.dec_deg:.6f}",
                    1,
                    str(source.name in references).lower(),
                ]
            )
    truth = {
        s.name: [next(t for t in obs.sources if t.name == s.name).apparent_flux_jy for obs in targets]
        for s in targets[0].sources
    }
    end = targets[-1].start_time + timedelta(seconds=settings.integrations * 13.0)
    return Night(
        observations=[calibrator, *targets],
        catalogue=catalogue,
        truth=truth,
        target_start=targets[0].start_time - timedelta(minutes=10),
        target_end=end + timedelta(minutes=10),
    )


def install_schedule(dsn: str, run_dir: Path, night: Night, settings: NightSettings) -> None:
    """Load the shipped streaming schedule, point it at this run's directories, and sync it."""
    from contimg.tasks.registry import registry

    loaded, problems = load_paths([SCHEDULES / "streaming.yaml"], registry)
    if problems:
        raise RuntimeError("the shipped streaming schedule is invalid: " + "; ".join(map(str, problems)))
    # One solve serves the whole simulated night, whose epochs are sidereal days apart.
    span_h = settings.epochs * SIDEREAL_DAY_S / 3600 + 12
    longer = {"solve-calibration": {"validity_hours": span_h}, "apply-calibration": {"max_age_hours": span_h}}
    adjusted = []
    for item in loaded:
        params = {
            **item.schedule.workflow.params,
            "caltable_dir": str(run_dir / "caltables"),
            "image_dir": str(run_dir / "images"),
            "catalogue": str(night.catalogue),
        }
        tasks = [
            step.model_copy(update={"params": {**step.params, **longer.get(step.type, {})}})
            for step in item.schedule.workflow.tasks
        ]
        workflow = item.schedule.workflow.model_copy(update={"params": params, "tasks": tasks})
        schedule = item.schedule.model_copy(update={"workflow": workflow})
        adjusted.append(dataclasses.replace(item, schedule=schedule))
    with psycopg.connect(dsn, autocommit=True) as conn:
        sync(conn, adjusted)


def start_daemons(
    run: DemoRun, settings: NightSettings, worker_args: Sequence[str] = (), scheduler: bool = True
) -> tuple[WorkerProcesses, list[subprocess.Popen[bytes]]]:
    """The worker pool, then the scheduler (unless told not to) and the streaming converter, as separate
    processes; the list holds the last two, in that order."""
    logs = run.run_dir / "logs"
    pool = WorkerProcesses(run.dsn, "contimg.tasks.registry:registry", logs)
    pool.start(list(queues.ALL), settings.concurrency, "worker", worker_args)
    commands: list[tuple[str, list[str]]] = []
    if scheduler:
        commands.append(("scheduler", [sys.executable, "-m", "absurd", "scheduler", "--dsn", run.dsn]))
    commands.append(
        (
            "stream",
            [
                *(sys.executable, "-m", "contimg.cli", "stream", "run"),
                *("--incoming", str(run.run_dir / "incoming"), "--output-dir", str(run.run_dir / "ms")),
                *("--dsn", run.dsn, "--subband-timeout-s", str(settings.subband_timeout_s)),
            ],
        )
    )
    env = {**os.environ, "ABSURD_LOG_LEVEL": "INFO"}
    daemons = []
    for name, args in commands:
        log = (logs / f"{name}.log").open("ab")
        daemons.append(subprocess.Popen(args, stdout=log, stderr=log, env=env))
    return pool, daemons


def deliver(observation: SimulatedObservation, incoming: Path) -> None:
    """Copy one observation's subband files in, like the correlator: each written, then renamed."""
    for path in observation.subband_paths:
        partial = incoming / f".{path.name}.part"
        shutil.copyfile(path, partial)
        partial.rename(incoming / path.name)


def progress(client: Client, started: float, delivered: int, total: int) -> Table:
    """The live display: files delivered, groups converted, workflows, and tasks by state."""
    groups = client.conn.execute(
        "SELECT count(*) FILTER (WHERE status = 'converted'), count(*) FROM products.stream_groups"
    ).fetchone()
    flows = client.conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE state <> 'running') FROM absurd.workflow_status"
    ).fetchone()
    t = Table(
        title=f"night in progress — {time.monotonic() - started:5.0f} s — observations delivered "
        f"{delivered}/{total}, converted {groups[0] if groups else 0}, "
        f"workflows {flows[1] if flows else 0}/{flows[0] if flows else 0} done",
        header_style="bold",
    )
    t.add_column("task")
    for state in TASK_STATES:
        t.add_column(state, justify="right")
    rows = client.conn.execute(
        "SELECT name, state, count(*) FROM absurd.tasks GROUP BY name, state"
    ).fetchall()
    table: dict[str, dict[str, int]] = {}
    for name, state, n in rows:
        table.setdefault(name, {})[state] = n
    for name in sorted(table):
        t.add_row(name, *(str(table[name].get(s, 0)) for s in TASK_STATES))
    return t


def night_finished(client: Client, n_observations: int) -> bool:
    """Every observation converted (or failed), a workflow fired for each MS, and nothing left to run."""
    row = client.conn.execute(
        """SELECT
               (SELECT count(*) FROM products.stream_groups
                WHERE status IN ('converted', 'failed', 'skipped')),
               (SELECT count(*) FROM products.stream_groups WHERE status = 'converted'),
               (SELECT count(*) FROM absurd.workflows),
               (SELECT count(*) FROM absurd.tasks
                WHERE state IN ('waiting', 'pending', 'running', 'sleeping'))"""
    ).fetchone()
    assert row is not None
    settled, converted, workflows, open_tasks = row
    return bool(settled >= n_observations and workflows >= converted and open_tasks == 0)


def run_night_demo(base_dir: Path, settings: NightSettings, dsn: str | None, console: Console) -> int:
    """Run the whole night; print the summary. Returns 0 when the science checks pass."""
    started = time.monotonic()
    run = prepare(base_dir, dsn)
    for sub in ("sim", "incoming", "ms", "caltables", "images", "mosaics", "lightcurves", "logs"):
        (run.run_dir / sub).mkdir()
    console.print(f"[bold]run directory[/bold] {run.run_dir}")
    console.print(f"[bold]database[/bold] {redact(run.dsn)} (kept: inspect it with --dsn)")
    night = simulate_night(settings, run.run_dir / "sim", console)
    install_schedule(run.dsn, run.run_dir, night, settings)
    pool, daemons = start_daemons(run, settings)
    client = Client(run.dsn)
    ok = False
    try:
        delivered = 0
        last_delivery = 0.0
        with Live(
            progress(client, started, 0, len(night.observations)), console=console, refresh_per_second=2
        ) as live:
            deadline = time.monotonic() + settings.timeout_s
            while time.monotonic() < deadline:
                # One observation every few seconds: files arrive in time order, not all at once.
                if delivered < len(night.observations) and time.monotonic() - last_delivery > 3:
                    deliver(night.observations[delivered], run.run_dir / "incoming")
                    delivered += 1
                    last_delivery = time.monotonic()
                live.update(progress(client, started, delivered, len(night.observations)))
                if delivered == len(night.observations) and night_finished(client, len(night.observations)):
                    ok = True
                    break
                if pool.alive() == 0 or any(d.poll() is not None for d in daemons):
                    console.print("[red]a daemon stopped; see the logs[/red]")
                    break
                time.sleep(0.5)
            if ok:
                ok = close_the_night(client, run, night, settings, live, started)
    finally:
        for d in daemons:
            d.terminate()
        pool.stop()
        for d in daemons:
            try:
                d.wait(60)
            except subprocess.TimeoutExpired:
                d.kill()
                d.wait()
    if not ok:
        console.print(f"[red]the night did not finish; logs are in {run.run_dir / 'logs'}[/red]")
        client.close()
        _print_dashboard(console, run)
        return 1
    code = summarise(client, run, night, console, time.monotonic() - started)
    client.close()
    _print_dashboard(console, run)
    return code


def _print_dashboard(console: Console, run: DemoRun) -> None:
    for line in demo_hint(redact(run.dsn), VARIABLE):
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def close_the_night(
    client: Client, run: DemoRun, night: Night, settings: NightSettings, live: Live, started: float
) -> bool:
    """The nightly mosaic of the target images and a last light-curve update, then wait for both."""
    mosaic = client.spawn(
        "create-mosaic",
        {
            "name": "demo-night",
            "start": night.target_start.isoformat(),
            "end": night.target_end.isoformat(),
            "output_dir": str(run.run_dir / "mosaics"),
        },
        queue=queues.IMAGING,
    )
    update = client.spawn("update-lightcurves", {}, queue=queues.PHOTOMETRY)
    deadline = time.monotonic() + settings.timeout_s
    while time.monotonic() < deadline:
        live.update(progress(client, started, len(night.observations), len(night.observations)))
        states = {client.get_task(t.task_id)["state"] for t in (mosaic, update)}
        if states <= {"completed", "failed", "cancelled"}:
            return True
        time.sleep(0.5)
    return False


def summarise(client: Client, run: DemoRun, night: Night, console: Console, wall_s: float) -> int:
    """Print durations, injected against measured fluxes, the variability verdicts and the outputs."""
    conn = client.conn
    durations = Table(title="tasks and their durations", header_style="bold")
    for col in ("task", "completed", "failed", "mean s", "max s"):
        durations.add_column(col, justify="left" if col == "task" else "right")
    for name, done, failed, mean, longest in conn.execute(
        """SELECT t.name, count(*) FILTER (WHERE t.state = 'completed'),
                  count(*) FILTER (WHERE t.state = 'failed'),
                  avg(extract(epoch FROM r.finished_at - r.started_at)) FILTER (WHERE r.state = 'completed'),
                  max(extract(epoch FROM r.finished_at - r.started_at)) FILTER (WHERE r.state = 'completed')
           FROM absurd.tasks t LEFT JOIN absurd.runs r ON r.task_id = t.id AND r.attempt = t.attempts
           GROUP BY t.name ORDER BY min(t.id)"""
    ).fetchall():
        durations.add_row(
            name, str(done), str(failed), f"{float(mean or 0):.1f}", f"{float(longest or 0):.1f}"
        )
    console.print(durations)

    # The light curves' own query: no mosaics, and no image of an MS a late subband superseded.
    measured = [m for m in load_photometry(conn, list(night.truth)) if not m.flags and m.flux_jy is not None]
    fluxes = Table(
        title="injected against measured flux (mJy, apparent, per target epoch)", header_style="bold"
    )
    fluxes.add_column("source")
    for i in range(len(night.truth[VARIABLE])):
        fluxes.add_column(f"epoch {i + 1}", justify="right")
    fluxes.add_column("worst |Δ|/σ", justify="right")
    for source, injected in night.truth.items():
        rows = sorted((m for m in measured if m.name == source), key=lambda m: m.mjd or 0.0)
        cells, worst = [], 0.0
        for inj, m in zip(injected, rows, strict=False):
            assert m.flux_jy is not None
            worst = max(worst, abs(m.flux_jy - inj) / (m.flux_err_jy or float("inf")))
            cells.append(f"{inj * 1e3:.0f}→{m.flux_jy * 1e3:.0f}")
        cells += ["-"] * (len(injected) - len(cells))
        fluxes.add_row(source, *cells, f"{worst:.1f}")
    console.print(fluxes)

    verdicts = Table(title="variability (η > 2 and V > 0.1 flags a variable)", header_style="bold")
    for col in ("source", "epochs", "η", "V", "χ²_ν", "flagged", "expected", ""):
        verdicts.add_column(col)
    passed = True
    plots = []
    for source in night.truth:
        stored = stored_variability(conn, source)
        expected = source == VARIABLE
        flagged = bool(stored and stored.is_variable)
        good = flagged == expected
        passed &= good
        verdicts.add_row(
            source,
            str(stored.n_epochs if stored else 0),
            f"{stored.eta:.2f}" if stored and stored.eta is not None else "-",
            f"{stored.v:.3f}" if stored and stored.v is not None else "-",
            f"{stored.chi2_nu:.2f}" if stored and stored.chi2_nu is not None else "-",
            "yes" if flagged else "no",
            "yes" if expected else "no",
            Text("ok", style="green") if good else Text("WRONG", style="bold red"),
        )
        curve = source_lightcurve(conn, source)
        if curve.epochs:
            plots.append(
                plot_lightcurve(
                    curve.normalised(),
                    run.run_dir / "lightcurves" / f"{source}.png",
                    stored.to_metrics() if stored else None,
                    "utc",
                )
            )
    console.print(verdicts)

    failed = conn.execute("SELECT count(*) FROM absurd.tasks WHERE state = 'failed'").fetchone()
    previews = [
        r[0] for r in conn.execute("SELECT preview_path FROM products.images ORDER BY mid_mjd").fetchall()
    ]
    mosaic = conn.execute("SELECT path FROM products.mosaics ORDER BY id DESC LIMIT 1").fetchone()
    outputs = Table.grid(padding=(0, 2))
    outputs.add_row("light curves (PNG)", str(run.run_dir / "lightcurves"))
    outputs.add_row("image previews", ", ".join(Path(p).name for p in previews if p) or "-")
    outputs.add_row("", str(run.run_dir / "images"))
    outputs.add_row("mosaic", mosaic[0] if mosaic else "-")
    outputs.add_row("logs", str(run.run_dir / "logs"))
    console.print(Group(Text("outputs", style="bold"), outputs))
    n_failed = int(failed[0]) if failed else 0
    # The simulated sky holds no source outside the catalogue: a new-source alert would be false.
    new = conn.execute("SELECT count(*) FROM products.alerts WHERE kind = 'new_source'").fetchone()
    n_new = int(new[0]) if new else 0
    passed &= n_failed == 0 and n_new == 0 and mosaic is not None and len(plots) == len(night.truth)
    verdict = "[green]PASS[/green]" if passed else "[red]FAIL[/red]"
    console.print(
        f"{verdict}: {VARIABLE} flagged, constant sources not, {n_new} new-source alert(s), "
        f"{n_failed} failed task(s); wall time {wall_s:.0f} s"
    )
    return 0 if passed else 1
