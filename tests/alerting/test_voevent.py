"""Alerts raised by the pipeline as VOEvent 2.0 documents: schema-valid, carrying the alert's position,
measurement and metrics, the same bytes every time; and a sinks file that is wrong says where."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import voeventparse as vp

from absurd.builtin_tasks import builtin
from absurd.client import Client
from absurd.maintenance import ReaperSettings
from absurd.worker import Worker, WorkerSettings
from contimg.alerts.config import AlertSinks, load_sinks
from contimg.alerts.voevent import build_voevent
from contimg.store import alert_delivery, products, sky
from contimg.tasks import queues
from contimg.tasks.lightcurves import registry as lightcurves
from science.errors import InvalidInputError
from science.source_finding import FoundSource, Identification
from tests.lightcurves.conftest import TRANSIENT, synthetic_photometry
from tests.support.processes import REPO

SINKS = AlertSinks.model_validate({"author": {"contact_email": "ops@example.org"}, "role": "test"})


@pytest.fixture
def raised(dsn: str) -> Iterator[list[int]]:
    """Alerts raised by a real update-lightcurves run: one variable source, one transient."""
    sources, results = synthetic_photometry(with_transient=True)
    with psycopg.connect(dsn) as conn:
        products.upsert_sources(conn, sources, "/data/dsa110/catalogues/monitor.csv")
        products.record_photometry(conn, results)
    worker = Worker(
        builtin.merge(lightcurves),
        WorkerSettings(queues=[queues.PHOTOMETRY], poll_s=0.1, reaper=ReaperSettings(interval_s=0.5)),
        dsn,
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        with Client(dsn) as client:
            task_id = client.spawn("update-lightcurves", {}, queue=queues.PHOTOMETRY).task_id
            client.wait_result(task_id, 60)
        with psycopg.connect(dsn, autocommit=True) as conn:
            yield [int(r[0]) for r in conn.execute("SELECT id FROM products.alerts ORDER BY id").fetchall()]
    finally:
        worker.stop()
        thread.join(30)


def test_a_raised_alert_is_a_schema_valid_voevent_with_its_measurement(dsn: str, raised: list[int]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        transient_id = conn.execute(
            "SELECT id FROM products.alerts WHERE kind = 'transient' AND source_name = %s", (TRANSIENT,)
        ).fetchone()
        assert transient_id is not None
        subject = alert_delivery.alert_subject(conn, int(transient_id[0]))
        latest = conn.execute(
            "SELECT ra_deg, dec_deg, flux_jy, snr, image_path, mjd FROM products.photometry"
            " WHERE source_name = %s ORDER BY mjd DESC LIMIT 1",
            (TRANSIENT,),
        ).fetchone()
        # The hook queued one notifier per alert, in the alert's transaction.
        notifiers = conn.execute(
            "SELECT params->>'alert_id', queue FROM absurd.tasks WHERE name = 'notify-alert' ORDER BY id"
        ).fetchall()
    assert sorted(int(a) for a, _ in notifiers) == raised and {q for _, q in notifiers} == {"alerts"}
    assert subject is not None and latest is not None
    ivorn, document = build_voevent(subject, SINKS)
    assert ivorn == f"ivo://dsa110.caltech.edu/contimg#alert-{subject.id}"
    assert build_voevent(subject, SINKS) == (ivorn, document)  # the same bytes on a retry

    event = vp.loads(document.encode())
    assert vp.valid_as_v2_0(event)
    assert event.attrib["role"] == "test"
    assert str(event.Who.AuthorIVORN) == "ivo://dsa110.caltech.edu/contimg"
    assert str(event.Who.Author.contactEmail) == "ops@example.org"
    params = vp.get_grouped_params(event)
    assert params["alert"]["kind"]["value"] == "transient"
    assert params["alert"]["source"]["value"] == TRANSIENT
    ra, dec, flux, snr, image, mjd = latest
    assert float(params["measurement"]["flux_jy"]["value"]) == pytest.approx(flux)
    assert params["measurement"]["flux_jy"]["unit"] == "Jy"
    assert float(params["measurement"]["snr"]["value"]) == pytest.approx(snr)
    assert params["measurement"]["image"]["value"] == image
    assert float(params["variability"]["latest_snr"]["value"]) == pytest.approx(snr)
    assert {"eta", "v", "last_mjd"} <= set(params["variability"])
    position = vp.get_event_position(event)
    assert (position.ra, position.dec) == (pytest.approx(ra), pytest.approx(dec))
    assert abs(vp.get_event_time_as_utc(event).timestamp() - products.mjd_to_datetime(mjd).timestamp()) < 1
    assert float(event.Why.attrib["importance"]) == pytest.approx(0.8)
    assert str(event.Why.Inference.Name) == TRANSIENT


def test_a_new_source_alert_gives_its_detection_and_nearest_catalogued_source(dsn: str) -> None:
    found = FoundSource(
        ra_deg=201.25, dec_deg=37.5, pos_err_arcsec=2.5, peak_jy=0.08, peak_err_jy=0.001, flux_jy=0.085,
        flux_err_jy=0.002, major_arcsec=40, minor_arcsec=30, pa_deg=10, local_rms_jy=0.001, snr=80,
        fit_flags=0,
    )  # fmt: skip
    ident = Identification(
        source=found, matched=False, nearest_survey="nvss", nearest_name="NVSS J132500+373000",
        nearest_separation_arcsec=95.0, nearest_flux_mjy=3.1,
    )  # fmt: skip
    with psycopg.connect(dsn) as conn:
        [alert] = sky.record_detections(conn, "/data/dsa110/images/a.img.fits", 60500.5, [ident], [ident], 7)
        conn.commit()
        subject = alert_delivery.alert_subject(conn, alert.id)
    assert subject is not None
    _, document = build_voevent(subject, SINKS)
    event = vp.loads(document.encode())
    assert vp.valid_as_v2_0(event)
    params = vp.get_grouped_params(event)
    assert params["alert"]["source"]["value"] == "DSA J132500.00+373000.0"
    assert params["identification"]["nearest_source"]["value"] == "NVSS J132500+373000"
    assert float(params["measurement"]["peak_jy"]["value"]) == pytest.approx(0.08)
    position = vp.get_event_position(event)
    assert (position.ra, position.dec, position.err) == (201.25, 37.5, pytest.approx(2.5 / 3600))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sinks: [{name: a, kind: directory}]", "sinks.0.directory.path: Field required"),
        ("sinks: [{name: a, kind: pigeon}]", "sinks.0: Input tag 'pigeon' found using 'kind'"),
        ("sinks: [{name: a, kind: webhook, url: 'not a url'}]", "sinks.0.webhook.url"),
        (
            "sinks: [{name: a, kind: directory, path: /x}, {name: a, kind: directory, path: /y}]",
            "used more than once: a",
        ),
        ("author: {ivorn: 'dsa110/contimg'}", "author.ivorn"),
        ("sinks: [", "not valid YAML"),
    ],
)
def test_a_wrong_sinks_file_names_the_file_and_the_field(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "sinks.yaml"
    path.write_text(text)
    with pytest.raises(InvalidInputError) as raised:
        load_sinks(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert expected in str(raised.value)


def test_the_shipped_sinks_example_loads() -> None:
    example = load_sinks(REPO / "deploy" / "alert-sinks.yaml")
    assert [s.kind for s in example.sinks] == ["directory", "webhook"]
    assert example.author.ivorn == "ivo://dsa110.caltech.edu/contimg"
