"""`contimg stream`: the streaming converter daemon (`run`) and its numbers (`status`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from absurd.cli.toolkit import Dsn, JsonOut, console, emit_json
from absurd.database import connect, resolve_dsn
from contimg.cli.base import science_app
from science.constants import SUBBAND_WAIT_TIMEOUT_S
from science.convert import IncompletePolicy

app = science_app(help="The streaming converter: subband files in, Measurement Sets out.")


@app.callback()
def _group() -> None:
    """The streaming converter: subband files in, Measurement Sets out."""


@app.command("run")
def run(
    incoming: Annotated[Path, typer.Option("--incoming", help="Directory the correlator writes into.")],
    output_dir: Annotated[Path, typer.Option("--output-dir", help="Where the Measurement Sets go.")],
    dsn: Dsn = None,
    subband_timeout_s: Annotated[
        float, typer.Option(min=0.1, help="Seconds to wait for all 16 subbands after a group's first file.")
    ] = SUBBAND_WAIT_TIMEOUT_S,
    poll: Annotated[
        bool, typer.Option("--poll", help="Poll the directory instead of using inotify.")
    ] = False,
    poll_interval_s: Annotated[float, typer.Option(min=0.1, help="Listing period when polling.")] = 2.0,
    settle_s: Annotated[
        float, typer.Option(min=0.0, help="A file is read only once unchanged (and as old) this long.")
    ] = 1.0,
    policy: Annotated[
        str,
        typer.Option(help="A group still incomplete at the timeout: 'flag' converts it, 'skip' does not."),
    ] = IncompletePolicy.FLAG.value,
    metrics_port: Annotated[
        int | None,
        typer.Option(envvar="CONTIMG_STREAM_METRICS_PORT", help="Serve Prometheus metrics on this port."),
    ] = None,
) -> None:
    """Watch INCOMING and convert each observation's subband files as they arrive, until SIGTERM."""
    from contimg.stream.converter import StreamDaemon, StreamSettings

    settings = StreamSettings.model_validate(
        {
            "incoming_dir": incoming,
            "output_dir": output_dir,
            "dsn": dsn,
            "subband_timeout_s": subband_timeout_s,
            "poll": poll,
            "poll_interval_s": poll_interval_s,
            "settle_s": settle_s,
            "policy": policy,
            "metrics_port": metrics_port,
        }
    )
    StreamDaemon(settings).run()


@app.command("status")
def status(
    dsn: Dsn = None,
    as_json: JsonOut = False,
    limit: Annotated[int, typer.Option(min=1, help="Late files and failed groups to list.")] = 10,
) -> None:
    """Pending and incomplete groups, late files, throughput and latency of the streaming converter."""
    from contimg.stream.converter import stream_status

    with connect(resolve_dsn(dsn)) as conn:
        report = stream_status(conn, limit=limit)
    if as_json:
        emit_json(report.model_dump(mode="json"))
        return
    table = Table(title="contimg stream", show_header=False)
    table.add_column("", style="bold")
    table.add_column("", justify="right")

    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} s"

    for label, value in (
        (
            "pending groups",
            f"{report.pending_groups} ({report.collecting_groups} collecting, "
            f"{report.converting_groups} converting)",
        ),
        ("converted groups", str(report.converted_groups)),
        ("failed / skipped groups", f"{report.failed_groups} / {report.skipped_groups}"),
        ("incomplete groups", str(report.incomplete_groups)),
        ("late files", f"{report.late_files} ({report.duplicate_files} duplicate)"),
        ("throughput", f"{report.throughput_per_hour:.0f} groups/h"),
        ("latency p50 / max", f"{seconds(report.latency_p50_s)} / {seconds(report.latency_max_s)}"),
    ):
        table.add_row(label, value)
    console.print(table)
    for late in report.recent_late:
        console.print(f"[yellow]late[/] {escape(late['path'])} → group {late['group_id']} ({late['status']})")
    for failed in report.recent_failures:
        console.print(f"[red]failed[/] group {failed['group_id']}: {escape(str(failed['error']))}")
