"""``python -m bench.profile``: the server log it reads is folded into statements per job and the statements
that take the most time."""

from __future__ import annotations

from bench.profile import completion_batches, shape, statements

LOG = """\
2026-11-30 03:00:00.001 UTC [11] LOG:  duration: 0.050 ms  parse <unnamed>: SELECT * FROM absurd.claim($1)
2026-11-30 03:00:00.002 UTC [11] LOG:  duration: 0.020 ms  bind <unnamed>: SELECT * FROM absurd.claim($1)
2026-11-30 03:00:00.003 UTC [11] LOG:  duration: 4.000 ms  execute <unnamed>: SELECT * FROM absurd.claim($1)
2026-11-30 03:00:00.004 UTC [11] DETAIL:  parameters: $1 = 'default', $2 = 'w1'
2026-11-30 03:00:00.005 UTC [12] LOG:  duration: 9.500 ms  execute <unnamed>: SELECT absurd.complete_runs($1)
2026-11-30 03:00:00.006 UTC [12] LOG:  duration: 0.500 ms  statement: SELECT count(*) FROM t WHERE n = 42
2026-11-30 03:00:00.007 UTC [12] LOG:  duration: 0.700 ms  statement: SELECT count(*) FROM t WHERE n = 7
"""


def test_literals_and_parameters_fold_into_one_shape() -> None:
    assert shape("SELECT a FROM t WHERE n = 42 AND s = 'x'") == "SELECT a FROM t WHERE n = ? AND s = ?"
    assert shape("SELECT claim($1,\n  $2)") == "SELECT claim($, $)"


def test_statements_per_job_count_executions_and_time_counts_every_phase() -> None:
    found = statements(LOG, jobs=2)
    assert found["statements_per_job"] == 2.0  # 1 claim + 1 completion + 2 counts, over 2 jobs
    top = found["top_by_server_ms"]
    assert isinstance(top, list)
    assert top[0]["statement"].startswith("SELECT absurd.complete_runs")
    claim = next(t for t in top if "claim" in t["statement"])
    assert claim["calls"] == 1 and claim["total_ms"] == 4.1
    count = next(t for t in top if "count" in t["statement"])
    assert count["calls"] == 2 and count["total_ms"] == 1.2


def test_the_completion_call_is_timed_per_task_at_each_batch_size(dsn: str) -> None:
    timings = completion_batches(dsn, sizes=(5, 20), tries=1, backlog=100)
    assert list(timings) == ["batch 5, us per task", "batch 20, us per task"]
    assert all(us > 0 for us in timings.values())
