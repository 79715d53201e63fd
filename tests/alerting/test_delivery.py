"""Alerts raised by the pipeline reach every sink exactly once, through a receiver that fails the first
two attempts of each and a notifier worker killed (SIGKILL) in the middle of a delivery."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest
import voeventparse as vp
from typer.testing import CliRunner

from absurd.client import Client
from contimg.alerts.config import SINKS_ENV, WebhookSink
from contimg.alerts.sinks import DeliveryFailed, DeliveryRejected, post
from contimg.cli import app
from contimg.store import products
from contimg.tasks import queues
from tests.lightcurves.conftest import synthetic_photometry
from tests.support.processes import start_worker, stop_worker, wait_until

FAILURES_BEFORE_SUCCESS = 2


@dataclass
class Receiver:
    """A webhook that answers 503 to the first two POSTs of each event, then accepts it once and drops
    any repeat of an Idempotency-Key it has accepted. On its first acceptance it SIGKILLs the worker
    that is waiting for its answer (``victim``), so the notifier dies between send and record."""

    posts: Counter[str] = field(default_factory=Counter)
    accepted: dict[str, bytes] = field(default_factory=dict)
    repeats: Counter[str] = field(default_factory=Counter)
    victim: subprocess.Popen[bytes] | None = None
    killed_during: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, key: str, body: bytes) -> int:
        with self.lock:
            self.posts[key] += 1
            if self.posts[key] <= FAILURES_BEFORE_SUCCESS:
                return 503
            if key in self.accepted:
                self.repeats[key] += 1
                return 200
            self.accepted[key] = body
            if self.victim is not None and self.killed_during is None:
                self.victim.send_signal(signal.SIGKILL)
                self.victim.wait(30)
                self.killed_during = key
            return 200


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = state.handle(self.headers["Idempotency-Key"], body)
            try:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                pass  # the client was killed while waiting

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_port}/voevents"
    server.shutdown()
    server.server_close()


def rows(dsn: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(query).fetchall()


@pytest.mark.timeout(240)
def test_each_alert_is_delivered_once_despite_failures_and_a_killed_worker(
    dsn: str, tmp_path: Path, receiver: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    state, url = receiver
    outbox = tmp_path / "voevents"
    sinks = tmp_path / "sinks.yaml"
    sinks.write_text(
        json.dumps(
            {
                "role": "test",
                "sinks": [
                    {"name": "archive", "kind": "directory", "path": str(outbox)},
                    {"name": "followup", "kind": "webhook", "url": url, "timeout_s": 30},
                ],
            }
        )
    )
    monkeypatch.setenv(SINKS_ENV, str(sinks))
    sources, results = synthetic_photometry(with_transient=True)
    with psycopg.connect(dsn) as conn:
        products.upsert_sources(conn, sources, "/data/dsa110/catalogues/monitor.csv")
        products.record_photometry(conn, results)

    args = (
        "--registry", "contimg.tasks.notify:registry", "--queue", queues.PHOTOMETRY, "--queue", queues.ALERTS,
        "--concurrency", "4", "--poll-s", "0.2",
    )  # fmt: skip
    registry = "contimg.tasks.lightcurves:registry"
    # The first worker's lease is short so that its runs are reclaimed soon after it is killed.
    first = start_worker(dsn, *args, "--lease-s", "3", registry=registry)
    state.victim = first
    second = None
    try:
        with Client(dsn) as client:
            update = client.spawn("update-lightcurves", {}, queue=queues.PHOTOMETRY).task_id
            client.wait_result(update, 60)
        alert_ids = [int(r[0]) for r in rows(dsn, "SELECT id FROM products.alerts ORDER BY id")]
        assert len(alert_ids) == 4  # VAR_1 variable; TRANS_1 transient and rapid rise; one more variable
        wait_until(lambda: state.killed_during is not None, 120, 0.1, what="a delivery to kill the worker in")
        assert first.returncode == -signal.SIGKILL
        second = start_worker(dsn, *args, registry=registry)

        def all_delivered() -> bool:
            done = rows(dsn, "SELECT count(*) FROM products.alert_deliveries WHERE state = 'delivered'")
            return done == [(2 * len(alert_ids),)]

        wait_until(all_delivered, 150, 0.2, what="every alert delivered to both sinks")
    finally:
        stop_worker(first)
        if second is not None:
            stop_worker(second)

    ivorns = {f"ivo://dsa110.caltech.edu/contimg#alert-{i}" for i in alert_ids}
    # The receiver accepted each event once, after refusing it twice. The event whose acceptance killed
    # the worker was sent once more by the retry, with the same key, and dropped as a repeat; another
    # event accepted in the same instant, by the same doomed worker, may have been repeated too.
    assert set(state.accepted) == ivorns
    assert state.killed_during in ivorns
    assert state.repeats[state.killed_during] == 1
    assert set(state.repeats) <= ivorns and max(state.repeats.values()) == 1
    assert all(state.posts[k] == FAILURES_BEFORE_SUCCESS + 1 + state.repeats[k] for k in ivorns)
    stored = dict(rows(dsn, "SELECT ivorn, document FROM products.alert_voevents"))
    for key, body in state.accepted.items():
        event = vp.loads(body)
        assert vp.valid_as_v2_0(event) and event.attrib["ivorn"] == key
        assert body.decode() == stored[key]
    # One file per alert, each the stored document, and no temporary file left behind.
    files = sorted(outbox.iterdir())
    assert [f.name for f in files] == sorted(f"dsa110.caltech.edu_contimg_alert-{i}.xml" for i in alert_ids)
    assert {f.read_text() for f in files} == set(stored.values())

    deliveries = rows(dsn, "SELECT alert_id, sink, state, attempts FROM products.alert_deliveries")
    assert sorted((i, sink, s) for i, sink, s, _ in deliveries) == sorted(
        (i, sink, "delivered") for i in alert_ids for sink in ("archive", "followup")
    )
    # Attempts count the tries whose outcome was recorded; the send the kill interrupted was not.
    attempts = {(f"ivo://dsa110.caltech.edu/contimg#alert-{i}", sink): n for i, sink, _, n in deliveries}
    assert attempts[(state.killed_during, "followup")] == state.posts[state.killed_during] - 1
    for key in ivorns:
        assert attempts[(key, "archive")] == 1  # written in each notifier's first attempt
        assert 1 <= attempts[(key, "followup")] <= state.posts[key]
    assert rows(dsn, "SELECT count(*), count(DISTINCT params->>'alert_id') FROM absurd.tasks"
                " WHERE name = 'notify-alert' AND state = 'completed'") == [(4, 4)]  # fmt: skip

    shown = CliRunner().invoke(app, ["alerts", "--dsn", dsn, "--json"])
    assert shown.exit_code == 0, shown.output
    listed = json.loads(shown.stdout)
    assert {a["id"] for a in listed} == set(alert_ids)
    for alert in listed:
        assert [(d["sink"], d["state"]) for d in alert["deliveries"]] == [
            ("archive", "delivered"),
            ("followup", "delivered"),
        ]
    table = CliRunner(env={"COLUMNS": "250"}).invoke(app, ["alerts", "--dsn", dsn])
    assert table.exit_code == 0 and "archive delivered, followup delivered" in table.stdout


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(400, DeliveryRejected), (404, DeliveryRejected), (429, DeliveryFailed), (502, DeliveryFailed)],
)
def test_a_webhook_refusal_is_final_and_a_busy_receiver_is_retried(status: int, outcome: type) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sink = WebhookSink(name="w", kind="webhook", url=f"http://127.0.0.1:{server.server_port}/")
        with pytest.raises(outcome, match=f"HTTP {status}"):
            post(sink, "ivo://x/y#z", "<VOEvent/>")
    finally:
        server.shutdown()
        server.server_close()
