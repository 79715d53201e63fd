"""A simulated archive reprocessed through the queue with one command, interrupted half way by SIGKILL of
the command and of a worker, and resumed by running the same command again: every task and every
product exactly once. The chain runs without its source-finding step, which the night test covers, to
keep the test's time down; CONTIMG_TEST_ARCHIVE_SIZE sets the archive's size (24 by default)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from absurd.client import Client
from contimg.reprocess.archive import Archive, ArchiveSettings, simulate_archive
from contimg.runtime import WorkerProcesses
from contimg.tasks import queues
from tests.support.postgres import ServerUnderTest, fresh_database
from tests.support.processes import REPO, wait_until

pytestmark = pytest.mark.science

N_OBSERVATIONS = int(os.environ.get("CONTIMG_TEST_ARCHIVE_SIZE", "24"))
# The streaming workflow's steps, and the task each runs.
STEP_TASKS = {
    "convert": "convert-uvh5",
    "solve": "solve-calibration",
    "calibrate": "apply-calibration",
    "image": "create-image",
    "photometry": "run-photometry",
    "lightcurves": "update-lightcurves",
}


def _count(conn: psycopg.Connection, sql: str, *args: object) -> int:
    row = conn.execute(sql, args).fetchone()
    assert row is not None
    return int(row[0])


def _command(dsn: str, archive: Archive, out: Path, *extra: str) -> list[str]:
    return [
        *(sys.executable, "-m", "contimg.cli", "reprocess"),
        *(
            "--input-dir",
            str(archive.directory),
            "--output-dir",
            str(out),
            "--catalogue",
            str(archive.catalogue),
        ),
        *("--start", f"{archive.group_times[0]:%Y-%m-%dT%H:%M:%S}"),
        *("--end", f"{archive.group_times[-1]:%Y-%m-%dT%H:%M:%S}"),
        # The chain but source finding (which the night test covers), and small images: the simulated
        # observations are tiny, and the test is about the queue.
        *("--only", "convert,solve,calibrate,image,photometry,lightcurves,mosaic"),
        *("--set", "image.imaging.imsize=128", "--set", "image.imaging.cell_arcsec=30"),
        *("--set", "image.imaging.niter=200", "--night-poll-s", "1", "--dsn", dsn),
        *extra,
    ]


def _alive(proc: subprocess.Popen[str]) -> bool:
    assert proc.poll() is None, f"the command ended with {proc.returncode}"
    return True


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "ABSURD_LOG_LEVEL": "WARNING"}


@pytest.fixture
def database(pg_server: ServerUnderTest) -> Iterator[str]:
    with fresh_database(pg_server) as dsn:
        yield dsn


def test_an_archive_reprocessed_killed_and_resumed(database: str, tmp_path: Path) -> None:
    began = time.monotonic()
    archive = simulate_archive(ArchiveSettings(observations=N_OBSERVATIONS, spacing_min=2), tmp_path)
    simulated = time.monotonic() - began
    out = tmp_path / "products"
    logs = tmp_path / "logs"
    pool = WorkerProcesses(database, "contimg.tasks.registry:registry", logs)
    lease = ["--lease-s", "4"]
    for i in range(2):
        pool.start(list(queues.ALL), 1, f"worker-{i}", lease)
    conn = psycopg.connect(database, autocommit=True)
    blocker = psycopg.connect(database, autocommit=True)
    half = N_OBSERVATIONS // 2
    try:
        # Hold the submission lock of the middle observation: the command stops there, half way.
        blocker.execute(
            "SELECT pg_advisory_lock(hashtextextended('contimg-reprocess:' || %s || ':1', 0))",
            (archive.group_ids[half],),
        )
        first = subprocess.Popen(_command(database, archive, out), env=_env(), cwd=REPO, text=True)
        wait_until(
            lambda: (
                _alive(first)
                and _count(conn, "SELECT count(DISTINCT unit) FROM products.reprocess_steps") == half
            ),
            timeout=120,
            what="the first half of the archive to be submitted",
        )
        # A worker is in the middle of a task when it dies; so is the command, in a transaction.
        wait_until(
            lambda: (
                _count(conn, "SELECT count(*) FROM absurd.tasks WHERE state = 'completed'") >= 3
                and _count(conn, "SELECT count(*) FROM absurd.tasks WHERE state = 'running'") >= 1
            ),
            timeout=300,
            what="the workers to be busy",
        )
        first.send_signal(signal.SIGKILL)
        first.wait()
        pool.procs[0].send_signal(signal.SIGKILL)
        pool.procs[0].wait()
        blocker.execute("SELECT pg_advisory_unlock_all()")
        assert _count(conn, "SELECT count(DISTINCT unit) FROM products.reprocess_steps") == half
        pool.start(list(queues.ALL), 1, "worker-restarted", lease)

        # The same command again resumes the run: the rest is submitted, and it waits for the end.
        second = subprocess.run(
            _command(database, archive, out),
            env=_env(),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=1200,
        )
        assert second.returncode == 0, second.stdout + second.stderr
        assert f"{N_OBSERVATIONS} observations found, {N_OBSERVATIONS - half} submitted" in second.stdout
        # And once more, after the end: nothing left to submit.
        third = subprocess.run(
            _command(database, archive, out, "--no-wait"),
            env=_env(),
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        assert third.returncode == 0, third.stderr
        assert f"0 submitted, {N_OBSERVATIONS} already submitted" in third.stdout
    finally:
        pool.stop()
        blocker.close()
    took = time.monotonic() - began

    # One run; each observation's workflow and the night's mosaic once.
    assert _count(conn, "SELECT count(*) FROM products.reprocess_runs") == 1
    assert _count(conn, "SELECT count(*) FROM absurd.workflows") == N_OBSERVATIONS + 1
    progress = conn.execute(
        "SELECT kind, state, count(*) FROM products.reprocess_progress GROUP BY kind, state"
    ).fetchall()
    assert sorted(progress) == [("mosaic", "done", 1), ("observation", "done", N_OBSERVATIONS)]
    # Every task once, and completed: the crash cost attempts, never work.
    by_name: dict[str, int] = dict(
        conn.execute("SELECT name, count(*) FROM absurd.tasks GROUP BY name").fetchall()
    )
    # The light-curve step queues one notifier per alert it raises (docs/alerts.md): once each.
    alerts = _count(conn, "SELECT count(*) FROM products.alerts")
    assert by_name.pop("notify-alert", 0) == alerts
    assert by_name == {
        **dict.fromkeys(STEP_TASKS.values(), N_OBSERVATIONS),
        "await-night": 1,
        "create-mosaic": 1,
    }
    assert _count(conn, "SELECT count(*) FROM absurd.tasks WHERE state <> 'completed'") == 0
    # Every product once: an MS and an image per observation, one solve (the calibrator transit),
    # one mosaic of them all, and one photometry row per image and catalogued source in it.
    assert _count(conn, "SELECT count(*) FROM products.ms_index") == N_OBSERVATIONS
    assert (
        _count(conn, "SELECT count(*) FROM products.ms_index WHERE calibrated_with IS NOT NULL")
        == N_OBSERVATIONS
    )
    assert _count(conn, "SELECT count(*) FROM products.images") == N_OBSERVATIONS
    assert _count(conn, "SELECT count(*) FROM products.caltables") == 1
    [(mosaic_images,)] = conn.execute("SELECT n_inputs FROM products.mosaics").fetchall()
    assert mosaic_images == N_OBSERVATIONS
    per_image = conn.execute(
        "SELECT image_path, count(*), count(DISTINCT source_name) FROM products.photometry "
        "GROUP BY image_path"
    ).fetchall()
    assert len(per_image) == N_OBSERVATIONS
    assert all(n == distinct for _, n, distinct in per_image)
    on_disk = sorted(p.name for p in (out / "ms").iterdir())
    assert on_disk == sorted(f"{g}.ms" for g in archive.group_ids)
    # The killed worker's task was taken over once its lease expired.
    assert _count(conn, "SELECT count(*) FROM absurd.runs WHERE state <> 'completed'") >= 1
    with Client(database) as client:
        assert client.dlq() == []
    conn.close()
    print(
        f"\narchive of {N_OBSERVATIONS}: simulated in {simulated:.0f} s, "
        f"reprocessed in {took - simulated:.0f} s"
    )
