"""The broker sink against a real VOEvent broker: Comet, started here as a separate process, receiving
from authors over the VOEvent Transport Protocol."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import voeventparse as vp

from absurd.builtin_tasks import builtin
from absurd.client import Client
from absurd.worker import Worker, WorkerSettings
from contimg.alerts.config import SINKS_ENV, BrokerSink
from contimg.alerts.sinks import DeliveryFailed, send_to_broker
from contimg.store import sky
from contimg.tasks import queues
from contimg.tasks.notify import registry as notify
from contimg.tasks.notify import spawn_notifiers
from science.source_finding import FoundSource, Identification
from tests.alerting.ports import free_port, listening
from tests.support.processes import wait_until

TWISTD = Path(sys.executable).parent / "twistd"


@pytest.fixture
def comet(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A Comet broker taking events from authors on a free port, saving each one it accepts."""
    assert TWISTD.exists(), "Comet's twistd is missing: install the dev extra (pip install -e '.[dev]')"
    port, saved, db = free_port(), tmp_path / "saved", tmp_path / "eventdb"
    saved.mkdir()
    db.mkdir()
    proc = subprocess.Popen(
        [str(TWISTD), "-n", "--pidfile=", "comet", "--receive", f"--receive-port={port}",
         "--local-ivo=ivo://test.example/comet", f"--eventdb={db}", "--save-event",
         f"--save-event-directory={saved}"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(lambda: proc.poll() is not None or listening(port), 60, 0.1, what="Comet to listen")
        assert proc.poll() is None, f"Comet exited with {proc.returncode}"
        yield port, saved
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def new_source_alert(dsn: str) -> int:
    """A new-source alert raised by the store, as find-sources' hook raises it; its notifier queued."""
    found = FoundSource(
        ra_deg=201.25, dec_deg=37.5, pos_err_arcsec=2.5, peak_jy=0.08, peak_err_jy=0.001, flux_jy=0.085,
        flux_err_jy=0.002, major_arcsec=40, minor_arcsec=30, pa_deg=10, local_rms_jy=0.001, snr=80,
        fit_flags=0,
    )  # fmt: skip
    ident = Identification(source=found, matched=False)
    with psycopg.connect(dsn) as conn:
        [alert] = sky.record_detections(conn, "/data/dsa110/images/a.img.fits", 60500.5, [ident], [ident], 7)
        spawn_notifiers(conn, [alert.id])
    return alert.id


@pytest.mark.timeout(120)
def test_notify_alert_delivers_to_a_real_broker_once(
    dsn: str, tmp_path: Path, comet: tuple[int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, saved = comet
    sinks = tmp_path / "sinks.yaml"
    sinks.write_text(f"sinks: [{{name: comet, kind: broker, host: 127.0.0.1, port: {port}}}]\n")
    monkeypatch.setenv(SINKS_ENV, str(sinks))
    alert_id = new_source_alert(dsn)
    worker = Worker(builtin.merge(notify), WorkerSettings(queues=[queues.ALERTS], poll_s=0.1), dsn)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        with Client(dsn) as client:
            [task] = client.list_tasks(name="notify-alert")
            outcome = client.wait_result(int(task["id"]), 60)
    finally:
        worker.stop()
        thread.join(30)
    assert outcome["delivered"] == ["comet"] and outcome["rejected"] == []
    with psycopg.connect(dsn, autocommit=True) as conn:
        [(state, attempts, detail)] = conn.execute(
            "SELECT state, attempts, detail FROM products.alert_deliveries WHERE alert_id = %s", (alert_id,)
        ).fetchall()
        [(ivorn, document)] = conn.execute("SELECT ivorn, document FROM products.alert_voevents").fetchall()
    assert (state, attempts, detail) == ("delivered", 1, f"ack from broker 127.0.0.1:{port}")
    # The broker kept the very event we stored.
    [kept] = list(saved.iterdir())
    assert vp.load(kept.open("rb")).attrib["ivorn"] == ivorn
    # Sent again (as after a crash between the broker's ack and our record), the broker says it has seen
    # it: that counts as delivered, not as a refusal.
    sink = BrokerSink(name="comet", kind="broker", host="127.0.0.1", port=port)
    assert "already had it" in send_to_broker(sink, ivorn, document)
    assert len(list(saved.iterdir())) == 1


def test_a_broker_that_hangs_up_or_is_absent_is_tried_again(comet: tuple[int, Path]) -> None:
    port, saved = comet
    sink = BrokerSink(name="comet", kind="broker", host="127.0.0.1", port=port)
    # Comet hangs up on a document that is not VOEvent 2.0, without a nak: a failure, not a delivery.
    with pytest.raises(DeliveryFailed, match="closed the connection"):
        send_to_broker(sink, "ivo://x/y#z", "<VOEvent>not a VOEvent 2.0 document</VOEvent>")
    assert list(saved.iterdir()) == []
    absent = BrokerSink(name="gone", kind="broker", host="127.0.0.1", port=free_port(), timeout_s=5)
    with pytest.raises(DeliveryFailed, match="cannot send to broker"):
        send_to_broker(absent, "ivo://x/y#z", "<VOEvent/>")
