"""The sky tasks on a real queue and database: survey photometry, source finding, new-source alerts,
monitoring lists, and the rapid-rise alert of the light-curve update."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest

from absurd.client import Client
from absurd.worker import Worker, WorkerSettings
from contimg.store import lightcurves, products, sky
from contimg.tasks import queues
from contimg.tasks.registry import registry
from science.catalogs import MonitoringSource
from science.lightcurves import TransientCriteria
from science.photometry import PhotometryResult
from tests.catalogs import survey_tables as tables
from tests.support.processes import wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "science"))
from synthetic_images import ImageSpec, Source, make_image, offset_position

SPEC = ImageSpec(npix=300, noise_jy=1e-3)


@pytest.fixture
def queue(dsn: str) -> Iterator[Client]:
    """A worker serving the photometry queue, and a client."""
    merged = registry  # it includes the built-in tasks
    settings = WorkerSettings(queues=[queues.PHOTOMETRY], poll_s=0.1, shutdown_grace_s=5.0, concurrency=1)
    worker = Worker(merged, settings, dsn)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    with Client(dsn, registry=merged) as client:
        yield client
    worker.stop()
    thread.join(timeout=60)


def _run(client: Client, name: str, params: dict[str, object]) -> dict[str, object]:
    task_id = client.spawn(name, params).task_id
    wait_until(
        lambda: client.get_task(task_id)["state"] in ("completed", "failed"),
        timeout=300,
        what=f"{name} {task_id}",
    )
    task = client.get_task(task_id)
    assert task["state"] == "completed", task.get("last_error")
    return task


def _sky(tmp_path: Path) -> tuple[list[Source], Path]:
    """Twenty survey sources inside the image (3 to 200 mJy) and five outside it, as an NVSS table."""
    rng = np.random.default_rng(21)
    inside = [
        Source(
            f"I{i}", *offset_position(SPEC, *rng.uniform(-130, 130, 2)), float(10 ** rng.uniform(-2.5, -0.7))
        )
        for i in range(20)
    ]
    outside = [Source(f"O{i}", *offset_position(SPEC, 200.0 + 20 * i, -190.0), 0.1) for i in range(5)]
    everything = inside + outside
    table = tables.nvss_vizier_csv(
        tmp_path / "nvss.csv",
        np.array([s.ra_deg for s in everything]),
        np.array([s.dec_deg for s in everything]),
        np.array([s.flux_jy * 1000 for s in everything]),
    )
    return inside, table


def test_measure_survey_stores_exactly_the_sources_in_the_image_above_the_cut(
    queue: Client, dsn: str, tmp_path: Path
) -> None:
    inside, table = _sky(tmp_path)
    image = make_image(tmp_path / "img.fits", inside, SPEC, seed=1)
    task = _run(
        queue,
        "measure-survey",
        {"image_path": str(image), "survey": "nvss", "survey_path": str(table), "min_flux_mjy": 10.0},
    )
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT source_name, flux_jy, fit_flux_jy, task_id, image_path FROM products.photometry"
        ).fetchall()
    # The image's frequency is the survey's (1.4 GHz), so the cut is on the catalogue flux itself
    # (which the VizieR export rounds to 0.1 mJy).
    expected = [s for s in inside if round(s.flux_jy * 1000, 1) >= 10.0]
    assert len(rows) == len(expected) > 0
    assert {r[3] for r in rows} == {task["id"]} and {r[4] for r in rows} == {str(image.resolve())}
    truth = sorted(s.flux_jy for s in expected)
    measured = sorted(r[1] for r in rows)
    assert np.allclose(measured, truth, atol=5e-3)


def test_find_sources_raises_one_new_source_alert_and_keeps_it_open(
    queue: Client, dsn: str, tmp_path: Path
) -> None:
    inside, table = _sky(tmp_path)
    newcomer = Source("NEW", *offset_position(SPEC, 60.0, 70.0), 0.015)
    with psycopg.connect(dsn) as conn:
        listed = [
            MonitoringSource(name=s.name, ra_deg=s.ra_deg, dec_deg=s.dec_deg, priority=1) for s in inside[:3]
        ]
        sky.register_list(conn, "core", tmp_path / "core.csv", listed)
    params = {"surveys": {"nvss": str(table)}}
    first = make_image(tmp_path / "e1.fits", [*inside, newcomer], SPEC, seed=2)
    _run(queue, "find-sources", {"image_path": str(first), **params})
    second = make_image(tmp_path / "e2.fits", [*inside, newcomer], SPEC, seed=3)
    _run(queue, "find-sources", {"image_path": str(second), **params})
    with psycopg.connect(dsn) as conn:
        alerts = conn.execute("SELECT kind, metrics FROM products.alerts").fetchall()
        kinds = conn.execute(
            "SELECT match_kind, count(*) FROM products.detections WHERE image_path = %s GROUP BY 1",
            (str(first.resolve()),),
        ).fetchall()
    # The same new source in the next image adds no second alert while the first is open.
    assert [a[0] for a in alerts] == ["new_source"]
    evidence = alerts[0][1]
    assert evidence["snr"] > 10 and evidence["nearest"]["survey"] == "nvss"
    assert evidence["nearest"]["separation_arcsec"] > 15
    counts: dict[str | None, int] = dict(kinds)
    assert counts["monitored"] == 3 and counts[None] == 1 and counts["nvss"] >= 10


def test_monitoring_lists_register_list_and_remove(dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(dsn) as conn:
        sky.register_list(
            conn, "a", tmp_path / "a.csv", [MonitoringSource(name="X", ra_deg=1, dec_deg=2, priority=2)]
        )
        sky.register_list(
            conn,
            "b",
            tmp_path / "b.csv",
            [
                MonitoringSource(name="X", ra_deg=1, dec_deg=2, priority=1),
                MonitoringSource(name="Y", ra_deg=3, dec_deg=4),
            ],
        )
        assert [(m.name, m.n_sources, m.top_priority) for m in sky.monitoring_lists(conn)] == [
            ("a", 1, 2),
            ("b", 2, 1),
        ]
        assert [s.name for s in sky.monitored_sources(conn, ["a", "b"])] == ["X", "Y"]
        assert sky.remove_list(conn, "b") and not sky.remove_list(conn, "b")
        assert [s.name for s in sky.monitored_sources(conn, ["a", "b"])] == ["X"]


def test_a_rise_in_the_database_raises_one_rapid_rise_alert(dsn: str) -> None:
    rng = np.random.default_rng(5)
    names = ["STEADY", "RISER"]
    results = []
    for epoch in range(10):
        for name in names:
            true = 0.05 + (0.006 if name == "RISER" and epoch == 9 else 0.0)
            results.append(
                PhotometryResult(
                    name=name,
                    ra_deg=10.0,
                    dec_deg=20.0,
                    image_path=f"/i/{epoch}.fits",
                    mjd=61000 + epoch / 288,
                    flux_jy=true + float(rng.normal(0, 1e-3)),
                    flux_err_jy=1e-3,
                    snr=50.0,
                )
            )
    with psycopg.connect(dsn) as conn:
        products.upsert_sources(
            conn, [MonitoringSource(name=n, ra_deg=10.0, dec_deg=20.0) for n in names], "/c.csv"
        )
        products.record_photometry(conn, results)
        update = lightcurves.compute_update(conn, reference_names=[], criteria=TransientCriteria())
        alerts = lightcurves.record_update(conn, update)
        again = lightcurves.record_update(conn, update)
    assert [(a.source_name, a.kind) for a in alerts] == [("RISER", "rapid_rise")]
    assert again == []
