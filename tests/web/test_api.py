"""The JSON API against its own OpenAPI document (schemathesis, a light run), and its access rules."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from tests.support.processes import wait_until
from tests.web.conftest import OPERATOR_TOKEN, VIEWER_TOKEN, Site
from tests.web.seed import VARIABLE

VIEWER = {"Authorization": f"Bearer {VIEWER_TOKEN}"}


def _get(site: Site, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(site.url + path, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_api_conforms_to_its_openapi_document(site: Site) -> None:
    """Every read-only operation, a few generated requests each, as a viewer: no server error, and
    every response matches the document (mutations have their own tests below and in the browser)."""
    schema = schemathesis.openapi.from_url(site.url + "/api/v1/openapi.json", headers=VIEWER)
    operations = [
        r.ok() for r in schema.include(method="GET").exclude(path_regex=r"\.png$").get_all_operations()
    ]
    assert len(operations) >= 15, [op.label for op in operations]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=5,
            deadline=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case: Any) -> None:
            # A cone needs both ra and dec, a rule OpenAPI cannot state: one of them alone is refused.
            cone = case.operation.path == "/api/v1/sources"
            excluded = [schemathesis.checks.positive_data_acceptance] if cone else []
            case.call_and_validate(headers=VIEWER, excluded_checks=excluded)

        check()


def test_every_route_needs_a_token(site: Site) -> None:
    status, body = _get(site, "/api/v1/overview")
    assert status == 401 and b"token" in body
    status, _ = _get(site, "/api/v1/overview", {"Authorization": "Bearer not-a-real-token-at-all"})
    assert status == 401


def test_lightcurve_formats(site: Site) -> None:
    status, body = _get(site, f"/api/v1/sources/{VARIABLE}/lightcurve", VIEWER)
    assert status == 200
    curve = json.loads(body)
    assert curve["name"] == VARIABLE and len(curve["epochs"]) == 4
    status, body = _get(site, f"/api/v1/sources/{VARIABLE}/lightcurve?format=csv", VIEWER)
    assert status == 200 and body.decode().splitlines()[0].startswith("source,mjd,")
    assert len(body.decode().splitlines()) == 5
    status, body = _get(site, "/api/v1/sources/NO-SUCH-SOURCE/lightcurve", VIEWER)
    assert status == 404 and b"NO-SUCH-SOURCE" in body
    status, body = _get(site, f"/api/v1/sources/{VARIABLE}/lightcurve?format=fits", VIEWER)
    assert status == 422


def test_normalise_endpoint(site: Site) -> None:
    night = {"start_mjd": site.sky.mjds[0] - 0.5, "end_mjd": site.sky.mjds[-1] + 0.5, "names": [VARIABLE]}
    payload = json.dumps(night).encode()
    request = urllib.request.Request(
        site.url + "/api/v1/photometry/normalize",
        data=payload,
        headers={**VIEWER, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        done = json.loads(response.read())
    [curve] = done["lightcurves"]
    assert curve["name"] == VARIABLE and len(curve["measurements"]) == 4
    assert len(done["scales"]) == 4 and all(s["n_references"] == 3 for s in done["scales"])


def test_operator_actions_via_the_api_are_audited(site: Site) -> None:
    [alert] = [a for a in site.client.conn.execute("SELECT id FROM products.alerts").fetchall()][:1]
    body = json.dumps({"state": "classified", "classification": "AGN flare", "notes": "checked"}).encode()
    request = urllib.request.Request(
        site.url + f"/api/v1/alerts/{alert[0]}/triage",
        data=body,
        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    row = site.client.conn.execute(
        "SELECT state, classification, updated_by FROM web.alert_triage WHERE alert_id = %s", (alert[0],)
    ).fetchone()
    assert row == ("classified", "AGN flare", "olga")
    audited = site.client.conn.execute(
        "SELECT count(*) FROM web.audit_log WHERE action = 'alert.triage' AND actor = 'olga' AND allowed"
    ).fetchone()
    assert audited is not None and audited[0] >= 1


def test_retry_with_edited_params_through_the_api(site: Site) -> None:
    """A dead letter retried with corrected params runs again with them and completes."""
    task_id = site.client.spawn(
        "fail", {"fail_attempts": 9, "message": "needs new params"}, max_attempts=1
    ).task_id
    wait_until(lambda: site.client.get_task(task_id)["state"] == "failed", timeout=60, what=f"task {task_id}")
    [entry] = [e for e in site.client.dlq(limit=1000) if e["task_id"] == task_id]
    body = json.dumps({"reason": "fixed the params", "params": {"fail_attempts": 0}}).encode()
    request = urllib.request.Request(
        site.url + f"/api/v1/dlq/{entry['id']}/retry",
        data=body,
        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read()) == {"dlq_id": entry["id"], "action": "retry", "task_id": task_id}
    assert site.client.wait_result(task_id, 60) == {"succeeded_on_attempt": 2}
    assert site.client.get_task(task_id)["params"]["fail_attempts"] == 0


def test_bad_submissions_are_refused_with_the_reason(site: Site, tmp_path: Path) -> None:
    image = {"ms_path": str(tmp_path / "nope.ms"), "output_dir": str(tmp_path)}
    cases = [
        ("/api/v1/submit/image", image, "nope.ms"),
        (
            "/api/v1/submit/convert",
            {"input_dir": str(tmp_path), "output_dir": str(tmp_path), "start_time": "2026-11-22T06:00:00Z",
             "end_time": "2026-11-22T07:00:00Z"},
            "no subband group",
        ),
    ]  # fmt: skip
    for path, payload, reason in cases:
        request = urllib.request.Request(
            site.url + path,
            data=json.dumps(payload).encode(),
            headers={"Authorization": f"Bearer {OPERATOR_TOKEN}", "Content-Type": "application/json"},
            method="POST",
        )
        try:
            urllib.request.urlopen(request, timeout=30)
        except urllib.error.HTTPError as exc:
            assert exc.code == 400 and reason in json.loads(exc.read())["detail"]
        else:
            raise AssertionError(f"{path} accepted {payload}")


def test_overview_figures(site: Site) -> None:
    status, body = _get(site, "/api/v1/overview", VIEWER)
    assert status == 200
    overview = json.loads(body)
    assert overview["last_image"]["id"] == max(site.sky.image_ids)
    assert overview["stalled"] is False  # an image landed within the server's --stall-after-s (1 h)
    assert [w["queues"] for w in overview["workers"]] == [
        ["photometry", "default", "imaging", "convert", "calibrate"]
    ]
    assert set(overview["live"]) == {"pending", "running", "sleeping", "waiting"}
