"""`contimg calibrators`: which calibrator transits a declination, and when."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from astropy.time import Time

from absurd.cli.toolkit import JsonOut, console, emit_json, fixed, table
from contimg.cli.base import science_app
from science.calibrators import (
    DEFAULT_MIN_APPARENT_JY,
    load_catalogue,
    nearest_calibrator,
    plan_transits,
    read_vla_list,
)

app = science_app(help="Calibrator planning: the transits usable at a declination.")


@app.command("next")
def next_transits(
    dec: Annotated[float, typer.Option("--dec", min=-90.0, max=90.0, help="Pointing declination, degrees.")],
    after: Annotated[
        datetime | None, typer.Option("--after", help="From this UTC time (default: now).")
    ] = None,
    hours: Annotated[float, typer.Option("--hours", min=0.1, help="How far ahead to look.")] = 24.0,
    vla_list: Annotated[
        Path | None,
        typer.Option("--vla-list", help="The VLA calibrator list (text); default: the bundled catalogue."),
    ] = None,
    min_jy: Annotated[
        float, typer.Option("--min-jy", min=0.0, help="Least flux after the primary beam.")
    ] = DEFAULT_MIN_APPARENT_JY,
    as_json: JsonOut = False,
) -> None:
    """The usable calibrator transits at a declination, in time order; else the nearest calibrator."""
    start = Time((after or datetime.now(UTC)).replace(tzinfo=None), scale="utc")
    catalogue = read_vla_list(vla_list) if vla_list else load_catalogue()
    plan = plan_transits(dec, start, catalogue, hours=hours, min_apparent_jy=min_jy)
    if as_json:
        nearest = None if plan else nearest_calibrator(dec, start, catalogue, min_apparent_jy=min_jy)
        emit_json(
            {
                "transits": [t.model_dump(mode="json") for t in plan],
                "nearest": nearest.model_dump(mode="json") if nearest else None,
            }
        )
        return
    if plan:
        rows = [
            [
                t.transit_utc,
                t.calibrator.name,
                t.calibrator.alias,
                f"{t.calibrator.dec_deg:+.3f}",
                fixed(t.offset_deg, digits=2),
                fixed(t.response, digits=2),
                fixed(t.apparent_flux_jy, digits=2),
            ]
            for t in plan
        ]
        columns = ["transit (UTC)", "name", "alias", "Dec (deg)", "offset (deg)", "beam", "flux in beam (Jy)"]
        table(f"calibrator transits at dec {dec:+.2f}° in the next {hours:g} h", columns, rows)
        return
    nearest = nearest_calibrator(dec, start, catalogue, min_apparent_jy=min_jy)
    if nearest is None:
        console.print("no usable calibrator in the catalogue at all")
        raise typer.Exit(1)
    cal = nearest.calibrator
    console.print(
        f"no usable calibrator transits at dec {dec:+.2f}° in the next {hours:g} h; the nearest is "
        f"{cal.name}{f' ({cal.alias})' if cal.alias else ''} at dec {cal.dec_deg:+.2f}° "
        f"({nearest.offset_deg:.2f}° away, {cal.flux_jy:.2f} Jy), transiting at {nearest.transit_utc}"
    )
    raise typer.Exit(1)
