"""The light-curve commands on a database update-lightcurves has filled."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io.votable import parse_single_table
from typer.testing import CliRunner

from contimg.cli import app
from contimg.store.products import mjd_to_datetime
from tests.lightcurves.conftest import N_EPOCHS, REFERENCES, SYSTEMATIC, MakeSky, Sky, epoch_mjd

# Wide enough that rich tables do not truncate names.
runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture
def sky(make_sky: MakeSky) -> Sky:
    """The synthetic sky after one update."""
    sky = make_sky()
    assert sky.update()["state"] == "completed"
    return sky


def test_show_prints_epochs_sparkline_and_stored_metrics(sky: Sky) -> None:
    shown = runner.invoke(app, ["lightcurve", "show", "VAR_1", "--dsn", sky.dsn])
    assert shown.exit_code == 0, shown.output
    assert "normalised flux: " in shown.stdout and "VAR_1" in shown.stdout
    spark = shown.stdout.split("normalised flux: ")[1].splitlines()[0]
    assert len(spark) == N_EPOCHS and set(spark) <= set("▁▂▃▄▅▆▇█")
    [(eta,)] = sky.rows("SELECT eta FROM products.variability WHERE source_name = 'VAR_1'")
    assert f"{eta:.3f}" in shown.stdout

    as_json = json.loads(
        runner.invoke(app, ["lightcurve", "show", "VAR_1", "--json", "--dsn", sky.dsn]).stdout
    )
    assert as_json["metrics"]["eta"] == pytest.approx(eta)
    assert len(as_json["epochs"]) == N_EPOCHS and as_json["references"] == sorted(REFERENCES)


def test_unknown_source_exits_3(sky: Sky) -> None:
    for command in (["show"], ["plot", "-o", "x.png"], ["export", "--format", "json"]):
        result = runner.invoke(app, ["lightcurve", *command[:1], "NOPE", *command[1:], "--dsn", sky.dsn])
        assert result.exit_code == 3, (command, result.output)
        assert "no source named 'NOPE'" in result.output


def test_unreachable_database_is_a_clear_error() -> None:
    result = runner.invoke(app, ["sources", "list", "--dsn", "postgresql://nobody:secret@127.0.0.1:1/none"])
    assert result.exit_code == 4  # the toolkit's code for an unreachable database
    assert "cannot connect to Postgres" in result.output
    assert "secret" not in result.output and "password=***" in result.output


def test_plot_writes_a_png(sky: Sky, tmp_path: Path) -> None:
    out = tmp_path / "var1.png"
    result = runner.invoke(app, ["lightcurve", "plot", "VAR_1", "-o", str(out), "--dsn", sky.dsn])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_exports_parse_back(sky: Sky, tmp_path: Path) -> None:
    base = ["lightcurve", "export", "VAR_1", "--dsn", sky.dsn, "--format"]
    as_csv = runner.invoke(app, [*base, "csv"])
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    measured = sorted((r.mjd, r.flux_jy) for r in sky.results if r.name == "VAR_1")
    assert [float(r["mjd"]) for r in rows] == [mjd for mjd, _ in measured]
    assert [float(r["flux_jy"]) for r in rows] == pytest.approx([f for _, f in measured])

    as_json = json.loads(runner.invoke(app, [*base, "json"]).stdout)
    assert [e["norm_flux_jy"] for e in as_json["epochs"]] == pytest.approx(
        [float(r["norm_flux_jy"]) for r in rows]
    )
    assert as_json["metrics"]["is_variable"] is True

    out = tmp_path / "var1.vot"
    written = runner.invoke(app, [*base, "votable", "-o", str(out)])
    assert written.exit_code == 0, written.output
    table = parse_single_table(str(out)).to_table()
    assert len(table) == N_EPOCHS and str(table["flux"].unit) == "Jy"
    assert list(table["flux"]) == pytest.approx([f for _, f in measured])


def test_sources_list_variable_sorted_by_eta(sky: Sky) -> None:
    variable = runner.invoke(
        app, ["sources", "list", "--variable", "--sort", "eta", "--json", "--dsn", sky.dsn]
    )
    assert variable.exit_code == 0, variable.output
    assert [r["name"] for r in json.loads(variable.stdout)] == ["VAR_1"]

    everything = json.loads(
        runner.invoke(app, ["sources", "list", "--sort", "eta", "--json", "--dsn", sky.dsn]).stdout
    )
    etas = [r["eta"] for r in everything]
    assert len(etas) == 6 and etas == sorted(etas, reverse=True)
    table = runner.invoke(app, ["sources", "list", "--variable", "--dsn", sky.dsn])
    assert table.exit_code == 0 and "VAR_1" in table.stdout and "CONST_1" not in table.stdout


def test_alerts_list_and_acknowledge(sky: Sky) -> None:
    listed = json.loads(runner.invoke(app, ["alerts", "--json", "--dsn", sky.dsn]).stdout)
    assert [(a["source_name"], a["kind"]) for a in listed] == [("VAR_1", "variable")]
    assert "VAR_1" in runner.invoke(app, ["alerts", "--dsn", sky.dsn]).stdout

    alert_id = listed[0]["id"]
    assert runner.invoke(app, ["alerts", "--ack", str(alert_id), "--dsn", sky.dsn]).exit_code == 0
    assert json.loads(runner.invoke(app, ["alerts", "--json", "--dsn", sky.dsn]).stdout) == []
    every = json.loads(runner.invoke(app, ["alerts", "--all", "--json", "--dsn", sky.dsn]).stdout)
    assert [a["acknowledged"] for a in every] == [True]
    assert runner.invoke(app, ["alerts", "--ack", str(alert_id), "--dsn", sky.dsn]).exit_code == 3


def test_normalise_a_time_range_recovers_the_epoch_scale_errors(sky: Sky) -> None:
    start, end = (mjd_to_datetime(epoch_mjd(i)).strftime("%Y-%m-%dT%H:%M:%S") for i in (0, N_EPOCHS - 1))
    done = runner.invoke(
        app, ["lightcurve", "normalise", "--start", start, "--end", end, "--json", "--dsn", sky.dsn]
    )
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    factors = [s["factor"] for s in result["scales"]]
    assert len(factors) == N_EPOCHS and all(s["n_references"] == len(REFERENCES) for s in result["scales"])
    # The references carry each epoch's shared calibration error; the factors find it (to the noise).
    expected = SYSTEMATIC / np.median(SYSTEMATIC)
    assert np.allclose(factors, expected, atol=0.03)
    # A narrower range keeps only its epochs; an inverted one is refused.
    mid = mjd_to_datetime(epoch_mjd(3)).strftime("%Y-%m-%dT%H:%M:%S")
    part = runner.invoke(
        app, ["lightcurve", "normalise", "--start", start, "--end", mid, "--json", "--dsn", sky.dsn]
    )
    assert len(json.loads(part.stdout)["scales"]) == 4
    inverted = runner.invoke(
        app, ["lightcurve", "normalise", "--start", end, "--end", start, "--dsn", sky.dsn]
    )
    assert inverted.exit_code == 1 and "before it starts" in inverted.output
