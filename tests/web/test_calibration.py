"""The calibration wizard in a real browser, on a real Measurement Set: the seed's calibrator transit,
simulated and converted by the pipeline's own task, is solved from the page by a real worker (CASA), its
plots and QA reviewed, and the solve applied; a viewer can do neither."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from contimg.store import products
from tests.support.processes import wait_until
from tests.web.conftest import OPERATOR_TOKEN, VIEWER_TOKEN, Site, login, screenshot

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# The solve and the apply run CASA in a worker.
pytestmark = pytest.mark.science


@dataclass(frozen=True)
class Transit:
    """The converted calibrator transit and the directory its caltables go to by default."""

    ms_path: Path
    caltable_dir: Path


@pytest.fixture(scope="module")
def transit(site: Site) -> Transit:
    """The seed's calibrator transit (16 antennas, 4 channels per subband, 6 integrations), simulated and
    converted by the pipeline's own task; the site's worker serves the calibrate queue."""
    ms_path = site.sky.calibrator_ms
    return Transit(ms_path, ms_path.parent.parent / "caltables")


def _audited(site: Site, actor: str, action: str, allowed: bool) -> int:
    row = site.client.conn.execute(
        "SELECT count(*) FROM web.audit_log WHERE actor = %s AND action LIKE %s AND allowed = %s",
        (actor, action, allowed),
    ).fetchone()
    return int(row[0]) if row else 0


def test_the_wizard_solves_reviews_and_applies(page: Page, site: Site, transit: Transit) -> None:
    ms = str(transit.ms_path)
    # A viewer sees the wizard but cannot run a solve: the button is disabled and the post refused.
    login(page, site, VIEWER_TOKEN, "/calibration")
    expect(page.locator("#run-solve")).to_be_disabled()
    refused = page.request.post(f"{site.url}/calibration/solve", form={"ms_path": ms, "mode": "full"})
    assert refused.status == 403 and "viewer" in refused.text()
    assert _audited(site, "victor", "POST /calibration/solve", False) == 1

    # Configure: the MS from the products index, bandpass + gains, the reference antenna left on auto.
    page.context.clear_cookies()
    login(page, site, OPERATOR_TOKEN, "/calibration")
    # The calibrator transit is chosen first, named by the calibrator in its beam.
    expect(page.locator("#ms-path")).to_have_value(ms)
    expect(page.locator("#ms-path option:checked")).to_contain_text("3C286")
    screenshot(page, "calibration-configure")
    assert page.request.get(f"{site.url}/calibration/runs/{2**40}").status == 404
    assert page.request.get(f"{site.url}/events/calibration/{2**40}").status == 404
    page.check("input[name=mode][value=full]")
    page.click("#run-solve")
    page.wait_for_url(f"{site.url}/calibration/runs/*")
    solve_id = int(page.url.rsplit("/", 1)[1])
    task = site.client.get_task(solve_id)
    assert task["name"] == "solve-calibration" and task["params"]["ms_path"] == ms
    assert task["params"]["caltable_dir"] == str(transit.caltable_dir) and task["params"]["refant"] is None

    # Run → Review, pushed into the page without a reload when the worker finishes the solve.
    page.evaluate("window.__notReloaded = true")
    expect(page.locator("#qa-verdict")).to_have_text("QA passed", timeout=120_000)
    assert page.evaluate("window.__notReloaded") is True
    expect(page.locator("#solve-state")).to_have_text("completed")
    checks = page.locator("#qa-checks tbody tr")
    expect(checks).to_have_count(3)
    expect(page.locator("#qa-checks tr.pass td.tick")).to_have_text(["✔", "✔", "✔"])

    caltable_id = int(page.locator("#apply-form").get_attribute("action").split("/")[3])  # type: ignore[union-attr]
    stored = site.client.conn.execute(
        "SELECT task_id, mode, qa_passed FROM products.caltables WHERE id = %s", (caltable_id,)
    ).fetchone()
    assert stored == (solve_id, "full", True)
    images = page.locator("#plots img")
    expect(images).to_have_count(4)
    wait_until(
        lambda: page.evaluate("[...document.querySelectorAll('#plots img')].every(i => i.naturalWidth > 0)"),
        timeout=30,
        what="the plots to load",
    )
    for src in images.evaluate_all("imgs => imgs.map(i => i.getAttribute('src'))"):
        assert src.startswith(f"/api/v1/calibration/caltables/{caltable_id}/plots/"), src
        response = page.request.get(site.url + src)
        assert response.status == 200 and response.headers["content-type"] == "image/png"
        assert response.body().startswith(PNG_MAGIC)
    assert str(transit.caltable_dir) not in page.content()  # plots by id, never by server path

    # A viewer cannot apply, from the form or the API; both refusals are audited.
    viewer_form = page.request.post(
        f"{site.url}/calibration/caltables/{caltable_id}/apply",
        form={"ms_path": ms},
        headers={"Cookie": f"contimg_token={VIEWER_TOKEN}"},
    )
    viewer_api = page.request.post(
        f"{site.url}/api/v1/calibration/caltables/{caltable_id}/apply",
        data={},
        headers={"Authorization": f"Bearer {VIEWER_TOKEN}"},
    )
    assert viewer_form.status == 403 and viewer_api.status == 403
    assert _audited(site, "victor", f"%/calibration/caltables/{caltable_id}/apply", False) == 2

    # Apply this caltable to the MS it was solved on; the apply task runs and marks the MS calibrated.
    page.click("#apply-caltable")
    page.wait_for_url(f"{site.url}/calibration/runs/{solve_id}?apply=*")
    apply_id = int(page.url.rsplit("=", 1)[1])
    expect(page.locator("#apply-state")).to_have_text("completed", timeout=120_000)
    expect(page.locator("#apply-done")).to_contain_text("CORRECTED_DATA")
    applied = site.client.get_task(apply_id)
    assert applied["name"] == "apply-calibration" and applied["result"]["caltable_id"] == caltable_id
    assert products.find_ms(site.client.conn, ms).calibrated_with == caltable_id  # type: ignore[union-attr]
    assert _audited(site, "olga", "calibration.solve", True) == 1
    assert _audited(site, "olga", "calibration.apply", True) == 1
    screenshot(page, "calibration")


def _post(site: Site, path: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        site.url + path,
        data=json.dumps(payload).encode(),
        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_bad_requests_are_refused_with_the_reason(site: Site, transit: Transit, tmp_path: Path) -> None:
    """An MS the products index does not hold, or an unknown caltable, is refused at once; an unknown
    reference antenna fails the solve at once (no retry), naming the antenna and the ones there are."""
    status, body = _post(site, "/api/v1/calibration/solve", {"ms_path": str(tmp_path / "nope.ms")})
    assert status == 400 and "nope.ms is not in products.ms_index" in body["detail"]
    status, body = _post(site, f"/api/v1/calibration/caltables/{2**40}/apply", {})
    assert status == 404 and "no caltable" in body["detail"]

    payload = {"ms_path": str(transit.ms_path), "mode": "bandpass", "refant": "DSA-999"}
    status, body = _post(site, "/api/v1/calibration/solve", payload)
    assert status == 200, body
    task_id = int(body["task_id"])
    wait_until(lambda: site.client.get_task(task_id)["state"] == "failed", timeout=120, what="the solve")
    task = site.client.get_task(task_id)
    assert task["attempts"] == 1
    assert "'DSA-999' is not in the Measurement Set" in task["last_error"]["message"]
    assert "DSA-001" in task["last_error"]["message"]
