"""The manual pipeline commands go through the queue by default: a worker in another process runs the
registered task, the command follows it and prints its result, its error, or (--no-wait) its id.
Bad params are refused before anything is queued."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner, Result

from absurd.cli.toolkit import EXIT_FAILED, EXIT_USAGE
from absurd.client import Client
from contimg.cli import app
from science.grouping import FILENAME_TIME_FORMAT
from tests.science.synthetic_images import ImageSpec, Source, make_image, offset_position
from tests.support.processes import start_worker, stop_worker

runner = CliRunner()
SOURCES = [
    Source("near", *offset_position(ImageSpec(), 10, -20), 0.08),
    Source("far", *offset_position(ImageSpec(), -60, 40), 0.03),
]


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


def stderr_lines(result: Result) -> list[str]:
    """The command's own lines on stderr (the worker's log lines are in its own process)."""
    return [line for line in result.stderr.splitlines() if line.startswith(("task ", "error: "))]


@pytest.fixture
def worker(dsn: str) -> Iterator[None]:
    """A worker of the science registry, in its own process, on the queues these tests use."""
    proc = start_worker(
        dsn,
        "--queue",
        "photometry",
        "--queue",
        "imaging",
        "--concurrency",
        "1",
        registry="contimg.tasks.registry:registry",
    )
    yield
    stop_worker(proc)


@pytest.fixture
def field(tmp_path: Path) -> tuple[Path, Path]:
    """A restored image with two sources, and the monitoring catalogue that names them."""
    image = make_image(tmp_path / "field.fits", SOURCES, seed=3)
    catalogue = tmp_path / "monitoring.csv"
    rows = [f"{s.name},{s.ra_deg},{s.dec_deg},{s.flux_jy * 1e3}" for s in SOURCES]
    catalogue.write_text("\n".join(["name,ra_deg,dec_deg,flux_mjy", *rows]) + "\n")
    return image, catalogue


def test_queued_steps_print_the_result_the_error_or_the_task_id(
    dsn: str, worker: None, field: tuple[Path, Path], tmp_path: Path
) -> None:
    image, catalogue = field

    # Forced photometry: a run-photometry task, whose measurements are printed and stored.
    done = invoke(
        "photometry", "catalog", "--fits", str(image), "--catalog", str(catalogue), "--json", "--dsn", dsn
    )
    assert done.exit_code == 0, done.output
    assert {row["name"] for row in json.loads(done.stdout)} == {"near", "far"}
    lines = stderr_lines(done)
    task_id = int(lines[0].split()[1])
    assert lines[0] == f"task {task_id} (run-photometry) queued on photometry"
    assert lines[-1] == f"task {task_id}: completed"
    with psycopg.connect(dsn) as conn:
        stored = conn.execute("SELECT count(*) FROM products.photometry WHERE task_id = %s", (task_id,))
        assert stored.fetchone() == (2,)

    # The light curves of what was stored: an update-lightcurves task (thread mode) on the same worker.
    assessed = invoke("lightcurve", "update", "--dsn", dsn)
    assert assessed.exit_code == 0, assessed.output
    assert "2 source(s) assessed" in assessed.stdout
    assert stderr_lines(assessed)[-1].endswith(": completed")

    # A mosaic of the field and a second pointing: a create-mosaic task in a worker's child process.
    other = make_image(tmp_path / "east.fits", SOURCES, ImageSpec(ra0_deg=150.05), seed=4)
    mosaic = tmp_path / "mosaic.fits"
    built = invoke("mosaic", "build", str(image), str(other), "-o", str(mosaic), "--no-preview", "--dsn", dsn)
    assert built.exit_code == 0, built.output
    assert " ".join(built.stdout.split()).startswith(f"wrote {mosaic} (") and mosaic.exists()
    with psycopg.connect(dsn) as conn:
        recorded = conn.execute("SELECT path FROM products.mosaics").fetchall()
    assert recorded == [(str(mosaic),)]

    # A task that fails (the MS is not a Measurement Set): exit 1, with the task's own error.
    not_ms = tmp_path / "empty.ms"
    not_ms.mkdir()
    failed = invoke("image", "create", str(not_ms), str(tmp_path / "images"), "--dsn", dsn)
    assert failed.exit_code == EXIT_FAILED, failed.output
    last = stderr_lines(failed)[-1]
    assert last.startswith("error: task ") and "(create-image) ended failed" in last
    assert f"{not_ms} is not a Measurement Set (no table.dat)" in last
    assert failed.stdout == ""

    # --no-wait: the task id as JSON at once; the worker completes the task all the same.
    queued = invoke(
        "photometry", "catalog", "--fits", str(image), "--catalog", str(catalogue), "--no-wait", "--dsn", dsn
    )
    assert queued.exit_code == 0, queued.output
    printed = json.loads(queued.stdout)
    assert printed["task"] == "run-photometry" and printed["queue"] == "photometry"
    with Client(dsn) as client:
        result = client.wait_result(printed["task_id"], timeout_s=120)
    assert {m["name"] for m in result["measurements"]} == {"near", "far"}


def test_bad_params_are_refused_before_anything_is_queued(dsn: str, tmp_path: Path) -> None:
    ms, out = str(tmp_path / "x.ms"), str(tmp_path / "out")
    cases = [
        (
            ["image", "create", ms, out, "--niter", "-5"],
            "create-image params: imaging.niter: Input should be",
        ),
        (
            ["image", "create", ms, out, "--robust", "3"],
            "imaging.robust: Input should be less than or equal to 2",
        ),
        (
            ["calibrate", "solve", ms, out, "--refant-policy", "nearest"],
            "solve-calibration params: refant_policy",
        ),
        (["calibrate", "apply", ms, str(tmp_path / "bp.tab")], "caltables are given only with --direct"),
    ]
    for args, expected in cases:
        refused = invoke(*args, "--dsn", dsn)
        assert refused.exit_code == EXIT_USAGE, (args, refused.output)
        (line,) = stderr_lines(refused)
        assert expected in line, line
    with Client(dsn) as client:
        assert client.list_tasks() == []


def test_convert_groups_queues_one_task_per_complete_group(dsn: str, tmp_path: Path) -> None:
    """Complete groups are queued (--no-wait: their task ids); an incomplete one under policy wait is
    reported as waiting, as a direct run reports it, and nothing is queued for it."""
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    first, second = datetime(2026, 3, 1, 4, 0, 0), datetime(2026, 3, 1, 4, 5, 9)
    for when, subbands in ((first, range(16)), (second, range(3))):
        for index in subbands:
            (incoming / f"{when.strftime(FILENAME_TIME_FORMAT)}_sb{index:02d}.hdf5").touch()
    out = tmp_path / "ms"
    args = ["convert", "groups", "--input-dir", str(incoming), "--output-dir", str(out), "--no-wait"]
    done = invoke(*args, "--dsn", dsn)
    assert done.exit_code == 0, done.output
    waiting, queued = (json.loads(line) for line in done.stdout.splitlines())
    assert waiting == {
        "group_id": "2026-03-01T04:05:09",
        "status": "waiting",
        "missing": [f"sb{i:02d}" for i in range(3, 16)],
    }
    assert queued["group_id"] == "2026-03-01T04:00:00" and queued["task"] == "convert-uvh5"
    with Client(dsn) as client:
        (task,) = client.list_tasks()
        params = client.get_task(task["id"])["params"]
    assert task["id"] == queued["task_id"] and task["queue"] == "convert"
    assert len(params["input_files"]) == 16 and all(Path(p).is_absolute() for p in params["input_files"])
    assert params["output_dir"] == str(out.resolve()) and params["overwrite"] is False

    no_rfi = invoke(*args, "--no-rfi", "--dsn", dsn)
    assert no_rfi.exit_code == EXIT_USAGE
    assert "--no-rfi needs --direct" in stderr_lines(no_rfi)[0]


def test_the_wait_is_bounded_and_the_task_carries_on(dsn: str, tmp_path: Path) -> None:
    """With no worker on the queue, --timeout-s ends the wait with exit 1; the task stays queued."""
    ms = tmp_path / "obs.ms"
    ms.mkdir()
    args = ["image", "create", str(ms), str(tmp_path / "images"), "--timeout-s", "0.5", "--dsn", dsn]
    waited = invoke(*args)
    assert waited.exit_code == EXIT_FAILED, waited.output
    queued, pending, gave_up = stderr_lines(waited)
    task_id = int(queued.split()[1])
    assert pending == (
        f"task {task_id}: pending (waiting for a worker on the imaging queue; "
        "start one with `contimg worker`)"
    )
    assert gave_up.startswith(f"error: gave up waiting after 0.5 s ({task_id} pending)")
    with Client(dsn) as client:
        assert client.get_task(task_id)["state"] == "pending"


# Each queued command with options of its own, the task it queues and the params that must be absolute.
QUEUED = [
    ("convert single {sb} --output-dir {tmp}/ms", "convert-uvh5", ["output_dir"]),
    ("calibrate solve {tmp}/c.ms {tmp}/cal --mode bandpass", "solve-calibration", ["caltable_dir"]),
    ("calibrate apply {tmp}/t.ms --max-age-hours 6", "apply-calibration", ["ms_path"]),
    ("image create {tmp}/t.ms {tmp}/img --imsize 512", "create-image", ["output_dir"]),
    ("mosaic build {fits} -o {tmp}/m.fits -m mean", "create-mosaic", []),
    (
        "photometry catalog --fits {fits} --catalog {csv} --pb-threshold 0.3",
        "run-photometry",
        ["catalogue_path"],
    ),
    ("photometry survey --fits {fits} --survey nvss --survey-path {csv}", "measure-survey", ["survey_path"]),
    ("photometry find --fits {fits} --survey first={csv} --catalog {csv}", "find-sources", ["image_path"]),
    ("lightcurve update --source near --min-epochs 3", "update-lightcurves", []),
]


@pytest.mark.parametrize(("command", "task", "paths"), QUEUED)
def test_each_queued_command_sends_params_its_task_accepts(
    dsn: str, field: tuple[Path, Path], tmp_path: Path, command: str, task: str, paths: list[str]
) -> None:
    """--no-wait: the task is queued on its own queue, with params its model accepts and paths made
    absolute (a worker runs elsewhere)."""
    from contimg.tasks.registry import registry

    image, catalogue = field
    subband = tmp_path / "2026-03-01T04:00:00_sb00.hdf5"
    subband.touch()
    values = {"sb": str(subband), "tmp": str(tmp_path), "fits": str(image), "csv": str(catalogue)}
    queued = invoke(*command.format(**values).split(), "--no-wait", "--dsn", dsn)
    assert queued.exit_code == 0, queued.output
    printed = json.loads(queued.stdout)
    definition = registry.get(task)
    assert printed["task"] == task and printed["queue"] == definition.options.queue
    with Client(dsn) as client:
        row = client.get_task(printed["task_id"])
    assert row["name"] == task and row["queue"] == definition.options.queue
    definition.parse_params(row["params"])
    assert all(Path(row["params"][key]).is_absolute() for key in paths)
