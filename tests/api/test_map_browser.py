"""The map in a real browser (Debian chromium driven by Playwright) against uvicorn and the real Seoul data:
click a home, see the 구/동, the centres around it, and the list react to filters."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, sync_playwright
from sqlalchemy import Engine

CHROMIUM = "/usr/bin/chromium"
# Without these flags chromium keeps dialling Google services that this network refuses.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def server_url(seoul_engine: Engine) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": seoul_engine.url.render_as_string(hide_password=False)}
    uvicorn = str(Path(sys.executable).with_name("uvicorn"))
    proc = subprocess.Popen([uvicorn, "api.app:create_app", "--factory", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


# Records every Content-Security-Policy violation of the page (the event fires for blocked and report-only).
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.effectiveDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber})`);
});
"""


@pytest.fixture(scope="module")
def console() -> list[str]:
    """The page's console messages, in order."""
    return []


@pytest.fixture(scope="module")
def page(server_url: str, console: list[str]) -> Iterator[Page]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport={"width": 1280, "height": 800})
        tab.add_init_script(CSP_LISTENER)
        tab.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        tab.goto(server_url + "/")
        yield tab
        browser.close()


def _result_count(page: Page) -> int:
    return page.locator("#results li").count()


def test_click_home_lists_centres_with_vacancy(page: Page, server_url: str) -> None:
    # The map opens centred on Seoul City Hall (중구); click the centre of the map.
    box = page.locator("#map").bounding_box()
    assert box is not None
    with page.expect_response(lambda r: "/facilities/radius" in r.url) as radius_call:
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    body = radius_call.value.json()
    page.wait_for_function("document.querySelectorAll('#results li').length > 0")
    assert "중구" in page.locator("#home-info").inner_text()
    listed = _result_count(page)
    assert listed == len(body["features"]) > 0
    # One circle marker per centre plus the search-radius circle.
    assert page.locator("path.leaflet-interactive").count() == listed + 1
    page.locator("#results li").first.click()
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    assert "여석" in popup.inner_text() and body["features"][0]["properties"]["name"] in popup.inner_text()


def test_filters_narrow_the_list(page: Page) -> None:
    before = _result_count(page)
    with page.expect_response(lambda r: "/facilities/radius" in r.url and "extended_hours" in r.url) as call:
        page.locator("input[value=extended_hours]").check()
    narrowed = call.value.json()
    page.wait_for_function(f"document.querySelectorAll('#results li').length === {len(narrowed['features'])}")
    assert all("extended_hours" in f["properties"]["services"] for f in narrowed["features"])
    assert _result_count(page) < before
    with page.expect_response(lambda r: "/facilities/radius" in r.url and "radius_m=3000" in r.url) as call:
        page.locator("#radius").fill("3000")
        page.locator("#radius").dispatch_event("change")
    wider = call.value.json()
    assert len(wider["features"]) >= len(narrowed["features"])
    assert max(f["properties"]["distance_m"] for f in wider["features"]) <= 3000


def test_no_content_security_policy_violations(page: Page, console: list[str]) -> None:
    # Runs after the tests above, so the policy has seen the map, its markers, popups, place search and filters.
    with page.expect_response(lambda r: "/places/search" in r.url):
        page.locator("#place-q").fill("마포")
        page.locator("#place-q").dispatch_event("input")
    page.wait_for_function("document.querySelectorAll('#place-results li').length > 0")
    with page.expect_response(lambda r: "/facilities/radius" in r.url):
        page.locator("#place-results li").first.click()
    page.wait_for_function("document.querySelectorAll('#results li').length > 0")
    assert page.evaluate("window.__cspViolations") == []
    assert not [m for m in console if "Content Security Policy" in m or "Refused to" in m], console
    # The listener does see violations: an inline style attribute is one under this policy.
    page.evaluate("""document.body.insertAdjacentHTML("beforeend", '<b style="color: red">x</b>')""")
    page.wait_for_function("window.__cspViolations.length > 0")
    assert "style-src" in page.evaluate("window.__cspViolations")[0]
