"""A simulated week of products (files with set modification times, and their rows), pruned by a policy:
exactly what the policy lets go is removed and recorded, and nothing an unfinished task names."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb
from typer.testing import CliRunner

from absurd.client import Client
from absurd.worker import Worker, WorkerSettings
from contimg.cli import app
from contimg.storage.policy import load_policy
from contimg.storage.prune import prune
from contimg.tasks.registry import registry

FIRST_NIGHT = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)
NOW = FIRST_NIGHT + timedelta(days=7, hours=8)  # night d is 7.33 - d days old
POLICY = """
retention:
  raw: {keep_days: 2, require: [converted]}
  ms: {keep_days: 3, require: [imaged, measured]}
  image_aux: {keep_days: 5, require: [measured]}
  images: {keep_days: null}
"""


def _file(path: Path, when: datetime, size: int = 4096) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * size)
    os.utime(path, (when.timestamp(), when.timestamp()))
    return str(path)


def _ms(path: Path, when: datetime) -> str:
    """A directory standing in for a Measurement Set: a table file inside it."""
    _file(path / "table.f0", when, 8192)
    os.utime(path, (when.timestamp(), when.timestamp()))
    return str(path)


def one(conn: psycopg.Connection, query: str, args: tuple[object, ...]) -> object:
    row = conn.execute(query, args).fetchone()
    assert row is not None
    return row[0]


@dataclass
class Week:
    """The files made for each night (by night number)."""

    raw: dict[int, list[str]] = field(default_factory=dict)
    ms: dict[int, str] = field(default_factory=dict)
    image: dict[int, str] = field(default_factory=dict)
    aux: dict[int, list[str]] = field(default_factory=dict)


def build_week(conn: psycopg.Connection, root: Path) -> Week:
    """Seven nights. Night 0's group is still converting (no MS); night 1's MS was never imaged; nights
    2-6 are imaged and measured. Every night has two subband files, an MS (but night 0) and an image set."""
    made = Week()
    conn.execute(
        "INSERT INTO products.sources (name, ra_deg, dec_deg, catalogue_path) VALUES ('S1', 10, 40, '/c.csv')"
    )
    for d in range(7):
        when = FIRST_NIGHT + timedelta(days=d)
        group = when.strftime("%Y-%m-%dT%H:%M:%S")
        raw = [_file(root / "incoming" / f"{group}_sb{sb:02d}.hdf5", when) for sb in (0, 1)]
        made.raw[d] = raw
        conn.execute(
            """INSERT INTO products.stream_groups (group_id, group_time, min_file_time, max_file_time,
                   incoming_dir, n_files, first_arrival_at, last_arrival_at, status, convert_task_id,
                   new_ms_emitted_at)
               VALUES (%s, %s, %s, %s, %s, 2, %s, %s, %s, %s, %s)""",
            (group, when, when, when, str(root / "incoming"), when, when,
             "spawned" if d == 0 else "converted", 1000 + d, None if d == 0 else when),
        )  # fmt: skip
        for sb, path in enumerate(raw):
            conn.execute(
                """INSERT INTO products.stream_files (path, subband, file_time, size_bytes, arrived_at,
                       first_seen_at, group_id, status) VALUES (%s, %s, %s, 4096, %s, %s, %s, 'grouped')""",
                (path, sb, when, when, when, group),
            )
        if d == 0:
            continue
        ms = _ms(root / "ms" / f"{group}.ms", when)
        made.ms[d] = ms
        ms_id = one(
            conn,
            """INSERT INTO products.ms_index (path, group_id, start_mjd, end_mjd, mid_mjd, mid_time, ra_deg,
                   dec_deg, n_antennas, n_channels, status)
               VALUES (%s, %s, 60000, 60000, 60000, %s, 10, 40, 24, 16, 'complete') RETURNING id""",
            (ms, group, when),
        )
        if d == 1:
            continue
        stem = root / "images" / group
        image, pb, pbcor = (_file(Path(f"{stem}-{part}.fits"), when) for part in ("image", "pb", "image-pb"))
        residual, psf = (_file(Path(f"{stem}-{part}.fits"), when) for part in ("residual", "psf"))
        preview = _file(Path(f"{stem}.png"), when)
        made.image[d], made.aux[d] = image, [residual, psf]
        image_id = one(
            conn,
            """INSERT INTO products.images (path, ms_path, ms_id, imager, residual_path, psf_path, pb_path,
                   pbcor_path, preview_path, noise_jy, peak_jy, bmaj_arcsec, bmin_arcsec, bpa_deg,
                   center_ra_deg, center_dec_deg, freq_hz, mid_mjd, mid_time, params)
               VALUES (%s, %s, %s, 'wsclean', %s, %s, %s, %s, %s, 1e-3, 1, 30, 20, 0, 10, 40, 1.4e9, 60000,
                       %s, %s) RETURNING id""",
            (image, ms, ms_id, residual, psf, pb, pbcor, preview, when, Jsonb({})),
        )
        conn.execute(
            """INSERT INTO products.photometry (image_path, image_id, source_name, ra_deg, dec_deg)
               VALUES (%s, %s, 'S1', 10, 40)""",
            (image, image_id),
        )
    return made


def removed_products(dsn: str) -> set[tuple[str, str]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {(k, p) for k, p in conn.execute("SELECT kind, product FROM products.storage_removals")}


def test_a_week_is_pruned_by_the_policy_and_what_tasks_need_is_kept(dsn: str, tmp_path: Path) -> None:
    policy_file = tmp_path / "storage.yaml"
    policy_file.write_text(POLICY)
    policy = load_policy(policy_file)
    root = tmp_path / "data"
    with psycopg.connect(dsn, autocommit=True) as conn:
        made = build_week(conn, root)
    raw, ms, aux = made.raw, made.ms, made.aux
    with Client(dsn, registry=registry) as client:
        # Unfinished tasks: a re-image of night 2's MS (whose output directory holds every image), and a
        # reconversion naming one of night 3's subband files.
        reimage = client.spawn("create-image", {"ms_path": ms[2], "output_dir": str(root / "images")}).task_id
        reconvert = client.spawn(
            "convert-uvh5",
            {"input_files": [raw[3][0]], "output_dir": str(root / "ms")},
        ).task_id

    expected = (
        # raw (2 d, once converted): nights 1-5; night 0 is not converted, night 6 too young, and one
        # file of night 3 is named by the reconversion.
        {("raw", p) for d in range(1, 6) for p in raw[d] if p != raw[3][0]}
        # ms (3 d, imaged and measured): nights 3 and 4; night 1 was never imaged, night 2 is re-imaged.
        | {("ms", ms[3]), ("ms", ms[4])}
        # residual and PSF (5 d, measured): night 2 only; images and previews are kept for ever.
        | {("image_aux", aux[2][0])}
    )

    # The dry run lists exactly that, and removes nothing.
    result = CliRunner().invoke(
        app, ["storage", "--dry-run", "--json", "--dsn", dsn, "--policy", str(policy_file)]
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    would = {(r["kind"], r["product"]) for r in shown["would_remove"]}
    # The CLI decides at the real time: everything in the week is older than the rules by then.
    assert expected <= would
    assert all(Path(p).exists() for _, p in would)
    assert removed_products(dsn) == set()
    # Plain `contimg storage` shows the usage (not the help), here from ABSURD_DSN.
    plain = CliRunner().invoke(app, ["storage"], env={"ABSURD_DSN": dsn}, terminal_width=160)
    assert plain.exit_code == 0, plain.output
    assert "products on disk by kind" in plain.output and "2026-06-07" in plain.output
    kinds = {k["kind"]: k for k in shown["by_kind"]}
    assert (
        kinds["raw"]["products"] == 14 and kinds["ms"]["products"] == 6 and kinds["images"]["products"] == 5
    )

    with psycopg.connect(dsn, autocommit=True) as conn:
        report = prune(conn, policy, now=NOW)
    assert {(r.kind, r.product) for r in report.removed} == expected
    assert removed_products(dsn) == expected
    for _, path in expected:
        assert not Path(path).exists()
    gone = {p for r in report.removed for p in r.paths}
    assert set(aux[2]) <= gone
    for d in range(7):
        assert Path(made.image.get(d, root)).exists()
    assert Path(ms[1]).exists() and Path(ms[2]).exists() and Path(raw[3][0]).exists()
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT kind, bytes, night FROM products.storage_removals").fetchall()
        assert all(n > 0 for _, n, _ in rows)
        assert {night for kind, _, night in rows if kind == "ms"} == {date(2026, 6, 4), date(2026, 6, 5)}
        # A second pass finds nothing more.
        assert prune(conn, policy, now=NOW).removed == []

    # Once those tasks have ended, what they held may go too.
    with Client(dsn, registry=registry) as client:
        client.cancel(reimage)
        client.cancel(reconvert)
    with psycopg.connect(dsn, autocommit=True) as conn:
        later = prune(conn, policy, now=NOW)
    assert {(r.kind, r.product) for r in later.removed} == {("ms", ms[2]), ("raw", raw[3][0])}


def test_a_bad_policy_names_the_file_and_the_key(dsn: str, tmp_path: Path) -> None:
    bad = tmp_path / "storage.yaml"
    bad.write_text("retention:\n  ms: {keep_days: -1}\n  mosaic: {keep_days: 3}\n")
    result = CliRunner().invoke(app, ["storage", "prune", "--dry-run", "--policy", str(bad), "--dsn", dsn])
    assert result.exit_code != 0
    assert str(bad) in result.output and "retention.mosaic" in result.output


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("guard:\n  critical: lots\n", "guard.critical"),
        ("retention:\n  raw: {keep_days: 1, require: [imaged]}\n", "retention.raw.require"),
        ("retention:\n  ms: {keep: 3}\n", "retention.ms.keep_days"),
    ],
)
def test_policy_errors_say_which_key(tmp_path: Path, text: str, key: str) -> None:
    from absurd.errors import ConfigurationError

    bad = tmp_path / "p.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigurationError) as err:
        load_policy(bad)
    assert str(bad) in str(err.value) and key in str(err.value)


def test_the_prune_task_removes_and_records_under_its_task_id(dsn: str, tmp_path: Path) -> None:
    """prune-storage on the queue, as the daily schedule runs it: the week is months old by now."""
    policy_file = tmp_path / "storage.yaml"
    policy_file.write_text(POLICY)
    with psycopg.connect(dsn, autocommit=True) as conn:
        week = build_week(conn, tmp_path / "data")
    settings = WorkerSettings(queues=["default"], concurrency=1, poll_s=0.2, shutdown_grace_s=5.0)
    worker = Worker(registry, settings, dsn)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        with Client(dsn, registry=registry) as client:
            task_id = client.spawn("prune-storage", {"policy_path": str(policy_file)}).task_id
            result = client.wait_result(task_id, timeout_s=120)
    finally:
        worker.stop()
        thread.join(30)
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT kind, product, task_id FROM products.storage_removals").fetchall()
    assert {r[2] for r in rows} == {task_id}
    assert result["removed"] == len(rows)
    removed = {(kind, product) for kind, product, _ in rows}
    # Months old: every converted subband file, every imaged and measured MS, every measured residual.
    assert removed == (
        {("raw", p) for d in range(1, 7) for p in week.raw[d]}
        | {("ms", week.ms[d]) for d in range(2, 7)}
        | {("image_aux", week.aux[d][0]) for d in range(2, 7)}
    )
    assert all(not Path(p).exists() for _, p in removed)
    assert all(Path(p).exists() for p in week.image.values())
