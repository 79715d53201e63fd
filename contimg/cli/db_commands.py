"""Commands that read or write the products database: `contimg products list`, `contimg mosaic plan`."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from absurd.cli.common import Dsn, JsonOut
from contimg.store import products
from science.errors import InvalidInputError
from science.mosaic import MosaicMethod

products_app = typer.Typer(help="Inspect the products database.", no_args_is_help=True)


def _fail(message: str) -> typer.Exit:
    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code=1)


def _connect(dsn: str | None) -> Any:
    from absurd.database import connect, resolve_dsn
    from absurd.errors import ConfigurationError

    try:
        return connect(resolve_dsn(dsn))
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    return str(value)


@products_app.callback()
def _group() -> None:
    """Inspect the products database."""


@products_app.command("list")
def list_command(
    kind: Annotated[str, typer.Argument(help="ms, caltables, images, mosaics, photometry or sources.")],
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many rows, newest first.")] = 50,
    dsn: Dsn = None,
    as_json: JsonOut = False,
) -> None:
    """List the newest products of one kind."""
    kinds = ("ms", "caltables", "images", "mosaics", "photometry", "sources")
    if kind not in kinds:
        raise _fail(f"unknown product kind {kind!r}; choose one of {', '.join(kinds)}")
    with _connect(dsn) as conn:
        rows = products.list_products(conn, kind, limit)  # type: ignore[arg-type]
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        Console().print(f"no {kind} recorded")
        return
    table = Table(*rows[0].keys(), title=f"products: {kind}")
    for row in rows:
        table.add_row(*(escape(_cell(v)) for v in row.values()))
    Console().print(table)


def mosaic_plan(
    name: Annotated[str, typer.Option("--name", help="Name of the mosaic and of its plan.")],
    start: Annotated[datetime, typer.Option("--start", help="First image mid-time (UTC).")],
    end: Annotated[datetime, typer.Option("--end", help="Last image mid-time (UTC).")],
    output_dir: Annotated[
        Path, typer.Option("--output-dir", "-o", help="Where the mosaic will be written.")
    ] = (Path(".")),
    method: Annotated[MosaicMethod, typer.Option("--method", "-m", help="How to combine overlaps.")] = (
        MosaicMethod.WEIGHTED
    ),
    spawn: Annotated[
        bool, typer.Option("--spawn", help="Also queue a create-mosaic task for the plan.")
    ] = False,
    dsn: Dsn = None,
    as_json: JsonOut = False,
) -> None:
    """Plan a mosaic of the images recorded between --start and --end; store the plan under --name."""
    start_mjd, end_mjd = products.datetime_to_mjd(start), products.datetime_to_mjd(end)
    if end_mjd < start_mjd:
        raise _fail(f"--end {end:%Y-%m-%dT%H:%M:%S} is before --start {start:%Y-%m-%dT%H:%M:%S}")
    with _connect(dsn) as conn:
        try:
            plan, image_ids = products.plan_mosaic(conn, name, start, end, output_dir, method)
        except InvalidInputError as exc:
            raise _fail(str(exc)) from None
        products.save_mosaic_plan(conn, plan, start_mjd, end_mjd, image_ids)
        task_id = None
        if spawn:
            from absurd.client import Client
            from contimg.tasks.registry import registry

            # The registry supplies the task's queue, timeout and attempts.
            task_id = Client(conn=conn, registry=registry).spawn("create-mosaic", {"plan_name": name}).task_id
    if as_json:
        typer.echo(
            json.dumps({"plan": plan.model_dump(mode="json"), "image_ids": image_ids, "task_id": task_id})
        )
        return
    console = Console()
    console.print(
        f"[bold]{escape(plan.name)}[/] ({plan.method.value}): {len(plan.image_paths)} images -> "
        f"{escape(str(plan.output_path))}",
        highlight=False,
    )
    table = Table("image id", "path")
    for image_id, path in zip(image_ids, plan.image_paths, strict=True):
        table.add_row(str(image_id), escape(str(path)))
    console.print(table)
    if task_id is not None:
        console.print(f"queued create-mosaic as task {task_id}")
