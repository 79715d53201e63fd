"""`contimg storage`: where the space goes (by product kind and by night), what the retention policy would
remove now (`--dry-run`), `prune` to remove it, `guard` to run the disk guard, `removals` to list what
was removed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from absurd.cli.toolkit import Dsn, JsonOut, console, emit_json, guarded, table
from absurd.database import connect, resolve_dsn
from contimg.cli.base import science_app

# No arguments shows the usage, not the help.
app = science_app(
    help="Storage: usage by kind and night, retention (prune) and the disk guard.", no_args_is_help=False
)

PolicyOpt = Annotated[
    Path | None,
    typer.Option(
        "--policy",
        envvar="CONTIMG_STORAGE_CONFIG",
        help="Storage policy YAML (default: the built-in policy).",
    ),
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Only show what the policy would remove now.")]


def _human(n: int) -> str:
    from contimg.storage.guard import human

    return human(n)


def _print_removals(rows: list[dict[str, Any]], title: str) -> None:
    table(
        title,
        ["kind", "night", "size", "product", "why"],
        [[r["kind"], r["night"], _human(r["bytes"]), escape(r["product"]), r["reason"]] for r in rows],
    )


def _show(dsn: str | None, policy_path: Path | None, dry_run: bool, as_json: bool) -> None:
    from contimg.storage.guard import DiskGuard
    from contimg.storage.inventory import inventory
    from contimg.storage.policy import load_policy
    from contimg.storage.prune import prune
    from contimg.storage.usage import usage
    from contimg.store import storage as store

    policy = load_policy(policy_path)
    with connect(resolve_dsn(dsn)) as conn:
        report = usage(inventory(conn))
        guard = store.guard_state(conn)
        would = prune(conn, policy, dry_run=True) if dry_run else None
    probes = DiskGuard(resolve_dsn(dsn), policy).probe({row["path"]: row["level"] for row in guard})
    paths = [
        {
            "path": p.path,
            "level": p.level,
            "free_bytes": p.free,
            "total_bytes": p.total,
            "writers": p.guarded.writers,
        }
        for p in probes
    ]
    if as_json:
        out: dict[str, Any] = {**report.model_dump(mode="json"), "paths": paths}
        if would is not None:
            out["would_remove"] = would.model_dump(mode="json")["removed"]
        emit_json(out)
        return
    table(
        "data paths",
        ["path", "level", "free", "size", "writers paused when critical"],
        [
            [escape(p.path), p.level, _human(p.free), _human(p.total), ", ".join(p.guarded.writers)]
            for p in probes
        ],
    )
    table(
        "products on disk by kind",
        ["kind", "products", "size"],
        [[k.kind, k.products, _human(k.bytes)] for k in report.by_kind],
    )
    # Only the kinds that take space, so the table stays readable.
    kinds = [k.kind for k in report.by_kind if k.bytes]
    table(
        "by night (UTC)",
        ["night", "total", *kinds],
        [
            [n.night or "-", _human(n.bytes), *[_human(n.by_kind.get(k, 0)) for k in kinds]]
            for n in report.by_night
        ],
    )
    if would is not None:
        _print_removals([r.model_dump() for r in would.removed], "the policy would remove now")
        console.print(f"{len(would.removed)} products, {_human(would.bytes_freed)} (nothing was removed)")


@app.callback(invoke_without_command=True)
def storage(
    ctx: typer.Context,
    dsn: Dsn = None,
    policy: PolicyOpt = None,
    dry_run: DryRun = False,
    as_json: JsonOut = False,
) -> None:
    """Bytes on disk by product kind and by night, and the free space of each data path; with --dry-run,
    what the retention policy would remove now."""
    if ctx.invoked_subcommand is None:
        guarded(_show, app.known_errors)(dsn=dsn, policy_path=policy, dry_run=dry_run, as_json=as_json)


@app.command("prune")
def prune_command(
    dsn: Dsn = None, policy: PolicyOpt = None, dry_run: DryRun = False, as_json: JsonOut = False
) -> None:
    """Remove what the retention policy lets go now (and no unfinished task needs), recording each."""
    from contimg.storage.policy import load_policy
    from contimg.storage.prune import prune

    loaded = load_policy(policy)
    with connect(resolve_dsn(dsn)) as conn:
        report = prune(conn, loaded, dry_run=dry_run)
    if as_json:
        emit_json(report.model_dump(mode="json"))
        return
    _print_removals([r.model_dump() for r in report.removed], "would remove" if dry_run else "removed")
    verb = "would free" if dry_run else "freed"
    console.print(f"{len(report.removed)} products, {verb} {_human(report.bytes_freed)}; {report.kept} kept")


@app.command("removals")
def removals(
    dsn: Dsn = None, limit: Annotated[int, typer.Option(min=1)] = 50, as_json: JsonOut = False
) -> None:
    """The most recent removals by the pruner, newest first."""
    from contimg.store import storage as store

    with connect(resolve_dsn(dsn)) as conn:
        rows = store.removals(conn, limit)
    if as_json:
        emit_json(rows)
        return
    _print_removals(rows, "removed")


@app.command("guard")
def guard(
    dsn: Dsn = None,
    policy: PolicyOpt = None,
    once: Annotated[bool, typer.Option("--once", help="Probe once and exit.")] = False,
    metrics_port: Annotated[
        int | None,
        typer.Option(envvar="CONTIMG_STORAGE_METRICS_PORT", help="Serve Prometheus gauges on this port."),
    ] = None,
) -> None:
    """Run the disk guard: probe each data path, and pause (open the breakers of) the tasks that write to a
    path below its critical level until it has room again. Runs until SIGTERM unless --once."""
    from contimg.storage.guard import DiskGuard, DiskGuardDaemon
    from contimg.storage.policy import load_policy

    loaded = load_policy(policy)
    if once:
        url = resolve_dsn(dsn)
        with connect(url) as conn:
            probes = DiskGuard(url, loaded).check(conn)
        for p in probes:
            console.print(f"{escape(p.path)}: {p.level}, {_human(p.free)} free of {_human(p.total)}")
        return
    DiskGuardDaemon(loaded, dsn, metrics_port).run()
