"""A whole night through the real daemons: files out of order, a late subband (reconverted), a duplicate,
a corrupt file, and the streaming converter and the worker SIGKILLed half way. Nothing may be lost or
doubled."""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from absurd.client import Client
from contimg.demo import DemoRun, prepare
from contimg.night import (
    VARIABLE,
    Night,
    NightSettings,
    install_schedule,
    night_finished,
    simulate_night,
    start_daemons,
)
from contimg.runtime import WorkerProcesses
from tests.support.postgres import ServerUnderTest
from tests.support.processes import wait_until

pytestmark = pytest.mark.science

SETTINGS = NightSettings(epochs=3, channels=4, integrations=6, subband_timeout_s=10, concurrency=2)


def _drop(paths: list[Path], incoming: Path, rng: random.Random) -> None:
    """Deliver files in a shuffled order, each written under a hidden name and renamed."""
    for path in rng.sample(paths, len(paths)):
        partial = incoming / f".{path.name}.part"
        shutil.copyfile(path, partial)
        partial.rename(incoming / path.name)


def _corrupt_group(night: Night, sim_dir: Path) -> list[Path]:
    """An extra observation two hours after the last: a copy of the first target, one file truncated."""
    out = sim_dir / "corrupt"
    out.mkdir()
    copies = []
    for path in night.observations[1].subband_paths:
        stamp, subband = path.name.split("_")
        later = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S") + timedelta(hours=2)
        copy = out / f"{later:%Y-%m-%dT%H:%M:%S}_{subband}"
        shutil.copyfile(path, copy)
        copies.append(copy)
    with copies[3].open("r+b") as fh:
        fh.truncate(copies[3].stat().st_size // 3)
    return copies


def _count(client: Client, sql: str) -> int:
    row = client.conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def _kill(pool: WorkerProcesses, daemons: list[subprocess.Popen[bytes]]) -> None:
    for proc in [*pool.procs, daemons[1]]:  # the worker and the streaming converter
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_a_night_with_bad_files_and_a_crash(pg_server: ServerUnderTest, tmp_path: Path) -> None:
    rng = random.Random(5)
    run: DemoRun = prepare(tmp_path, pg_server.admin_dsn)
    for sub in ("sim", "incoming", "ms", "caltables", "images", "mosaics", "lightcurves", "logs"):
        (run.run_dir / sub).mkdir()
    night = simulate_night(SETTINGS, run.run_dir / "sim", Console(quiet=True))
    install_schedule(run.dsn, run.run_dir, night, SETTINGS)
    corrupt = _corrupt_group(night, run.run_dir / "sim")
    incoming = run.run_dir / "incoming"
    calibrator, first, *rest = night.observations
    lease = ["--lease-s", "4"]

    pool, daemons = start_daemons(run, SETTINGS, worker_args=lease)
    client = Client(run.dsn)
    try:
        _drop(calibrator.subband_paths, incoming, rng)
        # The first target arrives without sb05; its group times out and is converted with it flagged.
        held_back = first.subband_paths[5]
        _drop([p for p in first.subband_paths if p != held_back], incoming, rng)
        wait_until(
            lambda: (
                _count(client, "SELECT count(*) FROM products.stream_groups WHERE status = 'converted'") >= 2
            ),
            timeout=240,
            what="the first two observations to be converted",
        )
        _drop([held_back], incoming, rng)  # late
        _drop([first.subband_paths[2]], incoming, rng)  # the same file again: a duplicate
        # Half way through the night: the converter and the worker die without warning.
        _kill(pool, daemons)
        pool, restarted = start_daemons(run, SETTINGS, worker_args=lease, scheduler=False)
        daemons = [daemons[0], *restarted]
        for observation in rest:
            _drop(observation.subband_paths, incoming, rng)
        _drop(corrupt, incoming, rng)
        wait_until(
            lambda: night_finished(client, len(night.observations) + 1),
            timeout=900,
            interval=1.0,
            what="the night to finish",
        )
        final = client.spawn("update-lightcurves", {}, queue="photometry")
        client.wait_result(final.task_id, 120)
    finally:
        for d in daemons:
            d.terminate()
        pool.stop()
        for d in daemons:
            d.wait(60)

    n_good = len(night.observations)
    # Every complete group converted exactly once, and the first target once more (version 2) when its
    # late subband came in; the corrupt one is a dead letter with its reason.
    assert _count(client, "SELECT count(*) FROM products.ms_index") == n_good + 1
    assert _count(client, "SELECT count(*) FROM products.ms_index WHERE superseded_by IS NULL") == n_good
    assert _count(client, "SELECT count(DISTINCT group_id) FROM products.ms_index") == n_good
    assert _count(client, "SELECT count(*) FROM products.ms_index WHERE version = 2") == 1
    assert _count(client, "SELECT count(*) FROM products.stream_groups WHERE status = 'converted'") == n_good
    assert _count(client, "SELECT count(*) FROM absurd.tasks WHERE name = 'convert-uvh5'") == n_good + 2
    [dead] = client.dlq()
    assert dead["task_name"] == "convert-uvh5"
    assert corrupt[3].name in dead["error_message"] and "cannot read" in dead["error_message"]
    late = client.conn.execute(
        "SELECT status FROM products.stream_files WHERE late OR status <> 'grouped'"
    ).fetchall()
    assert {r[0] for r in late} >= {"late"}
    assert _count(client, "SELECT count(*) FROM products.stream_files WHERE reconverted_in = 2") == 1
    # One workflow, one image and one photometry row per source for each MS: nothing doubled.
    assert _count(client, "SELECT count(*) FROM absurd.workflows") == n_good + 1
    assert _count(client, "SELECT count(*) FROM products.images") == n_good + 1
    n_sources = len(night.truth)
    assert (
        _count(client, "SELECT count(*) FROM products.photometry WHERE image_id IS NOT NULL")
        == (n_good + 1) * n_sources
    )
    assert _count(client, "SELECT count(*) FROM products.caltables") == 1
    # The crash cost attempts at most, never work: every workflow task completed.
    assert (
        _count(
            client, "SELECT count(*) FROM absurd.tasks WHERE workflow_id IS NOT NULL AND state <> 'completed'"
        )
        == 0
    )
    # The monitored sources have light curves; the variable is flagged and the constant ones are not.
    flagged = {
        r[0]: r[1]
        for r in client.conn.execute("SELECT source_name, is_variable FROM products.variability").fetchall()
    }
    assert set(flagged) == set(night.truth)
    assert flagged.pop(VARIABLE) is True
    assert not any(flagged.values())
    # Every image was searched; the calibrator and the catalogue explain all it found: nothing is new.
    assert _count(client, "SELECT count(DISTINCT image_path) FROM products.detections") == n_good + 1
    assert _count(client, "SELECT count(*) FROM products.alerts WHERE kind = 'new_source'") == 0
    client.close()
