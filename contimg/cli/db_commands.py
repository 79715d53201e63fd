"""Commands that read or write the products database: `contimg products list`, `contimg mosaic plan`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from absurd.cli.toolkit import EXIT_USAGE, Dsn, JsonOut, console, emit_json, fail, table
from absurd.database import connect, resolve_dsn
from contimg.cli.base import science_app
from contimg.store import products
from science.mosaic import MosaicMethod

products_app = science_app(help="Inspect the products database.")

KINDS = ("ms", "caltables", "images", "mosaics", "photometry", "sources")


@products_app.callback()
def _group() -> None:
    """Inspect the products database."""


@products_app.command("list")
def list_command(
    kind: Annotated[str, typer.Argument(help=f"One of {', '.join(KINDS)}.")],
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many rows, newest first.")] = 50,
    dsn: Dsn = None,
    as_json: JsonOut = False,
) -> None:
    """List the newest products of one kind."""
    if kind not in KINDS:
        raise fail(f"unknown product kind {kind!r}; choose one of {', '.join(KINDS)}", EXIT_USAGE)
    with connect(resolve_dsn(dsn)) as conn:
        rows = products.list_products(conn, kind, limit)  # type: ignore[arg-type]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        console.print(f"no {kind} recorded")
        return
    table(f"products: {kind}", list(rows[0]), [list(row.values()) for row in rows])


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
        raise fail(f"--end {end:%Y-%m-%dT%H:%M:%S} is before --start {start:%Y-%m-%dT%H:%M:%S}", EXIT_USAGE)
    with connect(resolve_dsn(dsn)) as conn:
        plan, image_ids = products.plan_mosaic(conn, name, start, end, output_dir, method)
        products.save_mosaic_plan(conn, plan, start_mjd, end_mjd, image_ids)
        task_id = None
        if spawn:
            from absurd.client import Client
            from contimg.tasks.registry import registry

            # The registry supplies the task's queue, timeout and attempts.
            task_id = Client(conn=conn, registry=registry).spawn("create-mosaic", {"plan_name": name}).task_id
    if as_json:
        emit_json({"plan": plan.model_dump(mode="json"), "image_ids": image_ids, "task_id": task_id})
        return
    console.print(
        f"[bold]{escape(plan.name)}[/] ({plan.method.value}): {len(plan.image_paths)} images -> "
        f"{escape(str(plan.output_path))}"
    )
    table(None, ["image id", "path"], list(zip(image_ids, plan.image_paths, strict=True)))
    if task_id is not None:
        console.print(f"queued create-mosaic as task {task_id}")
