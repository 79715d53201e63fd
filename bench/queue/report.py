"""The queue benchmark's output: the targets each figure is judged against, the table and the JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass

from rich.console import Console
from rich.table import Table

from bench.queue.plan import KEYS, Run

PEERS = (
    "Peers are not timed here: `python -m bench.peers` runs this engine and PgQueuer side by side, in one "
    "run on one Postgres, each at its best settings and timed the same way."
)


@dataclass(frozen=True)
class Target:
    """A goal a figure is judged against."""

    text: str
    check: Callable[[dict[str, float | None]], bool | None]


def _at_least(key: str, floor: float) -> Callable[[dict[str, float | None]], bool | None]:
    def check(r: dict[str, float | None]) -> bool | None:
        value = r.get(key)
        return None if value is None else value >= floor

    return check


def _at_most(key: str, ceiling: float) -> Callable[[dict[str, float | None]], bool | None]:
    def check(r: dict[str, float | None]) -> bool | None:
        value = r.get(key)
        return None if value is None else value <= ceiling

    return check


def _backlog_ratio(r: dict[str, float | None]) -> bool | None:
    big, small = r.get("drain_per_s_backlog_1m"), r.get("drain_per_s_backlog_10k")
    if big is None or not small:
        return None
    return big >= 0.8 * small


RSS_FLAT_PCT = 10.0
TARGETS = {
    "enqueue_per_s": Target(">= 50,000/s", _at_least("enqueue_per_s", 50_000)),
    "drain_per_s_1w": Target(">= 10,000/s", _at_least("drain_per_s_1w", 10_000)),
    "drain_per_s_4w": Target(">= 10,000/s", _at_least("drain_per_s_4w", 10_000)),
    "latency_p50_ms": Target("<= 5 ms", _at_most("latency_p50_ms", 5.0)),
    "drain_per_s_backlog_1m": Target(">= 80% of the 10k-backlog rate", _backlog_ratio),
    "worker_rss_growth_pct": Target(
        f"flat (<= {RSS_FLAT_PCT:g}%)", _at_most("worker_rss_growth_pct", RSS_FLAT_PCT)
    ),
    "gate_overhead_pct": Target("< 20% slower than plain", _at_most("gate_overhead_pct", 20.0)),
    "dag_overhead_pct": Target("< 20% slower than plain", _at_most("dag_overhead_pct", 20.0)),
}

LABELS = {
    "enqueue_per_s": "enqueue (spawn_many), tasks/s",
    "drain_per_s_1w": "no-op drain, 1 worker, tasks/s",
    "drain_per_s_4w": "no-op drain, 4 workers, tasks/s",
    "latency_p50_ms": "spawn -> start p50, ms",
    "latency_p99_ms": "spawn -> start p99, ms",
    "drain_per_s_backlog_10k": "drain with 10k pending, tasks/s",
    "drain_per_s_backlog_1m": "drain with 1M pending, tasks/s",
    "worker_rss_growth_pct": "worker RSS growth over the big drain, %",
    "commit_per_s": "single-row UPDATE commits/s (1 conn)",
    "drain_per_s_fanout_10k": "workflow fanning out to 10k tasks, tasks/s",
    "drain_per_s_gated": "drain through a gate (limit + breaker), tasks/s",
    "drain_per_s_dag": "drain of 10-task chains (DAG release), tasks/s",
    "gate_overhead_pct": "gate cost vs plain 1-worker drain, %",
    "dag_overhead_pct": "DAG cost vs plain 1-worker drain, %",
}


def verdict(key: str, results: dict[str, float | None]) -> tuple[str, str]:
    """The target text and pass/FAIL/'-' for one key."""
    target = TARGETS.get(key)
    if target is None:
        return "", ""
    ok = target.check(results)
    return target.text, "-" if ok is None else ("pass" if ok else "FAIL")


def render(run: Run, source: str, console: Console) -> None:
    """The readable table, with conditions above and peers below."""
    mode = "QUICK (smaller sizes; not the full benchmark)" if run.quick else "full"
    s = run.sizes
    title = f"absurd queue benchmark - {mode}"
    table = Table(title=title, caption=PEERS, caption_justify="left")
    table.add_column("measurement")
    table.add_column("value", justify="right")
    table.add_column("target")
    table.add_column("result")
    for key in KEYS:
        value = run.results[key]
        shown = (
            "-" if value is None else (f"{value:,.2f}" if key.endswith(("_ms", "_pct")) else f"{value:,.0f}")
        )
        text, ok = verdict(key, run.results)
        style = "red" if ok == "FAIL" else ("green" if ok == "pass" else "")
        label = LABELS[key]
        if key == "drain_per_s_backlog_1m" and s.backlog_large != 1_000_000:
            label = f"drain with {s.backlog_large:,} pending (not 1M), tasks/s"
        table.add_row(label, shown, text, f"[{style}]{ok}[/]" if style else ok)
    console.print(table)
    facts = ", ".join(f"{k}={v}" for k, v in run.server.items())
    console.print(f"server: {source}; {facts}")
    console.print(
        f"workers: python -m absurd worker --concurrency {run.concurrency} (claim batch = free slots, "
        f"at most 256; completer batches up to 500 outcomes, 2 ms linger; NOTIFY wake-up, 1 s fallback poll)"
    )
    console.print(
        f"sizes: enqueue {s.enqueue_tasks:,} in batches of {s.enqueue_batch:,}; drains {s.drain_tasks:,}; "
        f"latency {s.latency_samples} samples; backlogs {s.backlog_small:,} and {s.backlog_large:,} "
        f"(rate over the first {s.backlog_window:,})"
    )
    for name, note in run.notes.items():
        console.print(f"{name}: {note}")
    console.print(f"load average before: {run.loadavg_before}; after: {run.loadavg_after}")


def as_json(run: Run, source: str) -> str:
    """The result keys, plus the conditions under ``meta``."""
    meta = {
        "quick": run.quick,
        "concurrency": run.concurrency,
        "server": run.server,
        "source": source,
        "sizes": asdict(run.sizes),
        "notes": run.notes,
        "loadavg_before": run.loadavg_before,
        "loadavg_after": run.loadavg_after,
    }
    return json.dumps({**run.results, "meta": meta})
