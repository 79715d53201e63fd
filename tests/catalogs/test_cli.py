"""The sky commands of `contimg`: monitoring lists, calibrator planning, survey photometry, finding."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from contimg.cli import app
from tests.catalogs import survey_tables as tables
from tests.catalogs.vla_list import sky_of_calibrators, write_list

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "science"))
from synthetic_images import ImageSpec, Source, make_image, offset_position

runner = CliRunner()


def test_monitoring_lists_from_the_command_line(dsn: str, tmp_path: Path) -> None:
    csv = tmp_path / "core.csv"
    csv.write_text("name,ra_deg,dec_deg,priority\nA,10.0,20.0,2\nB,11.0,21.0,1\n")
    added = runner.invoke(app, ["monitor", "add", "core", str(csv), "--dsn", dsn])
    assert added.exit_code == 0 and "2 source(s)" in added.output
    listed = runner.invoke(app, ["monitor", "list", "--json", "--dsn", dsn])
    assert [(m["name"], m["n_sources"], m["top_priority"]) for m in json.loads(listed.stdout)] == [
        ("core", 2, 1)
    ]
    shown = runner.invoke(app, ["monitor", "show", "core", "--json", "--dsn", dsn])
    assert [s["name"] for s in json.loads(shown.stdout)] == ["B", "A"]
    assert runner.invoke(app, ["monitor", "remove", "core", "--dsn", dsn]).exit_code == 0
    gone = runner.invoke(app, ["monitor", "remove", "core", "--dsn", dsn])
    assert gone.exit_code == 3 and "no monitoring list named 'core'" in gone.output


def test_calibrators_next_plans_or_names_the_nearest(tmp_path: Path) -> None:
    vla = write_list(tmp_path / "callist.txt", sky_of_calibrators())
    after = ["--after", "2026-03-01T00:00:00", "--vla-list", str(vla)]
    planned = runner.invoke(app, ["calibrators", "next", "--dec", "30.5", *after, "--json"])
    assert planned.exit_code == 0
    transits = json.loads(planned.stdout)["transits"]
    assert "1331+305" in [t["calibrator"]["name"] for t in transits]
    # Declination +3° has no usable calibrator in this list (see test_calibrator_list).
    none = runner.invoke(app, ["calibrators", "next", "--dec", "3", *after])
    assert none.exit_code == 1 and "the nearest is C020" in " ".join(none.output.split())


def test_survey_and_find_in_process(tmp_path: Path) -> None:
    spec = ImageSpec(npix=300, noise_jy=1e-3)
    rng = np.random.default_rng(8)
    sources = []
    for i in range(8):
        ra, dec = offset_position(spec, *rng.uniform(-120, 120, 2))
        sources.append(Source(f"S{i}", ra, dec, float(rng.uniform(0.005, 0.2))))
    table = tables.first_fits(
        tmp_path / "first.fits",
        np.array([s.ra_deg for s in sources]),
        np.array([s.dec_deg for s in sources]),
        np.array([s.flux_jy * 1000 for s in sources]),
    )
    image = make_image(tmp_path / "img.fits", sources, spec, seed=4)
    surveyed = runner.invoke(
        app,
        [
            "photometry",
            "survey",
            "--direct",
            "--fits",
            str(image),
            "--survey",
            "first",
            "--survey-path",
            str(table),
            "--json",
        ],
    )
    assert surveyed.exit_code == 0, surveyed.output
    measured = json.loads(surveyed.stdout)
    assert len(measured) == sum(s.flux_jy >= 0.010 for s in sources)
    found = runner.invoke(
        app, ["photometry", "find", "--direct", "--fits", str(image), "--survey", f"first={table}", "--json"]
    )
    assert found.exit_code == 0, found.output
    rows = json.loads(found.stdout)
    assert rows and all(r["matched"] and not r["new"] for r in rows)
    wrong = runner.invoke(
        app, ["photometry", "find", "--direct", "--fits", str(image), "--survey", "sdss=x.fits"]
    )
    assert wrong.exit_code == 1 and "NAME=PATH" in wrong.output
