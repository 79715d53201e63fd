"""What the queue benchmark measures and at which sizes: result keys, measurements, and the run record."""

from __future__ import annotations

from dataclasses import dataclass, field

# Result keys, in the order the table shows them.
KEYS = (
    "enqueue_per_s",
    "drain_per_s_1w",
    "drain_per_s_4w",
    "latency_p50_ms",
    "latency_p99_ms",
    "drain_per_s_backlog_10k",
    "drain_per_s_backlog_1m",
    "worker_rss_growth_pct",
    "commit_per_s",
    "drain_per_s_fanout_10k",
    "drain_per_s_gated",
    "drain_per_s_dag",
    "gate_overhead_pct",
    "dag_overhead_pct",
)

# Measurements, each producing some of KEYS; --only picks measurements through the keys they produce.
MEASUREMENT_KEYS = {
    "commit": ("commit_per_s",),
    "enqueue": ("enqueue_per_s",),
    "drain_1w": ("drain_per_s_1w",),
    "drain_4w": ("drain_per_s_4w",),
    "latency": ("latency_p50_ms", "latency_p99_ms"),
    "backlog_10k": ("drain_per_s_backlog_10k",),
    "backlog_1m": ("drain_per_s_backlog_1m", "worker_rss_growth_pct"),
    "fanout": ("drain_per_s_fanout_10k",),
    "gated": ("drain_per_s_gated", "gate_overhead_pct"),
    "dag": ("drain_per_s_dag", "dag_overhead_pct"),
}


@dataclass(frozen=True)
class Sizes:
    """How many tasks each measurement uses; --quick shrinks them."""

    enqueue_tasks: int
    enqueue_batch: int
    drain_tasks: int
    latency_samples: int
    backlog_small: int
    backlog_large: int
    backlog_window: int
    commit_seconds: float


FULL = Sizes(
    enqueue_tasks=200_000,
    enqueue_batch=10_000,
    drain_tasks=50_000,
    latency_samples=400,
    backlog_small=10_000,
    backlog_large=1_000_000,
    backlog_window=100_000,
    commit_seconds=3.0,
)
QUICK = Sizes(
    enqueue_tasks=50_000,
    enqueue_batch=10_000,
    drain_tasks=20_000,
    latency_samples=200,
    backlog_small=10_000,
    backlog_large=200_000,
    backlog_window=50_000,
    commit_seconds=2.0,
)


@dataclass
class Run:
    """What one benchmark run measured, and under which conditions."""

    quick: bool
    sizes: Sizes
    concurrency: int
    results: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(KEYS))
    notes: dict[str, str] = field(default_factory=dict)
    server: dict[str, str] = field(default_factory=dict)
    loadavg_before: str = ""
    loadavg_after: str = ""


def parse_only(text: str | None) -> set[str]:
    """Measurements producing the keys named in --only (all when not given)."""
    if not text:
        return set(MEASUREMENT_KEYS)
    wanted = {k.strip() for k in text.split(",") if k.strip()}
    unknown = wanted - set(KEYS)
    if unknown:
        raise SystemExit(
            f"--only: unknown key(s) {', '.join(sorted(unknown))}; choose from {', '.join(KEYS)}"
        )
    return {name for name, keys in MEASUREMENT_KEYS.items() if wanted & set(keys)}
