"""The dashboard tests' sky and queue, made once per session by running the pipeline's own stages.

The first of four daily epochs of one field is observed: simulated correlator files of a calibrator
transit and of the field (16 antennas, 4 channels per subband, 6 integrations) go through
``convert-uvh5``, ``solve-calibration``, ``apply-calibration`` and ``create-image`` (WSClean) on a real
worker. The other three epochs are restored FITS images with the same sources, beam and correlated noise
(``tests/science/synthetic_images.py``), recorded in ``products.images``, so that the light curves have
epochs without three more simulations. The worker then runs ``run-photometry`` on each, ``update-lightcurves``
on all and ``create-mosaic`` on the drawn three, so the photometry, the variability metrics and the alerts
the pages show are the pipeline's.
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from absurd.client import Client
from absurd.options import GateConfig
from absurd.schedules.loader import load_paths
from absurd.schedules.sync import sync
from absurd.workflow_spec import Dependency, TaskSpec, WorkflowSpec
from contimg.store import browse, products
from contimg.tasks import queues
from contimg.tasks.params import ConvertResult, ImageOutcome
from contimg.tasks.registry import registry
from science.fits_image import read_image
from science.imaging import BeamShape, ImageResult, ImagingParams
from science.simulate import GainModel, ObservationConfig, calibrator_transit, simulate_observation
from science.sky_model import SkySource
from tests.science.synthetic_images import ImageSpec, Source, make_image, offset_position
from tests.support.processes import wait_until

REPO = Path(__file__).resolve().parents[2]
N_EPOCHS = 4
VARIABLE = "VAR-1"
VARIABLE_FLUX = np.array([0.250, 0.400, 0.150, 0.350])
# name, pixel offset east (x) and north (y) of the centre, flux (Jy), reference?
STEADY = (
    ("REF-A", -60.0, 40.0, 0.600, True),
    ("REF-B", 50.0, 55.0, 0.450, True),
    ("REF-C", 40.0, -60.0, 0.750, True),
    ("CONST-1", -45.0, -50.0, 0.300, False),
)
VARIABLE_AT = (15.0, -20.0)
# The drawn epochs' geometry; the centre is replaced by the observed field's.
SPEC = ImageSpec(ra0_deg=0.0, dec0_deg=0.0, npix=256, noise_jy=1e-3)
# The smallest observation that still images to a few per cent: the same stations and gains for the
# calibrator and the field, which is observed an hour after the calibrator transit, without gain drift.
OBSERVATION: dict[str, Any] = {
    "n_antennas": 16,
    "n_channels": 4,
    "n_integrations": 6,
    "gain_seed": 11,
    "gains": GainModel(amplitude_drift_rms_per_hour=0.0, phase_drift_rms_deg_per_hour=0.0),
}
NEAR = datetime(2024, 11, 22, 6, 0, tzinfo=UTC)


@dataclass(frozen=True)
class SeededSky:
    """What the seed wrote: image ids by epoch (the first observed), and the true flux of each source at each
    epoch (at the first, its apparent flux through the primary beam, from the simulator)."""

    image_ids: list[int]
    image_paths: list[Path]
    mjds: list[float]
    truth: dict[str, list[float]]
    positions: dict[str, tuple[float, float]]
    catalogue: Path
    calibrator_ms: Path
    observed_tasks: dict[str, int]


def _truth() -> dict[str, list[float]]:
    truth = {name: [flux] * N_EPOCHS for name, _, _, flux, _ in STEADY}
    truth[VARIABLE] = [float(f) for f in VARIABLE_FLUX]
    return truth


def _positions(spec: ImageSpec) -> dict[str, tuple[float, float]]:
    positions = {name: offset_position(spec, dx, dy) for name, dx, dy, _, _ in STEADY}
    positions[VARIABLE] = offset_position(spec, *VARIABLE_AT)
    return positions


def _write_catalogue(path: Path, positions: dict[str, tuple[float, float]]) -> Path:
    references = {name for name, *_, ref in STEADY if ref}
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["name", "ra_deg", "dec_deg", "priority", "reference"])
        for name, (ra, dec) in positions.items():
            writer.writerow(
                [name, f"{ra:.8f}", f"{dec:.8f}", 1 if name == VARIABLE else 2, name in references]
            )
    return path


def _record(conn: psycopg.Connection, path: Path, mjd: float, spec: ImageSpec) -> int:
    image = read_image(path)
    data = image.data
    result = ImageResult(
        ms_path=path.with_suffix(".ms"),
        imager="wsclean",
        image=path,
        residual=path,
        psf=path.with_name(path.name.replace(".image.fits", ".psf.fits")),
        pb=None,
        pbcor=None,
        preview=path.with_suffix(".png"),
        noise_jy=spec.noise_jy,
        beam=BeamShape(bmaj_arcsec=spec.bmaj_arcsec, bmin_arcsec=spec.bmin_arcsec, bpa_deg=spec.bpa_deg),
        peak_jy=float(np.nanmax(data)),
        center_ra_deg=spec.ra0_deg,
        center_dec_deg=spec.dec0_deg,
        freq_hz=spec.freq_hz,
        mid_mjd=mjd,
        params=ImagingParams(),
        log_path=path.with_suffix(".log"),
    )
    return products.record_image(conn, result)


@dataclass(frozen=True)
class _Observed:
    image: ImageResult
    image_id: int
    truth: dict[str, float]
    calibrator_ms: Path
    tasks: dict[str, int]


def _observe(
    client: Client, work: Path, config: ObservationConfig, calibrator: ObservationConfig
) -> _Observed:
    """Simulate the calibrator transit and the field, and take them through the pipeline's tasks."""
    observations = {
        "calibrator": simulate_observation(calibrator, work / "incoming" / "calibrator"),
        "field": simulate_observation(config, work / "incoming" / "field"),
    }
    tasks: dict[str, int] = {}
    for kind, observation in observations.items():
        tasks[f"convert-{kind}"] = client.spawn(
            "convert-uvh5",
            {"input_dir": str(work / "incoming" / kind), "group_time": observation.start_time.isoformat(),
             "output_dir": str(work / "ms")},
        ).task_id  # fmt: skip
    ms = {
        kind: ConvertResult.model_validate(client.wait_result(tasks[f"convert-{kind}"], 300)).record.ms_path
        for kind in observations
    }
    # The apply comes first and waits for the solve's event, as in streaming when a field arrives before its
    # calibrator is solved; the task page test reads both of its runs. Spawned together, the solve could end
    # before the apply looked (a busy machine), and the apply would never wait.
    tasks["apply"] = client.spawn("apply-calibration", {"ms_path": str(ms["field"])}).task_id
    wait_until(
        lambda: client.get_task(tasks["apply"])["state"] == "sleeping", timeout=300, what="the apply to wait"
    )
    tasks["solve"] = client.spawn(
        "solve-calibration", {"ms_path": str(ms["calibrator"]), "caltable_dir": str(work / "caltables")}
    ).task_id
    client.wait_result(tasks["solve"], 300)
    client.wait_result(tasks["apply"], 300)
    tasks["image"] = client.spawn(
        "create-image",
        {"ms_path": str(ms["field"]), "output_dir": str(work / "images"), "imaging": {"fov_deg": 0.25}},
    ).task_id
    image = ImageOutcome.model_validate(client.wait_result(tasks["image"], 600)).image
    image_id = browse.image_id_of(client.conn, str(image.image))
    assert image_id is not None, f"create-image did not record {image.image}"
    truth = {s.name: s.apparent_flux_jy for s in observations["field"].sources}
    return _Observed(image, image_id, truth, ms["calibrator"], tasks)


def seed_sky(dsn: str, work: Path) -> SeededSky:
    """Observe the first epoch and draw the others, then run the photometry, light-curve and mosaic tasks
    (a worker must serve the convert, calibrate, imaging and photometry queues)."""
    calibrator = calibrator_transit(NEAR, seed=7, **OBSERVATION)
    field = ObservationConfig(
        start_time=calibrator.start_time + timedelta(hours=1),
        dec_deg=calibrator.dec_deg,
        seed=8,
        **OBSERVATION,
    )
    ra0, dec0 = field.pointing_center()
    spec = dataclasses.replace(SPEC, ra0_deg=ra0, dec0_deg=dec0)
    truth, positions = _truth(), _positions(spec)
    catalogue = _write_catalogue(work / "monitor.csv", positions)
    sources = [
        SkySource(name=name, ra_deg=ra, dec_deg=dec, flux_jy=truth[name][0])
        for name, (ra, dec) in positions.items()
    ]
    with Client(dsn, registry=registry) as client:
        observed = _observe(client, work, field.model_copy(update={"sources": sources}), calibrator)
        for name, flux in observed.truth.items():
            truth[name][0] = flux
        first_mjd = observed.image.mid_mjd
        ids, paths, mjds = [observed.image_id], [observed.image.image], [first_mjd]
        for epoch in range(1, N_EPOCHS):
            mjd = first_mjd + epoch
            drawn = [Source(name, *positions[name], truth[name][epoch]) for name in positions]
            epoch_spec = dataclasses.replace(spec, mjd=mjd)
            path = make_image(work / f"epoch{epoch}.image.fits", drawn, epoch_spec, seed=100 + epoch)
            ids.append(_record(client.conn, path, mjd, epoch_spec))
            paths.append(path)
            mjds.append(mjd)
        spawned = [
            client.spawn("run-photometry", {"image_path": str(p), "catalogue_path": str(catalogue)}).task_id
            for p in paths
        ]
        # The night's mosaic of the drawn images, by the pipeline's own task (on the imaging queue).
        mosaic = client.spawn(
            "create-mosaic",
            {"name": "field", "start": _iso(first_mjd + 0.5), "end": _iso(first_mjd + N_EPOCHS),
             "output_dir": str(work / "mosaics"), "method": "weighted"},
        ).task_id  # fmt: skip
        for task_id in spawned:
            client.wait_result(task_id, 300)
        client.wait_result(client.spawn("update-lightcurves", {}, queue=queues.PHOTOMETRY).task_id, 120)
        client.wait_result(mosaic, 300)
    return SeededSky(ids, paths, mjds, truth, positions, catalogue, observed.calibrator_ms, observed.tasks)


def _iso(mjd: float) -> str:
    return products.mjd_to_datetime(mjd).isoformat()


def seed_operations(dsn: str) -> None:
    """Schedules (the shipped ones), an open breaker and a finished two-step workflow, for the pages."""
    loaded, problems = load_paths([REPO / "schedules" / "maintenance.yaml"], registry)
    assert not problems, problems
    with psycopg.connect(dsn, autocommit=True) as conn:
        sync(conn, loaded)
    with Client(dsn, registry=registry) as client:
        client.configure_gate(
            GateConfig(
                key="casa",
                breaker_enabled=True,
                failure_threshold=3,
                base_cooldown_s=3600,
                max_cooldown_s=3600,
            )
        )
        client.set_breaker("casa", "open", "seeded for the dashboard tests")
        spec = WorkflowSpec(
            name="echo-pair",
            tasks=[
                TaskSpec(name="first", type="echo", params={"step": 1}),
                TaskSpec(
                    name="second", type="echo", params={"step": 2}, depends_on=[Dependency(task="first")]
                ),
            ],
        )
        client.submit_workflow(spec)
