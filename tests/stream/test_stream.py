"""The streaming converter end to end: files arrive out of order, late, twice and broken, and the
daemon is killed in the middle; every group is still converted exactly once."""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from contimg.cli import app
from contimg.stream import store as stream_store
from contimg.stream.watch import SettledFile
from science.grouping import FILENAME_TIME_FORMAT, parse_subband_path
from science.simulate import SimulatedObservation
from tests.stream.conftest import StreamRun, deliver, group_id_of, new_stream_run, renamed
from tests.support.processes import wait_until

# Records every new_ms emission: absurd.events keeps only the latest payload per name.
_LOG_NEW_MS = """
CREATE TABLE public.new_ms_log (payload jsonb NOT NULL);
CREATE FUNCTION public.log_new_ms() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.new_ms_log (payload) VALUES (NEW.payload);
    RETURN NEW;
END $$;
CREATE TRIGGER log_new_ms AFTER INSERT OR UPDATE ON absurd.events
    FOR EACH ROW WHEN (NEW.name = 'new_ms') EXECUTE FUNCTION public.log_new_ms();
"""


def stream_status(dsn: str) -> dict[str, object]:
    """`contimg stream status --json`, parsed."""
    result = CliRunner().invoke(app, ["stream", "status", "--json", "--dsn", dsn])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def group_states(run: StreamRun) -> dict[str, str]:
    """Every sealed group's status, by group id."""
    return dict(run.rows("SELECT group_id, status FROM products.stream_groups"))


def test_registering_a_file_twice_changes_nothing(dsn: str, tmp_path: Path) -> None:
    path = tmp_path / "2025-06-02T03:00:00_sb03.hdf5"
    parsed = parse_subband_path(path)
    assert parsed is not None
    now = datetime.now(UTC)
    settled = SettledFile(file=parsed, size_bytes=10, arrived_at=now, first_seen_at=now)
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert stream_store.register_file(conn, settled) is True
        again = SettledFile(file=parsed, size_bytes=99, arrived_at=now, first_seen_at=now)
        assert stream_store.register_file(conn, again) is False
        rows = conn.execute("SELECT size_bytes, status FROM products.stream_files").fetchall()
    assert rows == [(10, "new")]


# The waits below guard against a hang, not a slow machine: on two busy cores (two suites at once) the
# conversions of this night took longer than 120 s.
DEADLINE_S = 400.0


@pytest.mark.timeout(1500)
def test_streaming_night_with_restart(
    stream_run: StreamRun, observations: list[SimulatedObservation], tmp_path: Path
) -> None:
    run = stream_run
    with psycopg.connect(run.dsn, autocommit=True) as conn:
        conn.execute(_LOG_NEW_MS)
    a, b, c = (obs.subband_paths for obs in observations)
    # A fourth group an hour later: C's files renamed, one of them cut in half.
    broken = [renamed(p, 3600.0, tmp_path / "broken") for p in c]
    broken[7].write_bytes(broken[7].read_bytes()[: broken[7].stat().st_size // 2])
    held_back = b[5]  # arrives after its group was converted without it
    middle = sorted(c, key=lambda p: p.name)[8]
    stray = renamed(middle, 1.0, tmp_path / "stray")  # a second file for one of C's subbands
    ids = {name: group_id_of(paths) for name, paths in (("a", a), ("b", b), ("c", c), ("d", broken))}

    rng = random.Random(110)
    first = a + c[:8]
    rest = c[8:] + broken + [p for p in b if p != held_back] + [stray]
    rng.shuffle(first)
    rng.shuffle(rest)

    daemon = run.start_daemon("first")
    # Files delivered before the daemon looks (it takes seconds to start on a busy machine) would have
    # arrived longer than the subband timeout ago by then, and C's first half be converted on its own.
    wait_until(lambda: "owning directory" in run.log_text(), timeout=DEADLINE_S, what="the first daemon up")
    deliver(first, run.incoming)
    wait_until(lambda: ids["a"] in group_states(run), timeout=DEADLINE_S, what="group A sealed")
    # Killed mid-night: C is half registered, A spawned and perhaps not yet handed on.
    daemon.send_signal(signal.SIGKILL)
    assert daemon.wait(30) == -signal.SIGKILL
    deliver(rest, run.incoming)
    deliver([a[3]], run.incoming)  # the same file again, under the same name

    daemon = run.start_daemon("second", "--poll")
    try:
        wait_until(
            lambda: group_states(run).get(ids["b"]) == "converted",
            timeout=DEADLINE_S,
            what="group B converted",
        )
        deliver([held_back], run.incoming)
        wait_until(
            lambda: run.rows(
                "SELECT 1 FROM products.stream_files WHERE path = %s AND status = 'late'",
                str(run.incoming / held_back.name),
            ),
            timeout=DEADLINE_S,
            what="the held-back subband recorded as late",
        )
        wait_until(
            lambda: run.rows(
                "SELECT 1 FROM products.stream_groups "
                "WHERE group_id = %s AND version = 2 AND status = 'converted'",
                ids["b"],
            ),
            timeout=DEADLINE_S,
            what="group B reconverted with its late subband",
        )
        expected = {ids["a"]: "converted", ids["b"]: "converted", ids["c"]: "converted", ids["d"]: "failed"}
        try:
            wait_until(lambda: group_states(run) == expected, timeout=DEADLINE_S, what="every group ended")
        except AssertionError as exc:
            tasks = run.rows("SELECT id, idempotency_key, state, last_error FROM absurd.tasks ORDER BY id")
            raise AssertionError(
                f"{exc}: groups {group_states(run)}, expected {expected}, tasks {tasks}"
            ) from None
        report = stream_status(run.dsn)
    finally:
        daemon.send_signal(signal.SIGTERM)
        exit_code = daemon.wait(30)
    assert exit_code == 0, run.log_text()[-2000:]

    converted = {ids["a"], ids["b"], ids["c"]}
    # Every group converted exactly once per version: B once without its held-back subband, and once more
    # (version 2) when it arrived late.
    tasks = run.rows(
        "SELECT idempotency_key, count(*) FROM absurd.tasks WHERE name = 'convert-uvh5' GROUP BY 1"
    )
    expected_keys = [f"convert-uvh5:{g}" for g in ids.values()] + [f"convert-uvh5:{ids['b']}:v2"]
    assert sorted(tasks) == sorted((k, 1) for k in expected_keys)
    ms_rows = run.rows(
        "SELECT group_id, path, subbands_missing, version, superseded_by, id FROM products.ms_index"
    )
    assert sorted(r[0] for r in ms_rows) == sorted([*converted, ids["b"]])
    b_rows = sorted((r for r in ms_rows if r[0] == ids["b"]), key=lambda r: r[3])
    (_, v1_path, v1_missing, _, v1_superseded, _), (_, v2_path, v2_missing, _, v2_superseded, v2_id) = b_rows
    assert v1_missing == ["sb05"] and v2_missing == []
    assert v1_superseded == v2_id and v2_superseded is None
    assert Path(v2_path).name == f"{ids['b']}.v2.ms" and Path(v1_path).name == f"{ids['b']}.ms"
    for _, path, *_ in ms_rows:
        assert Path(path).is_dir() and Path(path).parent == run.output.resolve()

    # new_ms once per conversion, naming its MS: twice for B, v1 then v2.
    emitted = [p for (p,) in run.rows("SELECT payload FROM public.new_ms_log")]
    assert sorted(p["group_id"] for p in emitted) == sorted([*converted, ids["b"]])
    by_version = {(r[0], r[3]): r[1] for r in ms_rows}
    for payload in emitted:
        assert payload["ms_path"] == by_version[(payload["group_id"], payload["version"])]
        assert payload["mid_mjd"] > 60000 and payload["latency_s"] > 0

    # The broken group is a dead letter whose reason names the file.
    (failed_task, error), *_ = run.rows(
        "SELECT convert_task_id, error FROM products.stream_groups WHERE group_id = %s", ids["d"]
    )
    cut = str(run.incoming.resolve() / broken[7].name)
    assert cut in error and "cannot read as UVH5" in error
    (dlq_reason,) = run.rows("SELECT reason FROM absurd.dlq WHERE task_id = %s", failed_task)
    assert dlq_reason[0]

    # Nothing lost or doubled: every delivered file registered once, the late and stray ones recorded.
    files = dict(run.rows("SELECT path, status FROM products.stream_files"))
    delivered = {run.incoming.resolve() / p.name for p in a + b + c + broken + [stray]}
    assert {Path(p) for p in files} == delivered
    assert files[str(run.incoming.resolve() / held_back.name)] == "late"
    assert files[str(run.incoming.resolve() / stray.name)] == "duplicate"
    assert sum(s == "grouped" for s in files.values()) == 4 * 16 - 1
    assert "late subband file" in run.log_text()
    assert "reconverting the group as a new version" in run.log_text()
    (reconverted_in,) = run.rows(
        "SELECT reconverted_in FROM products.stream_files WHERE path = %s",
        str(run.incoming.resolve() / held_back.name),
    )
    assert reconverted_in == (2,)

    assert report["converted_groups"] == 3 and report["failed_groups"] == 1
    # B is whole since its late subband came in.
    assert report["pending_groups"] == 0 and report["incomplete_groups"] == 0
    assert report["late_files"] == 2 and report["duplicate_files"] == 1
    latencies = [r[0] for r in run.rows("SELECT latency_s FROM products.stream_groups WHERE latency_s > 0")]
    assert len(latencies) == 3
    assert report["latency_p50_s"] == statistics.median(latencies)
    assert report["throughput_per_hour"] == 3


def test_restart_seals_a_timed_out_group_with_the_files_already_on_disk(dsn: str, tmp_path: Path) -> None:
    # A daemon killed with half of a group registered: by the time the next one starts, the group has
    # timed out, and the rest of its files (the earliest among them) are on disk but not yet settled.
    run = new_stream_run(dsn, tmp_path)
    incoming = run.incoming.resolve()
    stamps = {i: datetime(2025, 6, 2, 3, 0, 10 + i, tzinfo=UTC) for i in range(16)}
    stamps[12] = datetime(2025, 6, 2, 3, 0, 5, tzinfo=UTC)
    paths = {i: incoming / f"{t.strftime(FILENAME_TIME_FORMAT)}_sb{i:02d}.hdf5" for i, t in stamps.items()}
    for path in paths.values():
        path.write_bytes(b"subband")
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(8):
            parsed = parse_subband_path(paths[i])
            assert parsed is not None
            settled = SettledFile(file=parsed, size_bytes=7, arrived_at=long_ago, first_seen_at=long_ago)
            assert stream_store.register_file(conn, settled)

    daemon = run.start_daemon("restarted", "--poll")
    try:
        wait_until(lambda: group_states(run), timeout=120, what="the group sealed")
    finally:
        daemon.send_signal(signal.SIGTERM)
        exit_code = daemon.wait(30)
    assert exit_code == 0, run.log_text()[-2000:]
    earliest = stamps[12].strftime(FILENAME_TIME_FORMAT)
    assert run.rows("SELECT group_id, n_files, subbands_missing FROM products.stream_groups") == [
        (earliest, 16, [])
    ]
    files = run.rows("SELECT group_id, status, count(*) FROM products.stream_files GROUP BY 1, 2")
    assert files == [(earliest, "grouped", 16)]
    assert run.rows("SELECT idempotency_key FROM absurd.tasks") == [(f"convert-uvh5:{earliest}",)]


def test_file_still_being_written_is_not_read(dsn: str, tmp_path: Path) -> None:
    run = new_stream_run(dsn, tmp_path)
    daemon = run.start_daemon("slow", "--policy", "skip", timeout_s=3.0)
    target = run.incoming / "2025-06-02T05:00:00_sb04.hdf5"
    chunk, n_chunks = 4096, 10
    finished: list[datetime] = []

    def write_slowly() -> None:
        with target.open("wb") as out:
            for _ in range(n_chunks):
                out.write(os.urandom(chunk))
                out.flush()
                time.sleep(0.4)  # less than the 1 s settle time: the file never looks finished
        finished.append(datetime.now(UTC))

    try:
        wait_until(lambda: "owning directory" in run.log_text(), timeout=60, what="the daemon up")
        writer = threading.Thread(target=write_slowly)
        writer.start()
        writer.join()
        (size, registered_at), *_ = wait_until(
            lambda: run.rows(
                "SELECT size_bytes, registered_at FROM products.stream_files WHERE path = %s", str(target)
            ),
            timeout=30,
            what="the file registered",
        )
        # A lone subband times out; under policy skip it is given up, not converted.
        wait_until(lambda: group_states(run), timeout=30, what="the lone group sealed")
    finally:
        daemon.send_signal(signal.SIGTERM)
        exit_code = daemon.wait(30)
    assert size == chunk * n_chunks
    assert registered_at >= finished[0]
    assert list(group_states(run).values()) == ["skipped"]
    (error,) = run.rows("SELECT error FROM products.stream_groups")
    assert "policy skip" in error[0] and "sb00" in error[0]
    assert run.rows("SELECT count(*) FROM absurd.tasks") == [(0,)]
    assert exit_code == 0 and "stream converter stopped" in run.log_text()


def test_status_table(dsn: str) -> None:
    result = CliRunner().invoke(app, ["stream", "status", "--dsn", dsn])
    assert result.exit_code == 0, result.output
    assert "pending groups" in result.stdout and "latency p50 / max" in result.stdout
