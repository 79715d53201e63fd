"""The metrics the alert rules and the dashboard read, scraped over HTTP from real daemons (a scheduler and
the streaming converter, each a separate process on the test's Postgres), and the dashboard's checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from astropy.time import Time
from prometheus_client.parser import text_string_to_metric_families

from absurd.builtin_tasks import builtin
from absurd.client import Client
from absurd.metrics import Metrics
from absurd.schedules import load_paths
from absurd.schedules.sync import sync
from tests.alerting.ports import free_port
from tests.alerting.prometheus import DASHBOARD, metric_names, rules
from tests.support.processes import REPO, stop_worker, wait_until

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    """Every sample at ``/metrics``, keyed by name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


@contextmanager
def running(*argv: str) -> Iterator[int]:
    """Run a daemon with ``--metrics-port`` and yield the port once it serves."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "ABSURD_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-m", *argv, "--metrics-port", str(port)], cwd=REPO, env=env)
    try:

        def serving() -> bool:
            assert proc.poll() is None, f"{argv[0]} exited with {proc.returncode}"
            try:
                scrape(port)
                return True
            except OSError:
                return False

        wait_until(serving, 90, 0.2, what=f"{' '.join(argv[:2])} to serve metrics")
        yield port
    finally:
        stop_worker(proc)


@pytest.mark.timeout(180)
def test_scheduler_serves_heartbeats_oldest_wait_and_schedule_times(dsn: str) -> None:
    loaded, problems = load_paths([REPO / "schedules" / "maintenance.yaml"], builtin)
    assert not problems
    with psycopg.connect(dsn, autocommit=True) as conn, Client(dsn) as client:
        sync(conn, loaded, now=datetime.now(UTC))
        waiting = client.spawn("echo", {"i": 1}, queue="imaging").task_id
        conn.execute(
            "UPDATE absurd.tasks SET available_at = now() - interval '20 minutes' WHERE id = %s", (waiting,)
        )
        # Background work (an archive's reprocessing, at a negative priority) behind it for three hours.
        behind = client.spawn("echo", {"i": 3}, queue="imaging", priority=-5).task_id
        conn.execute(
            "UPDATE absurd.tasks SET available_at = now() - interval '3 hours' WHERE id = %s", (behind,)
        )
        client.spawn("echo", {"i": 2}, queue="later", not_before=datetime(2100, 1, 1, tzinfo=UTC))
        # A worker that died without deregistering: its heartbeat stopped 10 minutes ago.
        conn.execute(
            "INSERT INTO absurd.workers (id, hostname, pid, queues, concurrency, heartbeat_at)"
            " VALUES ('dead:1:abc', 'dead', 1, '{imaging}', 1, now() - interval '10 minutes')"
        )
        next_fire = conn.execute(
            "SELECT extract(epoch FROM next_fire_at) FROM absurd.schedules WHERE name = 'queue-cleanup'"
        ).fetchone()
    assert next_fire is not None
    with running("absurd", "scheduler", "--dsn", dsn, "--tick-s", "0.2") as port:
        samples = wait_until(
            lambda: (
                (s := scrape(port))
                and any(k[0] == "absurd_heartbeat_age_seconds" and ("kind", "scheduler") in k[1] for k in s)
                and s
            ),
            60,
            what="the scheduler's heartbeat",
        )
    assert value(samples, "absurd_database_up") == 1
    # The foreground task whose time has come waited 20 min, the background one 3 h; a task not due yet is
    # not late.
    imaging = value(samples, "absurd_queue_oldest_pending_age_seconds", queue="imaging", band="foreground")
    assert imaging is not None and 1200 <= imaging < 1500
    behind_s = value(samples, "absurd_queue_oldest_pending_age_seconds", queue="imaging", band="background")
    assert behind_s is not None and 10800 <= behind_s < 11100
    for band in ("foreground", "background"):
        assert value(samples, "absurd_queue_oldest_pending_age_seconds", queue="later", band=band) == 0
    dead = value(samples, "absurd_heartbeat_age_seconds", kind="worker", id="dead:1:abc")
    assert dead is not None and 600 <= dead < 900
    scheduler_ages = [
        v
        for k, v in samples.items()
        if k[0] == "absurd_heartbeat_age_seconds" and ("kind", "scheduler") in k[1]
    ]
    assert len(scheduler_ages) == 1 and scheduler_ages[0] < 60
    assert value(
        samples, "absurd_schedule_next_fire_timestamp_seconds", schedule="queue-cleanup"
    ) == pytest.approx(float(next_fire[0]))
    assert value(samples, "absurd_schedule_last_fire_timestamp_seconds", schedule="queue-cleanup") is None


def _seed_products(conn: psycopg.Connection, ms_dec: float, solve_dec: float, qa_passed: bool) -> None:
    now = datetime.now(UTC)
    mjd = float(Time(now).mjd)
    conn.execute(
        "INSERT INTO products.stream_files (path, subband, file_time, size_bytes, arrived_at, first_seen_at)"
        " VALUES ('/in/2026-11-30T05:00:00_sb00.hdf5', 0, %s, 1, %s, %s)",
        (now, now, now),
    )
    conn.execute(
        "INSERT INTO products.ms_index (path, group_id, start_mjd, end_mjd, mid_mjd, mid_time, ra_deg,"
        " dec_deg, n_antennas, n_channels, status)"
        " VALUES ('/ms/a.ms', 'g', %s, %s, %s, %s, 10, %s, 96, 768, 'complete')",
        (mjd - 0.002, mjd + 0.002, mjd, now, ms_dec),
    )
    conn.execute(
        "INSERT INTO products.caltables (ms_path, mode, calibrator, calibrator_offset_deg,"
        " calibrator_flux_jy, refant, tables, apply_tables, mid_mjd, valid_start_mjd, valid_end_mjd,"
        " valid_from, valid_until,"
        " qa_passed, qa, pointing_dec_deg) VALUES ('/ms/cal.ms', 'bandpass', '3C286', 0.1, 15, 'pad1', '{}',"
        " '{/cal/a.bcal}', %s, %s, %s, %s, %s, %s, '{}', %s)",
        (mjd - 0.1, mjd - 0.2, mjd + 0.2, now, now, qa_passed, solve_dec),
    )


@pytest.mark.timeout(180)
def test_stream_converter_serves_product_freshness_and_calibration_validity(dsn: str, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    before = time.time()
    with psycopg.connect(dsn, autocommit=True) as conn:
        _seed_products(conn, ms_dec=40.0, solve_dec=41.5, qa_passed=True)
    argv = ("contimg.cli", "stream", "run", "--incoming", str(tmp_path / "in"), "--output-dir", str(tmp_path))
    with running(*argv, "--dsn", dsn, "--poll") as port:
        samples = scrape(port)
        assert value(samples, "contimg_products_database_up") == 1
        for name in (
            "contimg_stream_last_file_timestamp_seconds",
            "contimg_ms_last_recorded_timestamp_seconds",
        ):
            stamp = value(samples, name)
            assert stamp is not None and before - 5 <= stamp <= time.time() + 5, name
        assert value(samples, "contimg_calibration_valid") == 1
        assert value(samples, "contimg_calibration_dec_offset_deg") == pytest.approx(1.5)
        # The solve fails QA after all: nothing valid is left for the newest MS.
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("UPDATE products.caltables SET qa_passed = false")
        samples = scrape(port)
        assert value(samples, "contimg_calibration_valid") == 0
        assert value(samples, "contimg_calibration_dec_offset_deg") is None
        served = {key[0] for key in samples}
    assert "absurd_database_up" in served  # the converter serves the queue gauges too


def exported_names(dsn: str) -> set[str]:
    """Every sample name the daemons can export: the counters and histogram of ``Metrics`` and the gauges
    its collector and the converter's read from a database (here an empty one, so some have no samples)."""
    from contimg.stream.metrics import ObservingCollector

    metrics = Metrics()
    metrics.registry.register(ObservingCollector(dsn))
    names: set[str] = set()
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
    for family in metrics.registry.collect():
        names.update(family.name + s for s in suffixes.get(family.type, [""]))
    from absurd.metrics import QueueCollector

    names.update(family.name for family in QueueCollector(dsn).collect())
    from contimg.storage.metrics import StorageMetrics

    names.update(family.name for family in StorageMetrics().registry.collect())
    return names


def test_the_rules_and_the_dashboard_read_only_exported_metrics(dsn: str) -> None:
    exported = exported_names(dsn) | {"node_filesystem_avail_bytes", "node_filesystem_size_bytes"}
    assert "absurd_tasks_completed_total" in exported and "contimg_calibration_valid" in exported
    used_by_rules = set().union(*(metric_names(str(rule["expr"])) for rule in rules()))
    assert used_by_rules - exported == set()
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert exprs and all(e.strip() for e in exprs)
    used_by_dashboard = set().union(*(metric_names(e) for e in exprs))
    assert used_by_dashboard - exported == set(), "the dashboard plots a metric nothing exports"
    # Every metric the daemons export is on the dashboard, so a new one is not forgotten there.
    plotted = {n.removesuffix("_bucket").removesuffix("_total") for n in used_by_dashboard}
    for name in exported:
        base = name.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum").removesuffix("_total")
        assert base in plotted, f"{name} is exported but not on the dashboard"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_metric_names_reads_selectors_not_functions_or_labels() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, task)"
        ' (rate(absurd_task_duration_seconds_bucket{task="x"}[15m])))'
        " > min_over_time(max by (queue) (absurd_dlq_open offset 5m)[30m:1m]) unless up == 0"
    )
    assert metric_names(expr) == {"absurd_task_duration_seconds_bucket", "absurd_dlq_open", "up"}
