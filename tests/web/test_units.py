"""The dashboard's parts that need no server: tokens, routes, fingerprints, the sky-view mapping,
server-sent event framing and the demo's closing lines."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from starlette.routing import Route

from contimg.web.app import create_app
from contimg.web.auth import parse_tokens
from contimg.web.fingerprint import fingerprint, normalise
from contimg.web.live import sse_message
from contimg.web.settings import WebSettings
from contimg.web.urls import demo_hint
from science.sky_render import View, render, window
from tests.support.processes import REPO

TOKENS = "ann:operator:aaaaaaaaaaaaaaaaaaaa,bob:viewer:bbbbbbbbbbbbbbbbbbbb"


def test_tokens_parse_and_bad_entries_are_named() -> None:
    ann, bob = parse_tokens(TOKENS, "CONTIMG_WEB_TOKENS")
    assert (ann.name, ann.role, bob.name, bob.role) == ("ann", "operator", "bob", "viewer")
    with pytest.raises(ValueError, match="entry 2 is not name:role:token"):
        parse_tokens("ann:operator:aaaaaaaaaaaaaaaaaaaa,oops", "CONTIMG_WEB_TOKENS")
    with pytest.raises(ValueError, match=r"entry 1 \(cy\) has role 'admin'"):
        parse_tokens("cy:admin:cccccccccccccccccccc", "CONTIMG_WEB_TOKENS")
    with pytest.raises(ValueError, match="under 16 characters"):
        parse_tokens("dee:viewer:short", "CONTIMG_WEB_TOKENS")
    with pytest.raises(ValueError, match="is empty"):
        parse_tokens(" , ", "CONTIMG_WEB_TOKENS")


def _pattern(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")


def test_no_literal_route_is_shadowed_by_an_earlier_parameter() -> None:
    """The replaced system's `/sources/export` went to `/sources/{source_id}`: the router matches in
    order, so a literal path must not match any parameterised route registered before it."""
    app = create_app(WebSettings(dsn="dbname=unused", tokens=TOKENS))  # type: ignore[arg-type]
    routes = [r for r in app.routes if isinstance(r, Route)]
    assert _pattern("/api/v1/sources/{name}").match("/api/v1/sources/export")  # the check can fail
    for i, later in enumerate(routes):
        if "{" in later.path:
            continue
        for earlier in routes[:i]:
            same_method = bool((earlier.methods or set()) & (later.methods or set()))
            if "{" in earlier.path and same_method:
                assert not _pattern(earlier.path).match(later.path), (
                    f"{later.path} is shadowed by {earlier.path}"
                )


def test_fingerprints_group_the_same_failure() -> None:
    a = fingerprint(
        "convert-uvh5", "InvalidInputError", "/data/in/2026-11-22T06:00:00_sb03.hdf5: cannot read"
    )
    b = fingerprint(
        "convert-uvh5", "InvalidInputError", "/data/in/2026-11-23T07:10:00_sb11.hdf5: cannot read"
    )
    c = fingerprint("convert-uvh5", "InvalidInputError", "no calibration table within 12 h")
    assert a == b != c
    assert normalise("task 1234 timed out after 30.5 s\nTraceback...") == "task <n> timed out after <n> s"


def test_render_window_maps_image_pixels_both_ways() -> None:
    data = np.zeros((100, 80))
    data[30, 50] = 1.0  # row y=30, column x=50
    for view in (View(), View(zoom=4, cx=50, cy=30), View(zoom=2.5, cx=10, cy=90, size=256)):
        png, win = render(data, view)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        col, row = win.to_output(50, 30)
        # The inverse the browser applies (science/sky_render.py's docstring).
        u = win.x0 - 0.5 + col / win.scale
        v = win.y0 - 0.5 + (win.height - row) / win.scale
        assert (u, v) == pytest.approx((50, 30))
    whole = window((100, 80), View())
    assert whole.scale == pytest.approx(512 / 100)


def test_sse_message_frames_every_line() -> None:
    assert (
        sse_message("overview", "<p>a</p>\n<p>b</p>") == "event: overview\ndata: <p>a</p>\ndata: <p>b</p>\n\n"
    )


def test_demo_prints_where_its_dashboard_is() -> None:
    lines = demo_hint("host=/tmp/pg dbname=contimg_demo_x", "VAR 1", port=8123)
    assert (
        lines[0]
        == "dashboard of this run: contimg serve --dsn 'host=/tmp/pg dbname=contimg_demo_x' --port 8123"
    )
    assert "http://127.0.0.1:8123/" in lines[2] and "http://127.0.0.1:8123/sources/VAR%201" in lines[2]


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts deploy/contimg-web.service, pointed at this checkout's venv (verify
    checks that ExecStart exists)."""
    text = (REPO / "deploy" / "contimg-web.service").read_text()
    assert "ExecStart=/opt/contimg/.venv/bin/contimg serve" in text
    unit = tmp_path / "contimg-web.service"
    unit.write_text(text.replace("/opt/contimg/.venv/bin", str(Path(sys.executable).parent)))
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "Unknown" not in done.stderr and "Invalid" not in done.stderr, done.stderr
