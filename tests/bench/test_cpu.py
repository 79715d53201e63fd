"""The CPU-per-job benchmark (``python -m bench.cpu``) at a tiny size: it drains and reports both parts."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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


def test_a_process_tree_counts_its_forked_children() -> None:
    # The parent forks a child that spins for 0.3 s of CPU, waits for a line from it and then sleeps: its
    # own CPU is small, its tree's holds the child's (as `absurd worker --workers W` holds its workers).
    script = (
        "import os, sys, time\n"
        "r, w = os.pipe()\n"
        "if os.fork() == 0:\n"
        "    end = time.process_time() + 0.3\n"
        "    while time.process_time() < end: pass\n"
        "    os.write(w, b'x'); time.sleep(30); os._exit(0)\n"
        "os.read(r, 1); print('spun', flush=True); time.sleep(30)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"spun\n"
        alone = cpu.tree_cpu_s(proc.pid) - sum(cpu.tree_cpu_s(c) for c in _children(proc.pid))
        assert cpu.tree_cpu_s(proc.pid) >= 0.25
        assert alone < 0.25
    finally:
        proc.kill()
        proc.wait()


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
