"""The API documentation and the shared static maps in a real browser (Debian chromium driven by Playwright) with
every request to a host other than 127.0.0.1 aborted, as in tests/api/test_map_browser.py: ``/docs`` (Swagger UI)
and ``/redoc`` (ReDoc) render every operation from vendored assets under their policy, Swagger UI's Authorize
works with a bearer token, and a ``dolbom map --out`` file opened from disk draws its Leaflet map and one marker
per centre.

Expected counts come from ``/openapi.json`` and from the search itself, never from the page.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Route, sync_playwright
from sqlalchemy import Engine, text

from geo.auth.accounts import create_user, issue_token
from geo.settings import PROJECT_ROOT, Settings
from tests.api.test_map_browser import CHROMIUM, CHROMIUM_ARGS
from tests.search_data import LAT, LON, insert_search_fixture
from tests.serverutil import uvicorn_server

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "docs"


@pytest.fixture(scope="module")
def docs_engine(make_database: Any) -> Engine:
    """A throw-away database (the server reads committed rows only) with one parent who has a bearer token."""
    engine: Engine = make_database("docs_browser")
    return engine


@pytest.fixture(scope="module")
def parent_token(docs_engine: Engine) -> tuple[str, str]:
    settings = Settings(DATABASE_URL=docs_engine.url.render_as_string(hide_password=False))
    email = "docs-browser-parent@example.org"
    with docs_engine.begin() as conn:
        user_id = create_user(conn, email=email, password="correct horse battery", role="parent")
        return email, issue_token(conn, settings, user_id=user_id, kind="bearer").secret


@pytest.fixture(scope="module")
def server_url(docs_engine: Engine) -> Iterator[str]:
    with uvicorn_server(docs_engine.url.render_as_string(hide_password=False)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class LocalOnly:
    """A browser context that lets through requests to 127.0.0.1 and file:// only; it records what it aborts
    and every console error (a CSP violation is one)."""

    def __init__(self, browser: Browser) -> None:
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self.context: BrowserContext = browser.new_context(viewport={"width": 1280, "height": 800})
        self.context.route("**/*", self._only_local)

    def _only_local(self, route: Route) -> None:
        url = urlsplit(route.request.url)
        if url.scheme in ("file", "data", "blob") or url.hostname == "127.0.0.1":
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def page(self) -> Page:
        page = self.context.new_page()

        def record(message: ConsoleMessage) -> None:
            if message.type == "error":
                self.errors.append(message.text)

        page.on("console", record)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        return page


@pytest.fixture()
def local(browser: Browser) -> Iterator[LocalOnly]:
    ctx = LocalOnly(browser)
    yield ctx
    ctx.context.close()


def _operations(server_url: str) -> list[tuple[str, str, dict[str, Any]]]:
    spec = httpx.get(server_url + "/openapi.json", timeout=30).json()
    return [(m, p, op) for p, item in spec["paths"].items() for m, op in item.items()]


def test_swagger_ui_lists_every_operation_offline(local: LocalOnly, server_url: str) -> None:
    operations = _operations(server_url)
    page = local.page()
    response = page.goto(server_url + "/docs")
    assert response is not None and response.ok
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "http" not in csp
    page.locator(".opblock").first.wait_for(timeout=60_000)
    assert page.locator(".opblock").count() == len(operations)
    # Each operation by method and path, as the document has them.
    shown = {(block.locator(".opblock-summary-method").inner_text().strip().lower(),
              block.locator(".opblock-summary-path").inner_text().strip().replace("\u200b", ""))
             for block in page.locator(".opblock").all()}
    assert shown == {(m, p) for m, p, _ in operations}
    page.screenshot(path=str(ARTIFACTS / "swagger.png"))
    # Authorize offers the three declared schemes (bearer token, session cookie, CSRF header).
    page.locator("button.authorize").first.click()
    dialog = page.locator(".modal-ux")
    dialog.wait_for()
    for name in ("bearerToken", "sessionCookie", "csrfToken"):
        assert dialog.get_by_text(name, exact=False).count() >= 1, name
    # A secured operation shows its lock; a public one does not.
    secured = sum(1 for _, _, op in operations if op.get("security"))
    assert secured > 0
    assert page.locator(".opblock .authorization__btn").count() == secured
    assert local.blocked == [] and local.errors == []


def test_swagger_ui_authorize_with_a_bearer_token_then_try_it_out(local: LocalOnly, server_url: str,
                                                                  parent_token: tuple[str, str]) -> None:
    """Authorize (bearerToken) makes "Try it out" on a secured operation answer as that user."""
    email, token = parent_token
    page = local.page()
    page.goto(server_url + "/docs")
    page.locator(".opblock").first.wait_for(timeout=60_000)
    page.locator("button.authorize").first.click()
    bearer = page.locator(".auth-container").filter(has_text="bearerToken")
    bearer.locator("input").fill(token)
    bearer.locator("button.authorize").click()
    page.locator(".modal-ux .btn-done").first.click()
    operation = page.locator(".opblock-get").filter(
        has=page.locator(".opblock-summary-path", has_text=re.compile(r"^/auth/me$")))
    operation.locator(".opblock-summary").click()
    operation.locator(".try-out__btn").click()
    operation.locator("button.execute").click()
    live = operation.locator(".live-responses-table .response .response-col_status").first
    live.wait_for(timeout=30_000)
    assert live.inner_text().strip() == "200"
    assert email in operation.locator(".live-responses-table .response .response-col_description").first.inner_text()
    page.screenshot(path=str(ARTIFACTS / "swagger-try-it-out.png"))
    assert local.blocked == [] and local.errors == []


def test_redoc_lists_every_operation_offline(local: LocalOnly, server_url: str) -> None:
    operations = _operations(server_url)
    page = local.page()
    response = page.goto(server_url + "/redoc")
    assert response is not None and response.ok
    assert "script-src 'self';" in response.headers["content-security-policy"]
    items = page.locator("[data-section-id^='operation/']")
    items.first.wait_for(timeout=60_000)
    assert items.count() == len(operations)
    summaries = {str(op["summary"]) for _, _, op in operations if op.get("summary")}
    shown = page.locator("body").inner_text()
    assert all(summary in shown for summary in summaries)
    page.screenshot(path=str(ARTIFACTS / "redoc.png"))
    # ReDoc's sidebar credit shows an image from cdn.redoc.ly: the policy refuses it before any request (so it
    # is not in `blocked`) and ReDoc hides it (its onError). Nothing else may be refused.
    assert local.blocked == []
    assert [e for e in local.errors if "https://cdn.redoc.ly/redoc/logo-mini.svg" not in e] == []


def test_dolbom_map_file_renders_offline_with_every_centre(local: LocalOnly, docs_engine: Engine,
                                                           tmp_path: Path) -> None:
    """``dolbom map --out`` (the real command, on the committed search fixture) writes one file that draws its
    Leaflet map and every centre with nothing but OpenStreetMap's background tiles asked of the network."""
    with docs_engine.begin() as conn:
        insert_search_fixture(conn)
        expected = conn.execute(text("""
            SELECT count(*) FROM facilities WHERE status IN ('active', 'reopened')
              AND ST_DWithin(geom_4326::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, 3000)"""),
            {"lon": LON, "lat": LAT}).scalar_one()
    assert expected > 0
    out = tmp_path / "map.html"
    done = subprocess.run([str(Path(sys.executable).with_name("dolbom")), "map", "--out", str(out),
                           "--lat", str(LAT), "--lon", str(LON), "--radius-m", "3000"],
                          env={**os.environ, "DATABASE_URL": docs_engine.url.render_as_string(hide_password=False)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"{expected} centres" in done.stdout + done.stderr
    page = local.page()
    page.goto(out.as_uri())
    page.locator(".leaflet-container").wait_for(timeout=30_000)
    # One circle marker per centre plus the search radius, all drawn as interactive SVG paths.
    markers = page.locator("path.leaflet-interactive")
    markers.first.wait_for(timeout=30_000)
    assert markers.count() == expected + 1
    assert page.evaluate("typeof L === 'object' && typeof L.map === 'function'")
    page.screenshot(path=str(ARTIFACTS / "static_map.png"))
    # Only the OpenStreetMap background tiles were asked of the network (and refused).
    assert local.blocked and all(urlsplit(u).hostname.endswith("tile.openstreetmap.org")  # type: ignore[union-attr]
                                 for u in local.blocked)
    assert [e for e in local.errors if "net::ERR_FAILED" not in e] == []
