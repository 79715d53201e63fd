"""`contimg monitor`: the operators' monitoring lists (CSV of name, ra, dec, priority) in the database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from absurd.cli.toolkit import EXIT_NOT_FOUND, Dsn, JsonOut, console, emit_json, fail, table
from absurd.database import connect, resolve_dsn
from contimg.cli.base import science_app
from contimg.store import sky
from science.catalogs import read_catalog

app = science_app(help="Monitoring lists: register, list, show and remove them.")

NameArg = Annotated[str, typer.Argument(help="The list's name (letters, digits, '_', '.', '-').")]


@app.command("add")
def add(
    name: NameArg,
    csv_path: Annotated[Path, typer.Argument(help="CSV with name, ra_deg, dec_deg and optionally priority.")],
    dsn: Dsn = None,
) -> None:
    """Register a list (or replace one of the same name) from a CSV file."""
    sources = read_catalog(csv_path)
    with connect(resolve_dsn(dsn)) as conn:
        n = sky.register_list(conn, name, csv_path.resolve(), sources)
    console.print(f"monitoring list {name!r}: {n} source(s) from {csv_path}")


@app.command("list")
def list_command(dsn: Dsn = None, as_json: JsonOut = False) -> None:
    """Every registered list, with its size and top priority."""
    with connect(resolve_dsn(dsn)) as conn:
        lists = sky.monitoring_lists(conn)
    if as_json:
        emit_json([m.model_dump(mode="json") for m in lists])
        return
    if not lists:
        console.print("no monitoring list registered; add one with `contimg monitor add NAME FILE.csv`")
        return
    rows = [[m.name, m.n_sources, m.top_priority, m.path, m.registered_at] for m in lists]
    table("monitoring lists", ["name", "sources", "top priority", "file", "registered"], rows)


@app.command("show")
def show(name: NameArg, dsn: Dsn = None, as_json: JsonOut = False) -> None:
    """The sources of one list, highest priority first."""
    with connect(resolve_dsn(dsn)) as conn:
        if name not in {m.name for m in sky.monitoring_lists(conn)}:
            raise fail(f"no monitoring list named {name!r}; see `contimg monitor list`", EXIT_NOT_FOUND)
        sources = sky.monitored_sources(conn, [name])
    if as_json:
        emit_json([s.model_dump(mode="json") for s in sources])
        return
    rows = [[s.name, f"{s.ra_deg:.5f}", f"{s.dec_deg:+.5f}", s.priority] for s in sources]
    table(f"monitoring list {name}", ["name", "RA (deg)", "Dec (deg)", "priority"], rows)


@app.command("remove")
def remove(name: NameArg, dsn: Dsn = None) -> None:
    """Forget a list; its sources and their light curves stay in the database."""
    with connect(resolve_dsn(dsn)) as conn:
        if not sky.remove_list(conn, name):
            raise fail(f"no monitoring list named {name!r}; see `contimg monitor list`", EXIT_NOT_FOUND)
    console.print(f"monitoring list {name!r} removed")
