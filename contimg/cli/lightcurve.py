"""Light-curve commands: `contimg lightcurve show|plot|export`, `contimg sources list`, `contimg alerts`.

They read what ``update-lightcurves`` stored (``products.variability``, ``products.alerts``) and the
photometry rows; metrics are shown as stored, never recomputed. Exit codes are the toolkit's: an
unknown source name or alert exits 3, a database that cannot be reached 4, one that lacks the
light-curve tables 1 (with the advice to run `absurd migrate`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import psycopg
import typer
from rich.markup import escape
from rich.table import Table

from absurd.cli.toolkit import Dsn, JsonOut, cell, console, emit_json, err_console, fail, fixed, table
from absurd.database import connect, resolve_dsn
from absurd.errors import NotFoundError
from contimg.cli.base import science_app
from contimg.cli.queued import Direct, TimeoutOpt, Wait, run_task
from contimg.store import alert_delivery, lightcurves
from contimg.store.products import datetime_to_mjd, mjd_to_datetime
from contimg.tasks.lightcurves import UpdateLightcurvesOutcome, UpdateLightcurvesParams, assess
from science.lightcurve_export import ExportFormat, epoch_rows
from science.lightcurve_export import export as export_curve
from science.lightcurve_plot import plot_lightcurve, sparkline
from science.lightcurves import SortKey, SourceLightcurve

app = science_app(help="Light curves of the monitored sources.")
sources_app = science_app(help="The monitored sources and their variability.")

Name = Annotated[str, typer.Argument(help="Source name, as in the monitoring catalogue.")]


def _session(dsn: str | None) -> psycopg.Connection:
    """A connection to the products database (its errors are the toolkit's to report)."""
    return connect(resolve_dsn(dsn))


def _load(conn: psycopg.Connection, name: str) -> SourceLightcurve:
    try:
        return lightcurves.source_lightcurve(conn, name)
    except LookupError as exc:
        raise NotFoundError(str(exc)) from None


@app.callback()
def _group() -> None:
    """Light curves of the monitored sources."""


@app.command("show")
def show(name: Name, dsn: Dsn = None, as_json: JsonOut = False) -> None:
    """The source's epochs, a sparkline of its normalised flux, and its stored metrics."""
    with _session(dsn) as conn:
        curve = _load(conn, name)
        stored = lightcurves.stored_variability(conn, name)
    if as_json:
        payload = {
            "source": curve.name,
            "reference": curve.reference,
            "references": curve.references,
            "metrics": stored.model_dump(mode="json") if stored else None,
            "epochs": epoch_rows(curve),
        }
        emit_json(payload)
        return
    role = " (reference)" if curve.reference else ""
    console.print(
        f"[bold]{escape(curve.name)}[/]{role}: {len(curve.epochs)} epochs, normalised on "
        f"{len(curve.references)} reference sources"
    )
    table = Table("MJD", "UTC", "flux mJy", "± mJy", "norm mJy", "± mJy", "SNR", "image")
    for row in epoch_rows(curve):
        table.add_row(
            f"{row['mjd']:.5f}",
            row["time_utc"][:19],
            fixed(row["flux_jy"], 1e3),
            fixed(row["flux_err_jy"], 1e3),
            fixed(row["norm_flux_jy"], 1e3),
            fixed(row["norm_flux_err_jy"], 1e3),
            fixed(row["snr"], digits=1),
            escape(row["image_path"] or "-"),
        )
    console.print(table)
    console.print(f"normalised flux: {sparkline([e.norm_flux_jy for e in curve.epochs])}")
    if stored is None:
        console.print("no metrics stored yet: run the update-lightcurves task")
        return
    metrics = Table("metric", "value", title="variability (as stored)")
    pair = (
        f" (MJD {stored.vs_mjd_a:.4f} → {stored.vs_mjd_b:.4f})"
        if stored.vs_mjd_a is not None and stored.vs_mjd_b is not None
        else ""
    )
    for label, value in (
        ("epochs", str(stored.n_epochs)),
        ("η", fixed(stored.eta)),
        ("V", fixed(stored.v)),
        ("χ²_ν", fixed(stored.chi2_nu)),
        ("Vs", fixed(stored.vs) + pair),
        ("m", fixed(stored.m)),
        ("weighted mean (mJy)", fixed(stored.weighted_mean_flux_jy, 1e3)),
        ("variable", "yes" if stored.is_variable else "no"),
        ("transient candidate", "yes" if stored.transient_candidate else "no"),
        ("exceeded", ", ".join(stored.exceeded) or "-"),
        ("thresholds", ", ".join(f"{k}={v}" for k, v in stored.thresholds.items())),
        ("updated", f"{cell(stored.updated_at)} (task {cell(stored.task_id)})"),
    ):
        metrics.add_row(label, cell(value))
    console.print(metrics)


@app.command("normalise")
def normalise_command(
    start: Annotated[datetime, typer.Option("--start", help="First epoch to include (UTC).")],
    end: Annotated[datetime, typer.Option("--end", help="Last epoch to include (UTC).")],
    source: Annotated[
        list[str] | None, typer.Option("--source", help="A source (repeatable); default all.")
    ] = None,
    reference: Annotated[
        list[str] | None,
        typer.Option("--reference", help="A reference source (repeatable); default: flagged."),
    ] = None,
    dsn: Dsn = None,
    as_json: JsonOut = False,
) -> None:
    """Normalise the photometry of a time range on the reference sources; show each epoch's factor.
    Runs in this process, storing nothing: it only reads the stored photometry (the update-lightcurves
    task, `contimg lightcurve update`, normalises as it assesses and stores the result)."""
    with _session(dsn) as conn:
        done = lightcurves.normalise_range(
            conn,
            datetime_to_mjd(start.replace(tzinfo=start.tzinfo or UTC)),
            datetime_to_mjd(end.replace(tzinfo=end.tzinfo or UTC)),
            source,
            reference,
        )
    if as_json:
        emit_json(done.model_dump(mode="json"))
        return
    rows = [
        [
            mjd_to_datetime(s.mjd).strftime("%Y-%m-%dT%H:%M:%S"),
            f"{s.factor:.4f}",
            f"{s.factor_err:.4f}",
            s.n_references,
        ]
        for s in done.scales
    ]
    table(
        f"{len(done.lightcurves)} light curve(s), {len(done.scales)} epoch(s)",
        ["epoch (UTC)", "scale", "±", "references"],
        rows,
    )


@app.command("update")
def update(
    source: Annotated[
        list[str] | None, typer.Option("--source", help="A source (repeatable); default all.")
    ] = None,
    reference: Annotated[
        list[str] | None,
        typer.Option("--reference", help="A reference source (repeatable); default: the catalogue's."),
    ] = None,
    min_epochs: Annotated[
        int | None, typer.Option("--min-epochs", help="Fewer epochs: no metrics; default: the task's.")
    ] = None,
    include_mosaics: Annotated[
        bool, typer.Option("--include-mosaics", help="Also use photometry measured on mosaics.")
    ] = False,
    direct: Direct = False,
    wait: Wait = True,
    timeout_s: TimeoutOpt = 600.0,
    dsn: Dsn = None,
    as_json: JsonOut = False,
) -> None:
    """Assess the light curves from the stored photometry, as an update-lightcurves task: its metrics
    are stored and alerts raised. --direct computes them in this process and stores nothing."""
    values: dict[str, object] = {
        "sources": source,
        "reference_sources": reference,
        "include_mosaics": include_mosaics,
    }
    if min_epochs is not None:
        values["min_epochs"] = min_epochs
    if direct:
        with _session(dsn) as conn:
            done = assess(conn, UpdateLightcurvesParams.model_validate(values))
    else:
        outcome = run_task("update-lightcurves", values, dsn, wait, timeout_s)
        if outcome is None:
            return
        done = UpdateLightcurvesOutcome.model_validate(outcome).update
    if as_json:
        emit_json(done.model_dump(mode="json"))
        return
    variable = [s.metrics.name for s in done.sources if s.metrics.is_variable]
    transient = [s.metrics.name for s in done.sources if s.transient_candidate]
    console.print(
        f"{len(done.sources)} source(s) assessed on {len(done.references)} reference(s): "
        f"{len(variable)} variable ({escape(', '.join(variable)) or '-'}), "
        f"{len(transient)} transient candidate(s) ({escape(', '.join(transient)) or '-'})"
    )


@app.command("plot")
def plot(
    name: Name,
    output: Annotated[Path, typer.Option("--output", "-o", help="PNG file to write.")],
    utc: Annotated[bool, typer.Option("--utc", help="UTC on the time axis instead of MJD.")] = False,
    dsn: Dsn = None,
) -> None:
    """Plot normalised flux against time, with error bars and the stored η and V."""
    with _session(dsn) as conn:
        curve = _load(conn, name)
        stored = lightcurves.stored_variability(conn, name)
    if not curve.epochs:
        raise fail(f"{name} has no usable photometry yet; nothing to plot")
    written = plot_lightcurve(
        curve.normalised(), output, stored.to_metrics() if stored else None, "utc" if utc else "mjd"
    )
    console.print(f"wrote {escape(str(written))}")


@app.command("export")
def export(
    name: Name,
    fmt: Annotated[ExportFormat, typer.Option("--format", "-f", help="csv, json or votable.")] = (
        ExportFormat.CSV
    ),
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write; default stdout.")
    ] = None,
    dsn: Dsn = None,
) -> None:
    """Export the light curve (measured and normalised fluxes, SNR, image) with its stored metrics in JSON."""
    with _session(dsn) as conn:
        curve = _load(conn, name)
        stored = lightcurves.stored_variability(conn, name) if fmt is ExportFormat.JSON else None
    data = export_curve(curve, fmt, stored)
    if output is None:
        typer.echo(data, nl=False)
        return
    output.write_bytes(data)
    err_console.print(f"wrote {escape(str(output))}")


# contimg sources -------------------------------------------------------------------------------


@sources_app.callback()
def _sources_group() -> None:
    """The monitored sources and their variability."""


class SortChoice(StrEnum):
    """Sort keys of `contimg sources list`."""

    ETA = "eta"
    V = "v"
    CHI2 = "chi2"
    NAME = "name"


@sources_app.command("list")
def sources_list(
    variable: Annotated[
        bool, typer.Option("--variable", help="Only sources flagged variable or transient.")
    ] = False,
    sort: Annotated[SortChoice, typer.Option("--sort", help="eta, v, chi2 (largest first) or name.")] = (
        SortChoice.NAME
    ),
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many sources.")] = 1000,
    dsn: Dsn = None,
    as_json: JsonOut = False,
) -> None:
    """List the sources with their stored metrics."""
    key: SortKey = sort.value
    with _session(dsn) as conn:
        rows = lightcurves.list_sources(conn, variable_only=variable, sort=key, limit=limit)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        console.print("no variable sources" if variable else "no sources recorded")
        return
    table = Table("name", "prio", "ref", "epochs", "η", "V", "χ²_ν", "Vs", "m", "flag", "mean mJy", "updated")
    for r in rows:
        flags = [
            label for label, on in (("VAR", r["is_variable"]), ("TRANS", r["transient_candidate"])) if on
        ]
        table.add_row(
            cell(r["name"]),
            cell(r["priority"]),
            "yes" if r["reference"] else "",
            cell(r["n_epochs"]),
            fixed(r["eta"], digits=2),
            fixed(r["v"]),
            fixed(r["chi2_nu"], digits=2),
            fixed(r["vs"], digits=2),
            fixed(r["m"]),
            " ".join(flags),
            fixed(r["weighted_mean_flux_jy"], 1e3, 2),
            cell(r["updated_at"]),
        )
    console.print(table)


# contimg alerts --------------------------------------------------------------------------------


def alerts(
    show_all: Annotated[bool, typer.Option("--all", help="Include acknowledged alerts.")] = False,
    ack: Annotated[int | None, typer.Option("--ack", help="Acknowledge the open alert with this id.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many, newest first.")] = 200,
    dsn: Dsn = None,
    as_json: JsonOut = False,
) -> None:
    """List alerts (open ones unless --all): variable, transient, rapid rise, new source; --ack one.
    Each shows its VOEvent delivery state per sink (notify-alert)."""
    with _session(dsn) as conn:
        if ack is not None:
            if not lightcurves.acknowledge_alert(conn, ack):
                raise NotFoundError(f"no open alert with id {ack}")
            console.print(f"alert {ack} acknowledged")
            return
        found = lightcurves.list_alerts(conn, include_acknowledged=show_all, limit=limit)
        sent = alert_delivery.deliveries(conn, [a.id for a in found])
    if as_json:
        emit_json(
            [
                {**a.model_dump(mode="json"), "deliveries": [d.model_dump(mode="json") for d in sent[a.id]]}
                for a in found
            ]
        )
        return
    if not found:
        console.print("no alerts" if show_all else "no open alerts")
        return
    table = Table(
        "id",
        "raised",
        "source",
        "kind",
        "η",
        "V",
        "χ²_ν",
        "Vs",
        "rise σ",
        "SNR",
        "ack",
        "sent",
        title="alerts",
    )
    for a in found:
        m = a.metrics
        # A new source has no catalogue name: show where it is, and what lies nearest.
        subject = a.source_name or f"at {m.get('ra_deg', 0.0):.4f}, {m.get('dec_deg', 0.0):+.4f}"
        table.add_row(
            str(a.id),
            cell(a.created_at),
            cell(subject),
            a.kind,
            fixed(m.get("eta"), digits=2),
            fixed(m.get("v")),
            fixed(m.get("chi2_nu"), digits=2),
            fixed(m.get("vs"), digits=2),
            fixed(m.get("rise_sigma"), digits=1),
            fixed(m.get("latest_snr", m.get("snr")), digits=1),
            "yes" if a.acknowledged else "",
            _delivery_cell(sent[a.id]),
        )
    console.print(table)


def _delivery_cell(sent: list[alert_delivery.Delivery]) -> str:
    """Each sink's state: ``archive delivered, followup pending (2 tries)``; '-' before any attempt."""
    if not sent:
        return "-"
    return ", ".join(
        f"{escape(d.sink)} {d.state}"
        + (f" ({d.attempts} tries)" if d.state != "delivered" and d.attempts else "")
        for d in sent
    )
