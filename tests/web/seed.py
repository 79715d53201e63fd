"""The dashboard tests' sky and queue, made once per session by running the pipeline's own stages.

Four daily epochs of one field are written as restored FITS images (known sources, beam and correlated
noise: ``tests/science/synthetic_images.py``) and recorded in ``products.images``; a real worker then
runs ``run-photometry`` on each and ``update-lightcurves`` on all, so the photometry, the variability
metrics and the alerts the pages show are the pipeline's. Imaging itself (WSClean or CASA) is left out:
it would cost minutes and the pages only read its products.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg

from absurd.client import Client
from absurd.options import GateConfig
from absurd.schedules.loader import load_paths
from absurd.schedules.sync import sync
from absurd.workflow_spec import Dependency, TaskSpec, WorkflowSpec
from contimg.store import products
from contimg.tasks import queues
from contimg.tasks.registry import registry
from science.fits_image import read_image
from science.imaging import BeamShape, ImageResult, ImagingParams
from tests.science.synthetic_images import ImageSpec, Source, make_image, offset_position

REPO = Path(__file__).resolve().parents[2]
N_EPOCHS = 4
FIRST_MJD = 60640.25
VARIABLE = "VAR-1"
VARIABLE_FLUX = np.array([0.050, 0.080, 0.030, 0.070])
# name, pixel offset east (x) and north (y) of the centre, flux (Jy), reference?
STEADY = (
    ("REF-A", -60.0, 40.0, 0.120, True),
    ("REF-B", 50.0, 55.0, 0.090, True),
    ("REF-C", 40.0, -60.0, 0.150, True),
    ("CONST-1", -45.0, -50.0, 0.060, False),
)
VARIABLE_AT = (15.0, -20.0)
SPEC = ImageSpec(ra0_deg=150.0, dec0_deg=40.0, npix=256, noise_jy=1e-3)


@dataclass(frozen=True)
class SeededSky:
    """What the seed wrote: image ids by epoch, and the true flux of each source at each epoch."""

    image_ids: list[int]
    image_paths: list[Path]
    truth: dict[str, list[float]]
    positions: dict[str, tuple[float, float]]
    catalogue: Path


def _truth() -> tuple[dict[str, list[float]], dict[str, tuple[float, float]]]:
    truth = {name: [flux] * N_EPOCHS for name, _, _, flux, _ in STEADY}
    truth[VARIABLE] = [float(f) for f in VARIABLE_FLUX]
    positions = {name: offset_position(SPEC, dx, dy) for name, dx, dy, _, _ in STEADY}
    positions[VARIABLE] = offset_position(SPEC, *VARIABLE_AT)
    return truth, positions


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


def _record(conn: psycopg.Connection, path: Path, mjd: float) -> int:
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
        noise_jy=SPEC.noise_jy,
        beam=BeamShape(bmaj_arcsec=SPEC.bmaj_arcsec, bmin_arcsec=SPEC.bmin_arcsec, bpa_deg=SPEC.bpa_deg),
        peak_jy=float(np.nanmax(data)),
        center_ra_deg=SPEC.ra0_deg,
        center_dec_deg=SPEC.dec0_deg,
        freq_hz=SPEC.freq_hz,
        mid_mjd=mjd,
        params=ImagingParams(),
        log_path=path.with_suffix(".log"),
    )
    return products.record_image(conn, result)


def seed_sky(dsn: str, work: Path) -> SeededSky:
    """Write and record the images, then run the photometry and light-curve tasks through ``client``'s
    queue (a worker must be serving ``photometry``)."""
    truth, positions = _truth()
    catalogue = _write_catalogue(work / "monitor.csv", positions)
    ids, paths = [], []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for epoch in range(N_EPOCHS):
            mjd = FIRST_MJD + epoch
            sources = [Source(name, *positions[name], truth[name][epoch]) for name in positions]
            spec = ImageSpec(**{**SPEC.__dict__, "mjd": mjd})
            path = make_image(work / f"epoch{epoch}.image.fits", sources, spec, seed=100 + epoch)
            ids.append(_record(conn, path, mjd))
            paths.append(path)
    with Client(dsn, registry=registry) as client:
        spawned = [
            client.spawn("run-photometry", {"image_path": str(p), "catalogue_path": str(catalogue)}).task_id
            for p in paths
        ]
        # The night's mosaic of the four images, by the pipeline's own task (on the imaging queue).
        mosaic = client.spawn(
            "create-mosaic",
            {"name": "field", "start": _iso(FIRST_MJD - 0.5), "end": _iso(FIRST_MJD + N_EPOCHS),
             "output_dir": str(work / "mosaics"), "method": "weighted"},
        ).task_id  # fmt: skip
        for task_id in spawned:
            client.wait_result(task_id, 300)
        client.wait_result(client.spawn("update-lightcurves", {}, queue=queues.PHOTOMETRY).task_id, 120)
        client.wait_result(mosaic, 300)
    return SeededSky(ids, paths, truth, positions, catalogue)


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
