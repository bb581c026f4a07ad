"""In a real browser (Debian chromium driven by Playwright, outside network blocked): a development server says
so on the map page, in the reader's language; a production server does not."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright
from sqlalchemy import Engine

from geo.admission import tlog_store
from geo.settings import Settings
from tests.serverutil import uvicorn_server

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Production refuses the waitlist log's development key: a key of its own, made once for this module.
_LOG_KEY = Path(tempfile.mkdtemp(prefix="dolbom-city-browser-")) / "waitlist-log.key"
tlog_store.write_key(_LOG_KEY, Settings().log.origin)
PRODUCTION = {"DOLBOM_ENV": "production", "DOLBOM_IDENTITY_PROVIDER": "oidc", "DOLBOM_CI_HASH_KEY": "k" * 32,
              "DOLBOM_IDEMPOTENCY_HASH_KEY": "i" * 32, "DOLBOM_LOG_KEY_FILE": str(_LOG_KEY)}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _only_local(route: Route) -> None:
    if urlsplit(route.request.url).hostname == "127.0.0.1":
        route.continue_()
    else:
        route.abort()


def _open_map(browser: Browser, base: str) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.route("**/*", _only_local)
    page = context.new_page()
    page.goto(base + "/")
    page.wait_for_selector("html[data-environment]", state="attached")  # the banner's script has read /health
    return page


def test_development_banner_on_the_map_page_in_every_language(test_database_url: str, engine: Engine,
                                                              browser: Browser) -> None:
    with uvicorn_server(test_database_url, extra_env={"DOLBOM_ENV": "development"}) as base:
        page = _open_map(browser, base)
        banner = page.locator("#env-banner")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("개발용 서버")
        page.select_option("#lang", "en")
        expect(banner).to_contain_text("Development server")
        page.select_option("#lang", "vi")
        expect(banner).to_contain_text("Máy chủ phát triển")
        page.context.close()


def test_no_banner_in_production(test_database_url: str, engine: Engine, browser: Browser) -> None:
    with uvicorn_server(test_database_url, extra_env=PRODUCTION) as base:
        page = _open_map(browser, base)
        assert page.locator("html").get_attribute("data-environment") == "production"
        expect(page.locator("#env-banner")).to_be_hidden()
        page.context.close()


def test_ogc_html_pages_are_styled_under_our_csp(test_database_url: str, engine: Engine, browser: Browser) -> None:
    with uvicorn_server(test_database_url) as base:
        context = browser.new_context()
        context.route("**/*", _only_local)
        page = context.new_page()
        refused: list[str] = []
        page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
        for path in ("/ogc?f=html", "/ogc/collections?f=html", "/ogc/collections/facilities/items?f=html&limit=2"):
            assert page.goto(base + path).status == 200  # type: ignore[union-attr]
            body = page.locator("body")
            expect(body).to_have_css("margin-top", "32px")  # 2em of 16px: the page's own style applied
            assert "sans" in body.evaluate("b => getComputedStyle(b).fontFamily")
        assert refused == []
        context.close()


@pytest.mark.parametrize(("env", "shown"), [({"DOLBOM_ENV": "development"}, True), (PRODUCTION, False)],
                         ids=["development", "production"])
def test_every_server_page_says_development(test_database_url: str, engine: Engine, browser: Browser,
                                            env: dict[str, str], shown: bool) -> None:
    with uvicorn_server(test_database_url, extra_env=env) as base:
        context = browser.new_context()
        context.route("**/*", _only_local)
        page = context.new_page()
        refused: list[str] = []
        # (ReDoc's own CDN logo is refused by img-src too; that is not about our styles.)
        page.on("console", lambda m: refused.append(m.text)
                if "Content Security Policy" in m.text and "style" in m.text else None)
        for path in ("/ogc?f=html", "/ogc/collections/facilities/items?f=html&limit=2", "/docs", "/redoc"):
            assert page.goto(base + path).status == 200  # type: ignore[union-attr]
            banner = page.locator(".dolbom-dev-banner")
            if shown:
                expect(banner).to_be_visible()
                expect(banner).to_contain_text("Development server")
                expect(banner).to_have_css("background-color", "rgb(122, 31, 0)")
            else:
                expect(banner).to_have_count(0)
        assert refused == []
        context.close()
