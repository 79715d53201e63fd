"""Fixtures for the light-curve tests: synthetic photometry in a fresh database, and a worker.

Six sources over eight daily epochs: three stable references, two constant sources and one that
varies by ±40 %. Every flux carries a per-epoch scale error shared by all sources (a calibration
systematic), which normalisation on the references must take out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
import pytest

from absurd.builtin_tasks import builtin
from absurd.client import Client
from absurd.maintenance import ReaperSettings
from absurd.worker import Worker, WorkerSettings
from contimg.store import products
from contimg.tasks import queues
from contimg.tasks.lightcurves import registry
from science.catalogs import MonitoringSource
from science.photometry import PhotometryResult
from tests.support.processes import wait_until

N_EPOCHS = 8
FIRST_MJD = 60400.25
NOISE_JY = 1e-3
# The shared calibration error of each epoch: up to ±15 %, far above the 10 % V threshold.
SYSTEMATIC = np.array([1.00, 1.12, 0.90, 1.08, 0.93, 1.15, 0.87, 1.05])
# VAR_1's intrinsic flux, relative to its mean: ±40 %.
VARIATION = np.array([0.0, 0.4, -0.4, 0.2, -0.3, 0.4, -0.4, 0.1])

REFERENCES = {"REF_A": 0.120, "REF_B": 0.090, "REF_C": 0.150}
CONSTANT = {"CONST_1": 0.060, "CONST_2": 0.025}
VARIABLE = {"VAR_1": 0.050}
TRANSIENT = "TRANS_1"
TRANSIENT_FLUX_JY = 0.015


def image_path(epoch: int) -> str:
    """The (never written) image of an epoch."""
    return f"/data/dsa110/images/{products.mjd_to_datetime(epoch_mjd(epoch)):%Y-%m-%dT%H:%M:%S}.img.fits"


def epoch_mjd(epoch: int) -> float:
    """MJD of an epoch."""
    return FIRST_MJD + epoch


def true_flux(name: str) -> np.ndarray:
    """A source's intrinsic flux per epoch (Jy), before the systematic and the noise."""
    if name in REFERENCES:
        return np.full(N_EPOCHS, REFERENCES[name])
    if name in CONSTANT:
        return np.full(N_EPOCHS, CONSTANT[name])
    if name in VARIABLE:
        return VARIABLE[name] * (1.0 + VARIATION)
    # Nothing until the last epoch.
    flux = np.zeros(N_EPOCHS)
    flux[-1] = TRANSIENT_FLUX_JY
    return flux


def synthetic_photometry(
    with_transient: bool = False,
) -> tuple[list[MonitoringSource], list[PhotometryResult]]:
    """The catalogue and the forced measurements of the synthetic sky."""
    rng = np.random.default_rng(110)
    names = [*REFERENCES, *CONSTANT, *VARIABLE, *([TRANSIENT] if with_transient else [])]
    sources = [
        MonitoringSource(
            name=name,
            ra_deg=150.0 + i,
            dec_deg=37.0,
            priority=1 if name in VARIABLE else 2,
            reference=name in REFERENCES,
        )
        for i, name in enumerate(names)
    ]
    results = []
    for source in sources:
        measured = true_flux(source.name) * SYSTEMATIC + rng.normal(0.0, NOISE_JY, N_EPOCHS)
        for epoch in range(N_EPOCHS):
            flux = float(measured[epoch])
            results.append(
                PhotometryResult(
                    name=source.name,
                    ra_deg=source.ra_deg,
                    dec_deg=source.dec_deg,
                    image_path=image_path(epoch),
                    mjd=epoch_mjd(epoch),
                    peak_jy=flux,
                    peak_err_jy=NOISE_JY,
                    flux_jy=flux,
                    flux_err_jy=NOISE_JY,
                    local_rms_jy=NOISE_JY,
                    snr=flux / NOISE_JY,
                )
            )
    return sources, results


@dataclass(frozen=True)
class Sky:
    """The test database with the synthetic photometry, a client, and a runner for update-lightcurves."""

    dsn: str
    client: Client
    sources: list[MonitoringSource]
    results: list[PhotometryResult]

    def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of a query."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()

    def update(self, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run update-lightcurves to the end; returns its task row (asserting it completed)."""
        task_id = self.client.spawn("update-lightcurves", params or {}).task_id
        wait_until(
            lambda: self.client.get_task(task_id)["state"] in ("completed", "failed", "cancelled"),
            timeout=30.0,
            interval=0.05,
            what=f"update-lightcurves task {task_id}",
        )
        return self.client.get_task(task_id)


MakeSky = Callable[..., Sky]


@pytest.fixture
def make_sky(dsn: str) -> Iterator[MakeSky]:
    """Seed the test database with the synthetic photometry and serve its queue with a worker."""
    merged = builtin.merge(registry)
    worker = Worker(
        merged,
        WorkerSettings(
            queues=[queues.PHOTOMETRY],
            poll_s=0.1,
            reaper=ReaperSettings(interval_s=0.5),
            shutdown_grace_s=5.0,
        ),
        dsn,
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    clients: list[Client] = []

    def make(with_transient: bool = False) -> Sky:
        sources, results = synthetic_photometry(with_transient)
        with psycopg.connect(dsn) as conn:
            products.upsert_sources(conn, sources, "/data/dsa110/catalogues/monitor.csv")
            products.record_photometry(conn, results)
        thread.start()
        client = Client(dsn, registry=merged)
        clients.append(client)
        return Sky(dsn, client, sources, results)

    yield make
    worker.stop()
    if thread.is_alive():
        thread.join(timeout=30)
    for client in clients:
        client.close()
