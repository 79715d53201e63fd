"""The dashboard in a real browser: live overview, DLQ retry and its refusal to a viewer, the sky view's
click-to-measure, the variable's light curve and its VOTable, and screenshots of the main pages."""

from __future__ import annotations

import io
import json
import math
import re
import urllib.request
from pathlib import Path

import numpy as np
import psycopg
from astropy.io.votable import parse_single_table
from playwright.sync_api import Page, expect

from contimg.store import products
from contimg.web import live
from science.catalogs import MonitoringSource
from science.fits_image import read_plane
from science.sky_render import View, window
from tests.support.processes import wait_until
from tests.web.conftest import OPERATOR_TOKEN, VIEWER_TOKEN, Site, login, screenshot
from tests.web.seed import N_EPOCHS, VARIABLE


def _wait_for(page: Page, expression: str) -> None:
    """Poll a JavaScript condition. (Playwright's wait_for_function evaluates a string, which the
    page's CSP rightly forbids; evaluate runs outside it.)"""
    wait_until(lambda: bool(page.evaluate(expression)), timeout=30, interval=0.1, what=expression)


def _dead_letter(site: Site, message: str) -> tuple[int, int]:
    """A task that fails once with no retry left: (task id, its DLQ entry id)."""
    task_id = site.client.spawn("fail", {"fail_attempts": 5, "message": message}, max_attempts=1).task_id
    wait_until(lambda: site.client.get_task(task_id)["state"] == "failed", timeout=60, what=f"task {task_id}")
    [entry] = [e for e in site.client.dlq(limit=1000) if e["task_id"] == task_id]
    return task_id, int(entry["id"])


def test_overview_updates_without_a_reload(page: Page, site: Site) -> None:
    login(page, site, OPERATOR_TOKEN)
    second = page.context.new_page()  # another operator's tab: its own live stream, no connection of its own
    second.goto(f"{site.url}/")
    completed = page.locator("#hour-completed")
    before = int(completed.inner_text())
    page.evaluate("window.__notReloaded = true")
    task_id = site.client.spawn("echo", {"from": "the overview test"}).task_id
    site.client.wait_result(task_id, 60)
    # Other tasks may finish meanwhile: the count must grow, with no navigation.
    wait_until(lambda: int(completed.inner_text()) > before, timeout=30, interval=0.2, what="the overview")
    assert page.evaluate("window.__notReloaded") is True
    with psycopg.connect(site.dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = %s AND datname = current_database()",
            (live.LISTENER,),
        )
        assert row.fetchone() == (1,)
    second.close()
    # Background work (a negative priority) that no worker serves: its wait gets a tile of its own, pushed
    # live like the rest.
    behind = site.client.spawn("echo", {"from": "the archive"}, queue="nobody-serves", priority=-5).task_id
    try:
        page.locator("#oldest-background").wait_for(timeout=30_000)
        screenshot(page, "overview")
    finally:
        site.client.cancel(behind)


def test_dlq_retry_from_the_page_creates_a_new_run(page: Page, site: Site) -> None:
    task_id, dlq_id = _dead_letter(site, "retry me from the page")
    assert len(site.client.runs(task_id)) == 1
    login(page, site, OPERATOR_TOKEN, "/dlq")
    screenshot(page, "dlq")
    page.click(f"#dlq-{dlq_id} button.retry")
    page.wait_for_url(f"{site.url}/dlq")
    # The worker claims the retried task: a second run, attempt 2, made by the engine's own retry.
    wait_until(lambda: len(site.client.runs(task_id)) == 2, timeout=60, what="a second run")
    runs = site.client.runs(task_id)
    assert [r["attempt"] for r in runs] == [1, 2] and runs[0]["id"] != runs[1]["id"]
    entry = site.client.dlq_entry(dlq_id)
    assert entry["resolution"] == "retried" and entry["resolved_by"] == "olga"
    audit = site.client.conn.execute(
        "SELECT actor, allowed FROM web.audit_log WHERE action = 'dlq.retry' AND target = %s",
        (f"dlq:{dlq_id}",),
    ).fetchall()
    assert audit == [("olga", True)]


def test_a_viewer_cannot_retry(page: Page, site: Site) -> None:
    task_id, dlq_id = _dead_letter(site, "a viewer may not retry this")
    login(page, site, VIEWER_TOKEN, "/dlq")
    expect(page.locator(f"#dlq-{dlq_id}")).to_be_visible()
    expect(page.locator(f"#dlq-{dlq_id} button.retry")).to_have_count(0)
    # Posting the form anyway (with the viewer's cookie) is refused, and the refusal audited.
    response = page.request.post(f"{site.url}/dlq/{dlq_id}/retry", form={"reason": "sneaky"})
    assert response.status == 403
    assert "viewer" in response.text()
    api = page.request.post(
        f"{site.url}/api/v1/dlq/{dlq_id}/retry", data={}, headers={"Authorization": f"Bearer {VIEWER_TOKEN}"}
    )
    assert api.status == 403
    assert len(site.client.runs(task_id)) == 1
    assert site.client.dlq_entry(dlq_id)["resolved_at"] is None
    refused = site.client.conn.execute(
        "SELECT count(*) FROM web.audit_log WHERE actor = 'victor' AND NOT allowed AND target LIKE %s",
        (f"%/dlq/{dlq_id}/retry",),
    ).fetchone()
    assert refused == (2,)


def test_cookie_posts_need_the_pages_csrf_token(page: Page, site: Site) -> None:
    task_id, dlq_id = _dead_letter(site, "a forged retry")
    login(page, site, OPERATOR_TOKEN, "/dlq")
    token = page.locator(f"#dlq-{dlq_id} input[name=csrf_token]").first.get_attribute("value")
    assert token is not None and len(token) == 64
    # The operator's cookie goes along, as with a request forged elsewhere, but no token or a wrong one.
    for form in ({"reason": "forged"}, {"reason": "forged", "csrf_token": "0" * 64}):
        forged = page.request.post(f"{site.url}/dlq/{dlq_id}/retry", form=form)
        assert forged.status == 403 and "CSRF token" in forged.text()
    cookie_api = page.request.post(f"{site.url}/api/v1/dlq/{dlq_id}/skip", data={})
    assert cookie_api.status == 403 and "CSRF token" in cookie_api.text()
    assert site.client.dlq_entry(dlq_id)["resolved_at"] is None and len(site.client.runs(task_id)) == 1
    refused = site.client.conn.execute(
        "SELECT count(*) FROM web.audit_log WHERE actor = 'olga' AND NOT allowed "
        "AND details->>'refused' = 'csrf token' AND target LIKE %s",
        (f"%/dlq/{dlq_id}/%",),
    ).fetchone()
    assert refused == (3,)
    # With the page's token the same post goes through.
    done = page.request.post(f"{site.url}/dlq/{dlq_id}/retry", form={"reason": "real", "csrf_token": token})
    assert done.status == 200 and done.url == f"{site.url}/dlq"
    assert site.client.dlq_entry(dlq_id)["resolution"] == "retried"


def test_dlq_bulk_skip_shows_the_count_and_asks_first(page: Page, site: Site) -> None:
    first, first_dlq = _dead_letter(site, "bulk failure in file 17")
    second, second_dlq = _dead_letter(site, "bulk failure in file 23")
    login(page, site, OPERATOR_TOKEN, "/dlq")
    group = page.locator(".dlq-group", has=page.locator(f"#dlq-{first_dlq}"))
    expect(group.locator(f"#dlq-{second_dlq}")).to_be_visible()  # one fingerprint for both
    group.locator("button.bulk-skip").click()
    expect(page.locator("h1")).to_have_text("Skip 2 entries?")
    assert site.client.dlq_entry(first_dlq)["resolved_at"] is None  # nothing done before the confirmation
    page.fill("input[name=reason]", "known bad files")
    page.click("#confirm-bulk")
    page.wait_for_url(f"{site.url}/dlq")
    for dlq_id, task_id in ((first_dlq, first), (second_dlq, second)):
        entry = site.client.dlq_entry(dlq_id)
        assert entry["resolution"] == "skipped" and entry["resolved_by"] == "olga"
        assert site.client.get_task(task_id)["state"] == "failed"
    bulk = site.client.conn.execute(
        "SELECT details->>'count' FROM web.audit_log WHERE action = 'dlq.bulk_skip' AND actor = 'olga'"
    ).fetchall()
    assert bulk == [("2",)]


def test_a_failed_task_shows_its_log_tail_before_its_traceback(page: Page, site: Site) -> None:
    task_id = site.client.spawn(
        "fail", {"fail_attempts": 5, "message": "gave up after logging", "log_lines": 3}, max_attempts=1
    ).task_id
    wait_until(lambda: site.client.get_task(task_id)["state"] == "failed", timeout=60, what=f"task {task_id}")
    login(page, site, VIEWER_TOKEN, f"/tasks/{task_id}")
    lines = page.locator("#log-1 pre.log .line")
    expect(lines).to_have_count(4)
    texts = lines.all_inner_texts()
    for step, text in enumerate(texts[:3], start=1):
        assert re.fullmatch(rf"\d\d:\d\d:\d\d\.\d{{3}} INFO working step={step} of=3", text.strip()), text
    assert texts[3].startswith("Traceback") and "RuntimeError: gave up after logging" in texts[3]
    expect(page.locator("#log-1 .traceback")).to_have_css("color", "rgb(249, 112, 102)")
    screenshot(page, "task-log")
    # The JSON API carries the same tail, with full timestamps.
    request = urllib.request.Request(
        f"{site.url}/api/v1/tasks/{task_id}", headers={"Authorization": f"Bearer {VIEWER_TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        [run] = json.loads(response.read())["runs"]
    assert [line["text"] for line in run["log"]["lines"]] == [f"working step={i} of=3" for i in (1, 2, 3)]
    assert all(line["level"] == "info" and line["at"].endswith("Z") for line in run["log"]["lines"])


def test_a_running_tasks_page_follows_its_log_tail(page: Page, site: Site) -> None:
    task_id = site.client.spawn(
        "sleep", {"seconds": 6, "heartbeat_every_s": 0.5, "log_progress": True}
    ).task_id
    wait_until(lambda: site.client.get_task(task_id)["state"] == "running", timeout=30, what="the sleep")
    login(page, site, VIEWER_TOKEN, f"/tasks/{task_id}")
    expect(page.locator("#log-1 p.note")).to_have_text("nothing logged yet")
    page.evaluate("window.__notReloaded = true")
    # The run ends and stores its tail; the page fetches it without a reload, then stops asking.
    expect(page.locator("#log-1 pre.log .line").first).to_contain_text(
        "INFO sleeping left_s=", timeout=30_000
    )
    expect(page.locator("#log-1 .state")).to_have_text("completed")
    assert page.evaluate("window.__notReloaded") is True
    expect(page.locator("#run-history")).not_to_have_attribute("hx-get", re.compile(".*"))


def test_sky_view_measures_the_injected_source(page: Page, site: Site) -> None:
    image_id, path = site.sky.image_ids[0], site.sky.image_paths[0]
    name = "REF-C"
    truth = site.sky.truth[name][0]
    ra, dec = site.sky.positions[name]
    data, wcs, _ = read_plane(path)
    u, v = (float(p) for p in wcs.all_world2pix(ra, dec, 0))
    col, row = window(data.shape, View()).to_output(u, v)

    login(page, site, OPERATOR_TOKEN, f"/images/{image_id}")
    sky = page.locator("#sky")
    expect(sky).to_be_visible()
    _wait_for(page, "document.getElementById('sky').naturalWidth > 0")
    assert page.locator(".ov-reference, .ov-monitored").count() == len(site.sky.positions)
    box = sky.bounding_box()
    assert box is not None
    natural = page.evaluate("document.getElementById('sky').naturalWidth")
    x, y = box["x"] + col * box["width"] / natural, box["y"] + row * box["height"] / natural

    page.mouse.move(x, y)
    cursor = page.locator("#cursor")
    expect(cursor).to_contain_text("RA")
    shown_ra, shown_dec = (
        float(cursor.get_attribute("data-ra") or "nan"),
        float(cursor.get_attribute("data-dec") or "nan"),
    )
    assert math.hypot((shown_ra - ra) * math.cos(math.radians(dec)), shown_dec - dec) * 3600 < 3.0

    page.mouse.click(x, y)
    measured = page.locator("#measured")
    expect(measured).to_be_visible(timeout=30_000)
    flux = float(measured.get_attribute("data-flux-jy") or "nan")
    assert abs(flux / truth - 1) < 0.05, f"clicked {name}: {flux:.4f} Jy, truth {truth:.4f} Jy"
    screenshot(page, "sky-view")

    page.click("#save-measure")
    expect(page.locator("#save-status")).to_contain_text("saved as measurement")
    saved = site.client.conn.execute(
        "SELECT flux_jy, measured_by FROM web.measurements WHERE image_id = %s ORDER BY id DESC LIMIT 1",
        (image_id,),
    ).fetchone()
    assert saved is not None and abs(saved[0] / truth - 1) < 0.05 and saved[1] == "olga"


def test_a_mosaic_in_the_sky_view(page: Page, site: Site) -> None:
    """The gallery lists the night's mosaic; its sky view names the task that made it and measures a
    constant source at its true flux."""
    login(page, site, VIEWER_TOKEN, "/images")
    page.locator("#mosaics a").first.click()
    expect(page.locator("#provenance")).to_contain_text("create-mosaic")
    _wait_for(page, "document.getElementById('sky').naturalWidth > 0")
    mosaic_id = int(page.url.rsplit("/", 1)[1].split("?")[0])
    path = site.client.conn.execute(
        "SELECT path FROM products.mosaics WHERE id = %s", (mosaic_id,)
    ).fetchone()
    assert path is not None
    data, wcs, _ = read_plane(path[0])
    name = "REF-A"
    u, v = (float(p) for p in wcs.all_world2pix(*site.sky.positions[name], 0))
    col, row = window(data.shape, View()).to_output(u, v)
    box = page.locator("#sky").bounding_box()
    assert box is not None
    natural = page.evaluate("document.getElementById('sky').naturalWidth")
    page.mouse.click(box["x"] + col * box["width"] / natural, box["y"] + row * box["height"] / natural)
    measured = page.locator("#measured")
    expect(measured).to_be_visible(timeout=30_000)
    flux = float(measured.get_attribute("data-flux-jy") or "nan")
    truth = site.sky.truth[name][1]  # the mosaic is of the drawn epochs, 1 to 3
    assert abs(flux / truth - 1) < 0.05, f"{name} on the mosaic: {flux:.4f} Jy, truth {truth:.4f} Jy"
    expect(page.locator("#save-measure")).to_be_hidden()  # a viewer, and a mosaic: nothing to save
    screenshot(page, "mosaic")


def test_the_variable_light_curve_and_its_votable(page: Page, site: Site, tmp_path: Path) -> None:
    login(page, site, VIEWER_TOKEN, "/sources?sort=eta")
    screenshot(page, "sources")
    # The η–V plot: a click on the variable's point opens it.
    page.click(f'#eta-v a[data-name="{VARIABLE}"]')
    page.wait_for_url(f"{site.url}/sources/{VARIABLE}")
    expect(page.locator("#lc-raw g.pt")).to_have_count(N_EPOCHS)
    expect(page.locator("#lc-norm g.pt")).to_have_count(N_EPOCHS)
    expect(page.locator("#epochs tbody tr")).to_have_count(N_EPOCHS)
    expect(page.locator("#stamps img")).to_have_count(N_EPOCHS)
    _wait_for(
        page, "[...document.querySelectorAll('#stamps img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    screenshot(page, "source")

    with page.expect_download() as download:
        page.click("#export-votable")
    saved = tmp_path / "lightcurve.xml"
    download.value.save_as(saved)
    table = parse_single_table(io.BytesIO(saved.read_bytes())).to_table()
    assert len(table) == N_EPOCHS
    assert str(table["flux"].unit) == "Jy"
    truth = np.array(site.sky.truth[VARIABLE])
    assert np.allclose(np.asarray(table["flux"]), truth, rtol=0.1)
    assert np.all(np.diff(np.asarray(table["mjd"])) > 0)


def test_dragging_across_the_light_curve_zooms_to_that_mjd_range(page: Page, site: Site) -> None:
    login(page, site, VIEWER_TOKEN, f"/sources/{VARIABLE}")
    points = page.locator("#lc-raw g.pt circle")
    expect(points).to_have_count(N_EPOCHS)
    centres = []
    for i in range(N_EPOCHS):
        box = points.nth(i).bounding_box()
        assert box is not None
        centres.append((box["x"] + box["width"] / 2, box["y"] + box["height"] / 2))
    assert [c[0] for c in centres] == sorted(c[0] for c in centres)  # plotted in time order
    # From between the first two epochs to just past the last: the first epoch leaves the plots.
    y = sum(c[1] for c in centres) / N_EPOCHS
    page.mouse.move((centres[0][0] + centres[1][0]) / 2, y)
    page.mouse.down()
    page.mouse.move(centres[-1][0] + 15, y, steps=8)
    page.mouse.up()
    page.wait_for_url("**start_mjd=**")
    expect(page.locator("#lc-raw g.pt")).to_have_count(N_EPOCHS - 1)
    expect(page.locator("#lc-norm g.pt")).to_have_count(N_EPOCHS - 1)
    query = dict(part.split("=") for part in page.url.split("?", 1)[1].split("&"))
    start, end = float(query["start_mjd"]), float(query["end_mjd"])
    assert site.sky.mjds[0] < start < site.sky.mjds[1] and end > site.sky.mjds[-1]
    assert float(page.locator("input[name=start_mjd]").input_value()) == start  # the form shows the range
    screenshot(page, "source-zoom")
    page.locator("#lc-raw svg").dblclick()
    page.wait_for_url(re.compile(r"/sources/[^?]*\??$"))
    expect(page.locator("#lc-raw g.pt")).to_have_count(N_EPOCHS)


def test_main_pages(page: Page, site: Site) -> None:
    """Every main page renders for an operator, with no console error (so nothing broke the CSP)."""
    login(page, site, OPERATOR_TOKEN, "/tasks")
    expect(page.locator("#task-list tbody tr").first).to_be_visible()
    screenshot(page, "tasks")
    first = page.locator("#task-list tbody tr td a").first
    first.click()
    expect(page.locator("#runs")).to_be_visible()
    # The seed's apply-calibration, run by the real worker: its log tail is what the science code logged.
    page.goto(f"{site.url}/tasks/{site.sky.observed_tasks['apply']}")
    expect(page.locator("#logs pre.log").first).to_contain_text("applied calibration")  # newest first
    expect(page.locator("#logs pre.log").last).to_contain_text("no valid caltable yet; waiting")
    screenshot(page, "task")
    for path, name, marker in (
        ("/workflows", "workflows", "#workflows"),
        ("/breakers", "breakers", ".br-open"),
        ("/schedules", "schedules", "#schedules"),
        ("/images", "images", "#gallery img, #mosaics img"),
        ("/alerts", "alerts", "#alerts"),
        ("/metrics", "metrics", "#task-metrics"),
        ("/audit", "audit", "#audit"),
    ):
        page.goto(site.url + path)
        expect(page.locator(marker).first).to_be_visible()
        page.wait_for_load_state("networkidle")
        screenshot(page, name)
    # The open breaker is reset from its page; the workers read the state from the database.
    page.goto(site.url + "/breakers")
    page.click("#gates button:has-text('Reset')")
    expect(page.locator(".br-closed")).to_be_visible()
    assert site.client.gate("casa")["breaker_state"] == "closed"
    # Trigger a schedule now: it fires once, by hand, recorded as the operator's.
    page.goto(site.url + "/schedules")
    page.click("#schedules button[value=trigger]")
    page.wait_for_url(f"{site.url}/schedules")
    fires = site.client.conn.execute(
        "SELECT count(*) FROM absurd.schedule_fires WHERE kind = 'manual'"
    ).fetchone()
    assert fires == (1,)
    page.goto(site.url + "/workflows")
    page.locator("#workflows tbody a").first.click()
    expect(page.locator("svg.dag")).to_be_visible()
    screenshot(page, "workflow")


def test_concurrency_limits_are_set_from_the_page_by_operators_only(page: Page, site: Site) -> None:
    login(page, site, OPERATOR_TOKEN, "/breakers")
    row = page.locator("#gate-casa")
    row.locator("input[name=max_running]").fill("2")
    row.locator(".limit-form button").click()
    page.wait_for_url(f"{site.url}/breakers")
    assert site.client.gate("casa")["max_running"] == 2
    expect(page.locator("#gate-casa input[name=max_running]")).to_have_value("2")
    screenshot(page, "limits")
    audited = site.client.conn.execute(
        "SELECT actor, allowed, details->>'max_running', details->>'previous' FROM web.audit_log "
        "WHERE action = 'gate.limit' AND target = 'gate:casa' ORDER BY id"
    ).fetchall()
    assert audited == [("olga", True, "2", None)]
    # Out-of-range limits and unknown gates are refused through the API, and nothing changes.
    api = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    bad = page.request.post(
        f"{site.url}/api/v1/breakers/limit", data={"key": "casa", "max_running": 0}, headers=api
    )
    assert bad.status == 422
    unknown = page.request.post(
        f"{site.url}/api/v1/breakers/limit", data={"key": "no-such-gate", "max_running": 3}, headers=api
    )
    assert unknown.status == 404 and "no-such-gate" in unknown.text()
    assert site.client.gate("casa")["max_running"] == 2

    # A viewer sees the limit but no form; posting anyway is refused on the page and the API, and audited.
    page.context.clear_cookies()
    login(page, site, VIEWER_TOKEN, "/breakers")
    expect(page.locator("#gate-casa td.limit")).to_have_text("2")
    expect(page.locator(".limit-form")).to_have_count(0)
    form = page.request.post(f"{site.url}/breakers/limit", form={"key": "casa", "max_running": "50"})
    viewer_api = page.request.post(
        f"{site.url}/api/v1/breakers/limit",
        data={"key": "casa", "max_running": 50},
        headers={"Authorization": f"Bearer {VIEWER_TOKEN}"},
    )
    assert form.status == 403 and viewer_api.status == 403 and "viewer" in form.text()
    assert site.client.gate("casa")["max_running"] == 2
    refused = site.client.conn.execute(
        "SELECT count(*) FROM web.audit_log "
        "WHERE actor = 'victor' AND NOT allowed AND target LIKE '%/breakers/limit'"
    ).fetchone()
    assert refused == (2,)

    # The operator clears it: no limit.
    page.context.clear_cookies()
    login(page, site, OPERATOR_TOKEN, "/breakers")
    page.locator("#gate-casa input[name=max_running]").fill("")
    page.locator("#gate-casa .limit-form button").click()
    page.wait_for_url(f"{site.url}/breakers")
    assert site.client.gate("casa")["max_running"] is None


def test_submit_a_conversion_from_the_page(page: Page, site: Site, tmp_path: Path) -> None:
    """The form queues one convert-uvh5 per subband group in the range, with the group's files."""
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    for stamp in ("2026-11-22T06:00:00", "2026-11-22T06:05:10"):
        for sb in range(16):
            (incoming / f"{stamp}_sb{sb:02d}.hdf5").touch()
    login(page, site, OPERATOR_TOKEN, "/submit")
    form = page.locator("#convert-form")
    form.locator("input[name=input_dir]").fill(str(incoming))
    form.locator("input[name=output_dir]").fill(str(tmp_path / "ms"))
    form.locator("input[name=start_time]").fill("2026-11-22T06:00:00")
    form.locator("input[name=end_time]").fill("2026-11-22T06:01:00")
    form.locator("button").click()
    expect(page.locator("#submitted")).to_contain_text("Queued 1 conversion task")
    screenshot(page, "submit")
    task_id = int(page.locator("#submitted a").first.inner_text())
    task = site.client.get_task(task_id)
    assert task["name"] == "convert-uvh5" and task["queue"] == "convert"
    assert sorted(task["params"]["input_files"]) == sorted(
        str(p) for p in incoming.glob("2026-11-22T06:00:00_*")
    )
    site.client.cancel(task_id)  # no converter serves this test's queue


def test_the_source_table_follows_new_metrics(page: Page, site: Site) -> None:
    """A source catalogued after the page loaded appears once a light-curve update lands (NOTIFY)."""
    login(page, site, VIEWER_TOKEN, "/sources")
    expect(page.locator("#sources tbody tr")).to_have_count(len(site.sky.positions))
    page.evaluate("window.__notReloaded = true")
    ra, dec = site.sky.positions[VARIABLE]
    with psycopg.connect(site.dsn, autocommit=True) as conn:
        products.upsert_sources(
            conn, [MonitoringSource(name="LATE-1", ra_deg=ra + 0.01, dec_deg=dec)], "late.csv"
        )
    site.client.wait_result(site.client.spawn("update-lightcurves", {}, queue="photometry").task_id, 120)
    expect(page.locator("#sources")).to_contain_text("LATE-1", timeout=30_000)
    assert page.evaluate("window.__notReloaded") is True
