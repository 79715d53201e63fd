"""Submission alone (no workers): once per step and version, whatever runs it again or at the same time;
--force makes the next version; bad requests are refused with what is wrong."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from absurd.client import Client
from contimg.reprocess.archive import Archive, ArchiveSettings, simulate_archive
from contimg.reprocess.progress import run_progress
from contimg.reprocess.submit import ReprocessRequest, submit_run
from contimg.tasks.registry import registry

pytestmark = pytest.mark.science


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    return simulate_archive(ArchiveSettings(observations=3), tmp_path_factory.mktemp("archive"))


def _request(archive: Archive, out: Path, **extra: object) -> ReprocessRequest:
    return ReprocessRequest.model_validate(
        {
            "input_dir": archive.directory,
            "output_dir": out,
            "catalogue": archive.catalogue,
            "start": archive.group_times[0],
            "end": archive.group_times[-1],
            "steps": [
                "convert",
                "solve",
                "calibrate",
                "image",
                "photometry",
                "find",
                "lightcurves",
                "mosaic",
            ],
            **extra,
        }
    )


def _count(client: Client, sql: str) -> int:
    row = client.conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def test_twice_and_at_once_submit_each_step_once(dsn: str, archive: Archive, tmp_path: Path) -> None:
    request = _request(archive, tmp_path)
    clients = [Client(dsn, registry=registry) for _ in range(2)]
    outcomes = []
    threads = [threading.Thread(target=lambda c=c: outcomes.append(submit_run(c, request))) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Two commands at once: one run, each observation submitted by exactly one of them.
    assert {o.run_id for o in outcomes} == {outcomes[0].run_id}
    assert sum(o.submitted for o in outcomes) == 3
    assert sum(o.mosaics for o in outcomes) == 1
    client = clients[0]
    again = submit_run(client, request)
    assert (again.new_run, again.submitted, again.skipped, again.mosaics) == (False, 0, 3, 0)
    assert _count(client, "SELECT count(*) FROM absurd.workflows") == 4
    assert _count(client, "SELECT count(*) FROM absurd.tasks") == 3 * 7 + 2
    # Below streaming (priority 0): the chain from convert at -10 to light curves at -4.
    priorities: dict[str, int] = dict(
        client.conn.execute("SELECT name, max(priority) FROM absurd.tasks GROUP BY name").fetchall()
    )
    assert priorities["convert-uvh5"] == -10 and priorities["update-lightcurves"] == -4
    assert max(priorities.values()) < 0
    progress = run_progress(client.conn, again.run_id)
    assert (progress.observations, progress.in_flight, progress.mosaics) == (3, 3, 1)
    assert not progress.finished
    for c in clients:
        c.close()


def test_force_makes_the_next_version(dsn: str, archive: Archive, tmp_path: Path) -> None:
    with Client(dsn, registry=registry) as client:
        first = submit_run(client, _request(archive, tmp_path, steps=["convert", "image"], force=False))
        forced = submit_run(client, _request(archive, tmp_path, steps=["convert", "image"], force=True))
        assert forced.run_id != first.run_id and forced.submitted == 3
        rows = client.conn.execute(
            "SELECT params->>'version', params->>'output_dir' FROM absurd.tasks WHERE name = 'convert-uvh5'"
        ).fetchall()
        assert sorted(r[0] for r in rows) == ["1", "1", "1", "2", "2", "2"]
        images = client.conn.execute(
            "SELECT params->>'ms_path' FROM absurd.tasks WHERE name = 'create-image'"
        ).fetchall()
        assert sum(p.endswith(".v2.ms") for (p,) in images) == 3
        # The unforced request again resumes its own run (version 1): nothing new to submit.
        resumed = submit_run(client, _request(archive, tmp_path, steps=["convert", "image"]))
        assert (resumed.run_id, resumed.submitted) == (first.run_id, 0)


def test_a_later_step_waits_for_the_earlier_workflow(dsn: str, archive: Archive, tmp_path: Path) -> None:
    with Client(dsn, registry=registry) as client:
        submit_run(client, _request(archive, tmp_path, steps=["convert"]))
        # The conversions have not run: the image steps cannot be submitted yet, and say so.
        later = submit_run(client, _request(archive, tmp_path, steps=["convert", "image"]))
        assert later.submitted == 0 and len(later.deferred) == 3
        assert _count(client, "SELECT count(*) FROM absurd.tasks WHERE name = 'create-image'") == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"steps": ["convert", "imaging"]}, "unknown step(s) imaging"),
        ({"overrides": {"imager": {"x": 1}}}, "--set: unknown step(s) imager"),
        ({"input_dir": "/nonexistent/archive"}, "--input-dir /nonexistent/archive: no such directory"),
    ],
)
def test_bad_requests_are_refused(
    dsn: str, archive: Archive, tmp_path: Path, change: dict[str, object], message: str
) -> None:
    with Client(dsn, registry=registry) as client:
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            submit_run(client, _request(archive, tmp_path, **change))
        assert _count(client, "SELECT count(*) FROM products.reprocess_runs") == 0


def test_the_range_is_checked() -> None:
    with pytest.raises(ValueError, match="is before --start"):
        ReprocessRequest.model_validate(
            {
                "input_dir": "/tmp",
                "output_dir": "/tmp",
                "start": "2026-01-02T00:00:00",
                "end": "2026-01-01T00:00:00",
                "steps": ["convert"],
            }
        )
