"""A write that runs out of space: reported as such, naming the path and the free space, with nothing
left behind, and the process that asked for it still alive (casacore itself aborts on a full disk)."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import psycopg
import pytest
from pydantic import BaseModel

import absurd
from absurd.client import Client
from absurd.worker import Worker, WorkerSettings
from contimg.storage.guard import DiskGuard
from contimg.storage.nospace import is_no_space, room_to_write
from contimg.storage.policy import load_policy
from science.convert import convert_group
from science.grouping import find_groups
from science.simulate import SimulatedObservation
from tests.storage.conftest import leave_free
from tests.support.processes import wait_until


def test_a_conversion_onto_a_full_disk_raises_enospc_and_leaves_no_partial_ms(
    small_disk: Path, observations: list[SimulatedObservation]
) -> None:
    (group,) = find_groups(observations[0].subband_paths[0].parent)
    out = small_disk / "ms"
    out.mkdir()
    leave_free(small_disk, 500_000)  # an MS of this observation takes about 1.9 MB
    with pytest.raises(OSError) as err:
        convert_group(group, out)
    assert err.value.errno == errno.ENOSPC
    assert is_no_space(err.value)
    assert f"no space left writing {out}/.{group.group_id}.ms.partial-" in str(err.value)
    assert "bytes free on" in str(err.value)
    assert list(out.iterdir()) == []
    # With room again, the same call succeeds: nothing of the failed attempt is in the way.
    (small_disk / "ballast").unlink()
    assert convert_group(group, out).ms_path == out / f"{group.group_id}.ms"


@pytest.mark.parametrize(
    ("exc", "full"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), True),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), True),
        (RuntimeError("FilebufIO: write error for file x/table.f0: No space left on device"), True),
        (OSError(errno.EACCES, "Permission denied"), False),
        (ValueError("bad"), False),
    ],
)
def test_what_counts_as_a_full_disk(exc: BaseException, full: bool) -> None:
    assert is_no_space(exc) is full
    try:
        raise RuntimeError("while writing") from exc
    except RuntimeError as wrapped:
        assert is_no_space(wrapped) is full


class FillParams(BaseModel):
    path: Path
    size: int


fill_registry = absurd.Registry()


@fill_registry.task("fill-disk", params=FillParams)
def fill_disk(ctx: absurd.TaskContext, params: FillParams) -> dict[str, str]:
    """Write ``size`` bytes to ``path`` as products are written: to a temporary name, removed on failure."""
    with room_to_write(ctx, params.path.parent):
        partial = params.path.with_name(f".{params.path.name}.partial")
        try:
            with partial.open("wb") as f:
                f.write(b"\0" * params.size)
                f.flush()
                os.fsync(f.fileno())
            partial.rename(params.path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    return {"path": str(params.path)}


def test_a_task_whose_write_fills_the_disk_sleeps_and_retries_when_the_guard_frees_it(
    dsn: str, small_disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = small_disk / "out"
    out.mkdir()
    policy_file = tmp_path / "storage.yaml"
    policy_file.write_text(
        f"guard:\n  critical: 100 kB\n  warning: 200 kB\n  resume: 3 MB\n  retry_s: 0.5\n"
        f"  paths:\n    - {{path: {out}, writers: [fill-disk]}}\n"
    )
    monkeypatch.setenv("CONTIMG_STORAGE_CONFIG", str(policy_file))
    guard = DiskGuard(dsn, load_policy())
    with psycopg.connect(dsn, autocommit=True) as conn:
        guard.check(conn)  # gives fill-disk its breaker before the task is spawned
    ballast = leave_free(small_disk, 1_000_000)
    worker = Worker(fill_registry, WorkerSettings(queues=["default"], concurrency=1, poll_s=0.1), dsn)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        with Client(dsn, registry=fill_registry) as client:
            # The check before the write passes (1 MB free, 100 kB to keep); the 2 MB write does not fit.
            task_id = client.spawn("fill-disk", {"path": str(out / "big.bin"), "size": 2_000_000}).task_id

            def runs() -> list[str]:
                return [str(r["state"]) for r in client.runs(task_id)]

            wait_until(lambda: "suspended" in runs(), timeout=60, what="the task to pause")
            task = client.get_task(task_id)
            assert task["failures"] == 0 and task["state"] in ("sleeping", "pending")
            assert list(out.iterdir()) == []  # the partial file is gone
            gate = client.gate("fill-disk")
            assert gate["breaker_state"] == "open"
            reason = gate["transitions"][0]["reason"]
            assert (
                f"no room to write in {out}" in reason and "free of" in reason and "No space left" in reason
            )
            with psycopg.connect(dsn, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT level, held_keys FROM products.storage_guard WHERE path = %s", (str(out),)
                ).fetchone()
                assert row == ("critical", ["fill-disk"])
                # Still full: the guard keeps the breaker open.
                guard.check(conn)
                assert client.gate("fill-disk")["breaker_state"] == "open"
                ballast.unlink()
                guard.check(conn)
            assert client.gate("fill-disk")["breaker_state"] == "closed"
            assert client.wait_result(task_id, timeout_s=60) == {"path": str(out / "big.bin")}
            assert client.get_task(task_id)["failures"] == 0
            assert (out / "big.bin").stat().st_size == 2_000_000
            assert client.dlq() == []
    finally:
        worker.stop()
        thread.join(30)
