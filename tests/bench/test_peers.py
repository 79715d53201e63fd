"""The side-by-side benchmark (``python -m bench.peers``) at a tiny size: every job is drained and the
figures are sane. Nothing here is timed against a threshold."""

from __future__ import annotations

import importlib.util
import io
import json

import pytest
from rich.console import Console

from bench import peers
from bench.processes import stop_workers
from bench.systems import System, pgq
from bench.systems.engine import ANY_DONE, UNFINISHED, EngineSystem
from bench.systems.measure import wait_empty

TINY = peers.Settings(
    n=200, workers=(1,), rounds=1, batch_sizes=(10,), concurrency=(256,), rate=50.0, seconds=1.0
)
NO_PGQUEUER = "PgQueuer is not installed (the 'bench' extra, which '.[dev]' includes)"


def quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


def check_sane(contender: peers.Contender, settings: peers.Settings) -> None:
    assert [d.n for d in contender.drains] == [settings.n] * len(settings.workers)
    for drain in contender.drains:
        assert drain.enqueue_per_s > 0 and drain.drain_s > 0 and drain.drain_per_s > 0
        assert 0 < drain.first_done_s <= drain.drain_s
    latency = contender.latency
    assert latency is not None and latency.samples == round(settings.rate * settings.seconds)
    assert 0 <= latency.p50_ms <= latency.p99_ms


def test_this_engine_drains_every_job_and_reports_sane_figures(dsn: str) -> None:
    # At two slot counts, as the benchmark runs it: each is a configuration of its own.
    settings = peers.Settings(**{**TINY.__dict__, "systems": ("engine",), "concurrency": (256, 64)})
    contenders = peers.run_peers(dsn, settings, quiet())
    assert [c.label for c in contenders] == ["this engine, 256 slots", "this engine, 64 slots"]
    for contender in contenders:
        check_sane(contender, settings)
    report = peers.Report(settings, contenders)
    figures = report.figures()[contenders[0].label]
    # Without PgQueuer there is nothing to take a ratio to.
    assert all(f["ratio"] is None for f in figures.values())
    assert figures["drain_per_s_1w"]["value"] == contenders[0].drain_per_s(1)
    out = quiet()
    peers.render(report, out)
    assert json.loads(peers.as_json(report))["settings"]["n"] == settings.n


@pytest.mark.skipif(
    not (importlib.util.find_spec("pgqueuer") and importlib.util.find_spec("asyncpg")), reason=NO_PGQUEUER
)
def test_pgqueuer_and_this_engine_side_by_side(dsn: str) -> None:
    # This engine as one command that forks its workers (the test above starts it as W commands).
    settings = peers.Settings(**{**TINY.__dict__, "systems": ("engine-forked", "pgqueuer")})
    contenders = peers.run_peers(dsn, settings, quiet())
    assert [c.kind for c in contenders] == ["engine", "pgqueuer"]
    assert contenders[0].label.endswith("--workers W")
    for contender in contenders:
        check_sane(contender, settings)
    figures = peers.Report(settings, contenders).figures()
    # One PgQueuer configuration: it is its own best, and the engine's ratio is its value over PgQueuer's.
    engine, peer = (figures[c.label]["drain_per_s_1w"] for c in contenders)
    assert peer["ratio"] == 1.0
    assert engine["value"] is not None and peer["value"] is not None
    assert engine["ratio"] == pytest.approx(engine["value"] / peer["value"])


def test_a_missing_pgqueuer_is_reported_with_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pgq, "available", lambda: False)
    with pytest.raises(SystemExit, match=r"pip install -e '\.\[bench\]'"):
        peers.run(TINY, "unused: never reached", quiet())


def test_worker_counts_and_batch_sizes_are_checked() -> None:
    assert peers.parse_ints("1, 2,4", "--workers") == (1, 2, 4)
    for bad in ("0", "a,b", ""):
        with pytest.raises(SystemExit, match="--workers"):
            peers.parse_ints(bad, "--workers")


def check_polls(system: System) -> None:
    """``unfinished`` and ``any_done`` through a drain's life: empty, queued, drained."""
    system.reset()
    assert (system.unfinished(), system.any_done()) == (False, False)
    system.enqueue(50, 10_000)
    system.analyze()
    assert (system.unfinished(), system.any_done()) == (True, False)
    procs = system.launch(1)
    try:
        wait_empty(system, procs, timeout_s=120.0)
    finally:
        stop_workers(procs)
    assert (system.unfinished(), system.any_done()) == (False, True)
    assert system.completed() == 50


def test_this_engines_polls_follow_the_drain_and_read_indexes_only(dsn: str) -> None:
    engine = EngineSystem(dsn, 8)
    try:
        check_polls(engine)
        for sql in (UNFINISHED, ANY_DONE):
            plan = "\n".join(r[0] for r in engine.poll.execute("EXPLAIN " + sql).fetchall())
            assert "Seq Scan" not in plan, plan
    finally:
        engine.close()


@pytest.mark.skipif(
    not (importlib.util.find_spec("pgqueuer") and importlib.util.find_spec("asyncpg")), reason=NO_PGQUEUER
)
def test_pgqueuers_polls_follow_the_drain_and_read_indexes_only(dsn: str) -> None:
    pgq.install_schema(dsn)
    peer = pgq.PgQueuerSystem(dsn, 10)
    try:
        check_polls(peer)
        for sql in (pgq.UNFINISHED, pgq.ANY_DONE):
            plan = "\n".join(r[0] for r in peer.poll.execute("EXPLAIN " + sql).fetchall())
            assert "Seq Scan" not in plan, plan
    finally:
        peer.close()
