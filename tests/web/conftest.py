"""The dashboard under test: a real uvicorn (``contimg serve``) on a real Postgres seeded by the
pipeline's own tasks, a real worker, and Debian's Chromium driven by Playwright.

One database, server, worker and browser serve the whole package. Every browser request that is not
to 127.0.0.1 is aborted and recorded; each test asserts there were none.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, Playwright, Route, sync_playwright

from absurd.client import Client
from contimg.tasks.registry import registry
from tests.support.postgres import ServerUnderTest, fresh_database
from tests.support.processes import REPO, start_worker, stop_worker, wait_until
from tests.web.seed import SeededSky, seed_operations, seed_sky

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OPERATOR_TOKEN = "op-token-0123456789abcdef"
VIEWER_TOKEN = "viewer-token-0123456789abcdef"
TOKENS = f"olga:operator:{OPERATOR_TOKEN},victor:viewer:{VIEWER_TOKEN}"
SCREENSHOTS = REPO / "runs" / "screenshots"


@dataclass
class Site:
    """The running dashboard and what it serves."""

    url: str
    dsn: str
    sky: SeededSky
    client: Client
    external: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="session")
def site(pg_server: ServerUnderTest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Seed a database, start a worker and the dashboard; stop both afterwards."""
    work = tmp_path_factory.mktemp("web")
    with fresh_database(pg_server) as dsn:
        worker = start_worker(
            dsn, "--queue", "photometry", "--queue", "default", "--queue", "imaging", "--queue", "convert",
            "--queue", "calibrate", "--concurrency", "3",
            "--log-level", "INFO",  # the tasks' INFO lines are their log tails on the task pages
            registry="contimg.tasks.registry:registry",
        )  # fmt: skip
        server = None
        try:
            sky = seed_sky(dsn, work)
            seed_operations(dsn)
            port = free_port()
            env = {**os.environ, "PYTHONPATH": str(REPO), "CONTIMG_WEB_TOKENS": TOKENS}
            log = (work / "serve.log").open("wb")
            command = [sys.executable, "-m", "contimg.cli", "serve", "--dsn", dsn, "--port", str(port)]
            # A long poll: the live overview must be updated by NOTIFY, not by the fallback.
            command += ["--poll-s", "60", "--stall-after-s", "3600"]
            server = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: answers(url + "/login"), timeout=60, what="the dashboard to answer")
            with Client(dsn, registry=registry) as client:
                yield Site(url, dsn, sky, client)
        finally:
            if server is not None:
                server.terminate()
                server.wait(30)
            stop_worker(worker)


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    """Playwright's driver (no browser download: Debian's Chromium is used)."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright, site: Site) -> Iterator[BrowserContext]:
    """Chromium with a fresh profile; requests off 127.0.0.1 are aborted and recorded in ``site.external``."""
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: `make system-deps` installs Debian's chromium"
    with tempfile.TemporaryDirectory(prefix="contimg-chromium-") as profile:
        context = playwright_driver.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1400, "height": 1000},
            accept_downloads=True,
        )

        def guard(route: Route) -> None:
            host = urlsplit(route.request.url).hostname
            if route.request.url.startswith(("data:", "blob:")) or host == "127.0.0.1":
                route.continue_()
            else:
                site.external.append(route.request.url)
                route.abort()

        context.route("**/*", guard)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser: BrowserContext, site: Site) -> Iterator[Page]:
    """A new tab with no login; console errors (a CSP violation, a script error) fail the test."""
    browser.clear_cookies()
    tab = browser.new_page()
    errors: list[str] = []
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    tab.close()
    assert site.external == [], f"requests left 127.0.0.1: {site.external}"
    assert errors == [], f"browser console errors: {errors}"


def login(page: Page, site: Site, token: str, path: str = "/") -> None:
    """Log in through the login page and land on ``path``."""
    page.goto(f"{site.url}/login?next={path}")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site.url}{path}")


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG under runs/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
