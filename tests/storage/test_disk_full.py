"""A data disk that really fills (a 16 MB tmpfs): the disk guard pauses the conversions behind their
breaker at the critical level, a conversion that would not fit pauses itself instead of failing, and
both resume once space is freed. No task fails, no partial Measurement Set is left, the streaming
converter registers every arrival meanwhile, and every observation is converted once."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from contimg.storage.guard import DiskGuardDaemon
from contimg.storage.policy import load_policy
from science.simulate import SimulatedObservation
from tests.storage.conftest import leave_free
from tests.stream.conftest import StreamRun, deliver, group_id_of, new_stream_run
from tests.support.processes import start_worker, stop_worker, wait_until

MB = 1_000_000
POLICY = """
guard:
  critical: 2 MB
  warning: 4 MB
  resume: 6 MB
  interval_s: 0.3
  retry_s: 1
  hold_s: 600
  paths:
    - path: {ms_dir}
      writers: [convert-uvh5]
"""
WAIT_S = 300.0


def one(run: StreamRun, query: str, *args: object) -> object:
    rows = run.rows(query, *args)
    return rows[0][0] if rows else None


def breaker(run: StreamRun) -> object:
    return one(run, "SELECT breaker_state FROM absurd.gates WHERE key = 'convert-uvh5'")


def group_status(run: StreamRun, group_id: str) -> object:
    return one(run, "SELECT status FROM products.stream_groups WHERE group_id = %s", group_id)


def convert_task(run: StreamRun, group_id: str) -> dict[str, Any]:
    task_id = one(run, "SELECT convert_task_id FROM products.stream_groups WHERE group_id = %s", group_id)
    with psycopg.connect(run.dsn, autocommit=True) as conn:
        cur = conn.execute("SELECT state, gate_key, failures FROM absurd.tasks WHERE id = %s", (task_id,))
        state, gate, failures = cur.fetchone() or (None, None, None)
        runs = [r[0] for r in conn.execute("SELECT state FROM absurd.runs WHERE task_id = %s", (task_id,))]
    return {"id": task_id, "state": state, "gate": gate, "failures": failures, "runs": runs}


def leftovers(ms_dir: Path) -> list[str]:
    """Anything in the MS directory that is not a finished MS: a partial write."""
    return sorted(p.name for p in ms_dir.iterdir() if not p.name.endswith(".ms")) if ms_dir.exists() else []


@pytest.mark.timeout(900)
def test_a_full_disk_pauses_intake_and_loses_nothing(
    dsn: str,
    tmp_path: Path,
    small_disk: Path,
    observations: list[SimulatedObservation],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "stream").mkdir()
    run = new_stream_run(dsn, tmp_path / "stream")
    run.output = small_disk / "ms"
    run.output.mkdir()
    policy_file = tmp_path / "storage.yaml"
    policy_file.write_text(POLICY.format(ms_dir=run.output))
    monkeypatch.setenv("CONTIMG_STORAGE_CONFIG", str(policy_file))
    ids = [group_id_of(obs.subband_paths) for obs in observations]

    daemon_guard = DiskGuardDaemon(load_policy(policy_file), dsn)
    guard = threading.Thread(target=daemon_guard.run, daemon=True)
    guard.start()
    # The breaker exists before anything is spawned, so every conversion is gated by it.
    wait_until(lambda: breaker(run) == "closed", timeout=60, what="the guard's first probe")
    worker = start_worker(
        dsn,
        "--queue", "convert", "--concurrency", "2", "--processes", "2", "--poll-s", "0.2",
        registry="contimg.tasks.registry:registry",
    )  # fmt: skip
    daemon = run.start_daemon("stream")
    try:
        wait_until(lambda: "owning directory" in run.log_text(), timeout=WAIT_S, what="the daemon up")
        deliver(observations[0].subband_paths, run.incoming)
        wait_until(lambda: group_status(run, ids[0]) == "converted", timeout=WAIT_S, what="the first MS")

        # Below the critical level: the guard opens the breaker; the next observation is registered and its
        # conversion spawned, and it waits, pending, instead of failing.
        ballast = leave_free(small_disk, int(1.5 * MB))
        wait_until(lambda: breaker(run) == "open", timeout=60, what="the guard to open the breaker")
        deliver(observations[1].subband_paths, run.incoming)
        wait_until(lambda: group_status(run, ids[1]) == "spawned", timeout=WAIT_S, what="the second spawned")
        registered = one(run, "SELECT count(*) FROM products.stream_files WHERE group_id = %s", ids[1])
        assert registered == 16
        held = convert_task(run, ids[1])
        assert held["state"] == "pending" and held["gate"] == "convert-uvh5" and held["runs"] == []
        assert not (run.output / f"{ids[1]}.ms").exists()

        # Space returns: the guard closes the breaker and the waiting conversion runs.
        ballast.unlink()
        wait_until(lambda: group_status(run, ids[1]) == "converted", timeout=WAIT_S, what="the second MS")

        # Above the critical level but with too little room for an MS: the task pauses itself (sleeps,
        # its breaker opened) rather than start a write casacore would abort on.
        ballast = leave_free(small_disk, int(3.5 * MB))
        deliver(observations[2].subband_paths, run.incoming)
        wait_until(lambda: group_status(run, ids[2]) is not None, timeout=WAIT_S, what="the third spawned")
        wait_until(
            lambda: "suspended" in convert_task(run, ids[2])["runs"],
            timeout=WAIT_S,
            what="the third conversion to pause for lack of room",
        )
        assert breaker(run) == "open"
        assert (
            one(run, "SELECT level FROM products.storage_guard WHERE path = %s", str(run.output))
            == "critical"
        )
        paused = convert_task(run, ids[2])
        assert paused["failures"] == 0 and paused["state"] in ("sleeping", "pending")
        assert leftovers(run.output) == []

        ballast.unlink()
        wait_until(lambda: group_status(run, ids[2]) == "converted", timeout=WAIT_S, what="the third MS")
    finally:
        daemon.terminate()
        daemon.wait(30)
        stop_worker(worker)
        daemon_guard.stop()
        guard.join(10)

    # Every observation converted once, nothing failed, nothing partial left, the breaker closed again.
    assert [group_status(run, g) for g in ids] == ["converted"] * 3
    assert one(run, "SELECT count(*) FROM products.ms_index") == 3
    assert sorted(p.name for p in run.output.iterdir()) == sorted(f"{g}.ms" for g in ids)
    assert one(run, "SELECT count(*) FROM absurd.tasks WHERE state = 'failed' OR failures > 0") == 0
    assert one(run, "SELECT count(*) FROM absurd.dlq") == 0
    assert one(run, "SELECT count(*) FROM absurd.tasks WHERE name = 'convert-uvh5'") == 3
    assert breaker(run) == "closed"
    # The gauges saw the path go critical and come back.
    registry = daemon_guard.metrics.registry
    assert registry.get_sample_value("contimg_storage_level", {"path": str(run.output)}) == 0
    assert (registry.get_sample_value("contimg_storage_free_bytes", {"path": str(run.output)}) or 0) > 6 * MB
    reasons = [r[0] for r in run.rows("SELECT reason FROM absurd.gate_transitions ORDER BY id")]
    assert any(r.startswith("disk guard: ") and "below its critical level" in r for r in reasons)
    assert any("no room to write in" in r for r in reasons)
