"""This engine side by side with PgQueuer: ``python -m bench.peers [--n N] [--workers 1,2,4] [--rounds R]
[--batch-sizes 10,100] [--concurrency 256,512] [--rate R] [--seconds S]
[--systems engine,engine-forked,pgqueuer] [--dsn DSN] [--json]``.

Both systems run on the same Postgres (one embedded pgserver, durability settings as the server has them,
reported), in one scratch database holding this engine's migrated schema and PgQueuer's own (``pgq
install``). Each round gives every configuration its turn, the order reversed from one round to the next;
a figure is the best of the rounds. Jobs are no-ops. For each N and W:

- enqueue: N jobs through the system's bulk API in batches of 10,000, jobs per second;
- drain: N / the wall clock from launching W worker processes (start-up included) until no job is left.
  This engine is run both ways an operator may start W workers: W commands, and one command that forks W
  (``absurd worker --workers W``); PgQueuer has no such option and is started as W commands;
- latency: spawn-to-start p50 and p99 on the database clock under a light steady load (``--rate`` single
  spawns per second for ``--seconds``) on one worker process.

Each system runs at two settings, and each is shown: PgQueuer at two batch sizes, this engine at two
slot counts per process (``--concurrency``; more slots mean larger claim and completion batches). Each
figure is also shown as a ratio to the best PgQueuer configuration for that column. PgQueuer is the
optional ``bench`` extra (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import asdict, dataclass, field

import psycopg
from rich.console import Console
from rich.table import Table

from absurd.logging import configure_logging
from bench.postgres import admin_dsn, scratch_database, server_facts
from bench.processes import loadavg
from bench.systems import System, pgq
from bench.systems.engine import EngineSystem
from bench.systems.measure import Drain, Latency, measure_drain, measure_latency

# engine: W commands `absurd worker`; engine-forked: one `absurd worker --workers W`, which forks W.
SYSTEMS = ("engine", "engine-forked", "pgqueuer")


@dataclass(frozen=True)
class Settings:
    """What to run; the defaults are the issue's table."""

    n: int = 30_000
    workers: tuple[int, ...] = (1, 2, 4)
    rounds: int = 2
    batch_sizes: tuple[int, ...] = (10, 100)
    concurrency: tuple[int, ...] = (256, 512)
    rate: float = 200.0
    seconds: float = 10.0
    systems: tuple[str, ...] = SYSTEMS


@dataclass
class Contender:
    """One configuration's measurements across the rounds."""

    label: str
    kind: str
    drains: list[Drain] = field(default_factory=list)
    latency: Latency | None = None

    def enqueue_per_s(self) -> float | None:
        """Best enqueue rate over all the drains' enqueues."""
        return max((d.enqueue_per_s for d in self.drains), default=None)

    def drain_per_s(self, processes: int) -> float | None:
        """Best drain rate over the rounds at ``processes`` worker processes."""
        return max((d.drain_per_s for d in self.drains if d.processes == processes), default=None)

    def first_done_s(self, processes: int) -> float | None:
        """Shortest time from launch to the first job done over the rounds at ``processes`` processes."""
        return min((d.first_done_s for d in self.drains if d.processes == processes), default=None)


@dataclass
class Report:
    """A whole run: the conditions and every configuration's figures."""

    settings: Settings
    contenders: list[Contender]
    server: dict[str, str] = field(default_factory=dict)
    source: str = ""
    loadavg_before: str = ""
    loadavg_after: str = ""

    def columns(self) -> dict[str, tuple[bool, dict[str, float | None]]]:
        """Each column's values by label, and whether higher is better."""
        cols: dict[str, tuple[bool, dict[str, float | None]]] = {
            "enqueue_per_s": (True, {c.label: c.enqueue_per_s() for c in self.contenders})
        }
        for w in self.settings.workers:
            cols[f"drain_per_s_{w}w"] = (True, {c.label: c.drain_per_s(w) for c in self.contenders})
        latencies = {c.label: c.latency for c in self.contenders}
        cols["latency_p50_ms"] = (False, {k: v.p50_ms if v else None for k, v in latencies.items()})
        cols["latency_p99_ms"] = (False, {k: v.p99_ms if v else None for k, v in latencies.items()})
        return cols

    def figures(self) -> dict[str, dict[str, dict[str, float | None]]]:
        """Per label and column: the value and its ratio to the best PgQueuer configuration's."""
        peers = {c.label for c in self.contenders if c.kind == "pgqueuer"}
        out: dict[str, dict[str, dict[str, float | None]]] = {c.label: {} for c in self.contenders}
        for column, (higher, values) in self.columns().items():
            known = [v for label, v in values.items() if label in peers and v is not None]
            best = (max(known) if higher else min(known)) if known else None
            for label, value in values.items():
                ratio = value / best if value is not None and best else None
                out[label][column] = {"value": value, "ratio": ratio}
        return out


def parse_ints(text: str, what: str) -> tuple[int, ...]:
    """A comma-separated list of positive integers."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise SystemExit(f"{what}: expected comma-separated whole numbers, got {text!r}") from None
    if not values or min(values) < 1:
        raise SystemExit(f"{what}: expected whole numbers of at least 1, got {text!r}")
    return values


def build(dsn: str, settings: Settings) -> list[tuple[Contender, System]]:
    """The configurations to compare, each with the system that runs it."""
    out: list[tuple[Contender, System]] = []
    for name in ("engine", "engine-forked"):
        if name in settings.systems:
            for slots in settings.concurrency:
                engine = EngineSystem(dsn, slots, forked=name == "engine-forked")
                out.append((Contender(engine.label, "engine"), engine))
    if "pgqueuer" in settings.systems:
        pgq.install_schema(dsn)
        for batch in settings.batch_sizes:
            peer = pgq.PgQueuerSystem(dsn, batch)
            out.append((Contender(peer.label, "pgqueuer"), peer))
    return out


def run_peers(dsn: str, settings: Settings, console: Console) -> list[Contender]:
    """Every configuration's drains (alternating, ``settings.rounds`` rounds) and latency on ``dsn``."""
    pairs = build(dsn, settings)
    try:
        for r in range(settings.rounds):
            order = pairs if r % 2 == 0 else pairs[::-1]
            for w in settings.workers:
                for contender, system in order:
                    drain = measure_drain(system, settings.n, w)
                    contender.drains.append(drain)
                    console.log(
                        f"round {r + 1}, W={w}, {contender.label}: enqueue {drain.enqueue_per_s:,.0f}/s, "
                        f"drain {drain.drain_per_s:,.0f}/s ({drain.drain_s:.2f} s, "
                        f"first job done after {drain.first_done_s:.2f} s)"
                    )
        for contender, system in pairs:
            contender.latency = measure_latency(system, settings.rate, settings.seconds)
            console.log(
                f"latency, {contender.label}: p50 {contender.latency.p50_ms:.1f} ms, "
                f"p99 {contender.latency.p99_ms:.1f} ms"
            )
            system.reset()
    finally:
        for _, system in pairs:
            system.close()
    return [c for c, _ in pairs]


def run(settings: Settings, dsn: str | None, console: Console) -> Report:
    """Start (or use) the server, run everything in a scratch database, and return the report."""
    if "pgqueuer" in settings.systems and not pgq.available():
        raise SystemExit(pgq.MISSING)
    report = Report(settings, [], loadavg_before=loadavg())
    with admin_dsn(dsn) as (admin, source), scratch_database(admin) as scratch:
        report.source = source
        with psycopg.connect(scratch) as conn:
            report.server = server_facts(conn)
        report.contenders = run_peers(scratch, settings, console)
    report.loadavg_after = loadavg()
    return report


def cell(value: float | None, ratio: float | None, digits: int) -> str:
    """A figure with its ratio to the best PgQueuer configuration."""
    if value is None:
        return "-"
    shown = f"{value:,.{digits}f}"
    return shown if ratio is None else f"{shown} ({ratio:.2f}x)"


def render(report: Report, console: Console) -> None:
    """The table, then the conditions it was measured under."""
    s = report.settings
    table = Table(title=f"side by side, N = {s.n:,} no-op jobs, best of {s.rounds} round(s)")
    table.add_column("system", no_wrap=True)
    table.add_column("enqueue/s", justify="right")
    for w in s.workers:
        table.add_column(f"drain/s W={w}", justify="right")
    table.add_column("p50 ms", justify="right")
    table.add_column("p99 ms", justify="right")
    figures = report.figures()
    for label, columns in figures.items():
        row = [label]
        for column, f in columns.items():
            row.append(cell(f["value"], f["ratio"], 1 if column.endswith("_ms") else 0))
        table.add_row(*row)
    console.print(table)
    for c in report.contenders:
        shown = ", ".join(f"W={w} {v:.2f} s" for w in s.workers if (v := c.first_done_s(w)) is not None)
        console.print(f"{c.label}: launch to the first job done (start-up), fastest round: {shown}")
    facts = ", ".join(f"{k}={v}" for k, v in report.server.items())
    console.print(f"server: {report.source}; {facts}")
    console.print(
        "ratios: to the best PgQueuer configuration in that column (for latency, the lowest). "
        "drain: wall clock from launching the worker processes (start-up included) until no job is left, "
        "polled every 50 ms. enqueue: bulk API, batches of 10,000. "
        f"latency: {s.rate:g} single spawns/s for {s.seconds:g} s on 1 worker process, database clock."
    )
    console.print(
        f"this engine: W commands python -m absurd worker --concurrency C (C = "
        f"{', '.join(map(str, s.concurrency))}), or one with "
        "--workers W, which forks W worker processes once it has started up; PgQueuer: W commands, "
        "QueueManager over asyncpg in uvloop, async no-op entrypoint, no concurrency limit, pgq install "
        "(durable)."
    )
    console.print(f"load average before: {report.loadavg_before}; after: {report.loadavg_after}")


def as_json(report: Report) -> str:
    """Settings, conditions, every drain, and the figures with their ratios."""
    return json.dumps(
        {
            "settings": asdict(report.settings),
            "server": report.server,
            "source": report.source,
            "loadavg_before": report.loadavg_before,
            "loadavg_after": report.loadavg_after,
            "figures": report.figures(),
            "drains": {
                c.label: [{**asdict(d), "drain_per_s": d.drain_per_s} for d in c.drains]
                for c in report.contenders
            },
            "latency": {c.label: asdict(c.latency) if c.latency else None for c in report.contenders},
        }
    )


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, run the comparison and print the table or the JSON object."""
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__.splitlines()[0])
    d = Settings()
    parser.add_argument("--dsn", help="server to run on (default: $ABSURD_DSN, else a temporary pgserver)")
    parser.add_argument("--n", type=int, default=d.n, help=f"jobs per drain (default {d.n:,})")
    parser.add_argument("--workers", default="1,2,4", help="worker process counts (default 1,2,4)")
    parser.add_argument("--rounds", type=int, default=d.rounds, help="rounds, best of (default 2)")
    parser.add_argument("--batch-sizes", default="10,100", help="PgQueuer batch sizes (default 10,100)")
    parser.add_argument(
        "--concurrency", default="256,512", help="this engine's slots per process (default 256,512)"
    )
    parser.add_argument("--rate", type=float, default=d.rate, help="latency load, spawns/s (default 200)")
    parser.add_argument("--seconds", type=float, default=d.seconds, help="latency load length (default 10)")
    parser.add_argument(
        "--systems", default=",".join(SYSTEMS), help="any of engine, engine-forked, pgqueuer (default: all)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = parser.parse_args(argv)
    systems = tuple(s.strip() for s in args.systems.split(",") if s.strip())
    if not systems or set(systems) - set(SYSTEMS):
        parser.error(f"--systems: choose from {', '.join(SYSTEMS)}")
    if args.n < 1 or args.rounds < 1 or args.rate <= 0 or args.seconds <= 0:
        parser.error("--n, --rounds, --rate and --seconds must be positive")
    settings = Settings(
        n=args.n,
        workers=parse_ints(args.workers, "--workers"),
        rounds=args.rounds,
        batch_sizes=parse_ints(args.batch_sizes, "--batch-sizes"),
        concurrency=parse_ints(args.concurrency, "--concurrency"),
        rate=args.rate,
        seconds=args.seconds,
        systems=systems,
    )
    # With --json the progress log and table go to stderr, so stdout holds only the JSON object.
    console = Console(stderr=args.json, width=max(140, shutil.get_terminal_size().columns))
    configure_logging("WARNING")
    report = run(settings, args.dsn, console)
    render(report, console)
    if args.json:
        sys.stdout.write(as_json(report) + "\n")


if __name__ == "__main__":
    main()
