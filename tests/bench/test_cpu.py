"""The CPU-per-job benchmark (``python -m bench.cpu``) at a tiny size: it drains and reports both parts."""

from __future__ import annotations

import re

import pytest

from bench import cpu


def test_it_reports_the_workers_and_the_servers_cpu_per_job(capsys: pytest.CaptureFixture[str]) -> None:
    # CPU time is read in clock ticks (10 ms): 2,000 jobs give the server several ticks of work, where 200
    # could come to none now that the benchmark's polls no longer count the queue.
    cpu.main(["--systems", "engine", "--n", "2000", "--rounds", "1"])
    line = capsys.readouterr().out.strip()
    found = re.search(r"W=1: [\d,]+ jobs/s; CPU per job: workers (\d+) us, server (\d+) us", line)
    assert found, line
    assert int(found.group(1)) > 0 and int(found.group(2)) > 0
