"""The statistics page (/statistics) in Debian's chromium, outside network blocked: a chart and the same figures
in a table, in Korean and English; keyboard only from the table choice to a download; axe-clean; at 375 px the
page does not scroll sideways (the table scrolls in its own region); no Content-Security-Policy violation (charts
render through vega-interpreter, without eval)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, Route, sync_playwright
from sqlalchemy import Engine

from geo.settings import PROJECT_ROOT
from tests.serverutil import uvicorn_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "statistics"


@pytest.fixture(scope="module")
def server_url(seoul_engine: Engine) -> Iterator[str]:
    with uvicorn_server(seoul_engine.url.render_as_string(hide_password=False)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_page(browser: Browser, url: str, *, width: int = 1280) -> tuple[Page, list[str], list[str]]:
    context = browser.new_context(viewport={"width": width, "height": 900}, accept_downloads=True)
    blocked: list[str] = []
    console: list[str] = []

    def only_local(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    page.on("console", lambda message: console.append(message.text))
    page.goto(url)
    page.locator("#chart svg").wait_for(timeout=60_000)
    return page, blocked, console


def table_cells(page: Page) -> list[list[str]]:
    return [[c.strip() for c in row] for row in page.locator("#data tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.textContent))")]


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_chart_and_table_show_the_apis_figures(browser: Browser, server_url: str, lang: str) -> None:
    page, blocked, console = open_page(browser, f"{server_url}/statistics?table=places&level=city&lang={lang}")
    api = httpx.get(f"{server_url}/statistics/places", params={"level": "city", "lang": lang}).json()
    assert page.locator("#table-title").text_content() == api["title"]
    cells = table_cells(page)
    assert len(cells) == len(api["rows"])
    public = next(i for i, r in enumerate(api["rows"]) if r["facility_type"] == "national_public")
    assert cells[public][1] == ("국공립" if lang == "ko" else "Public")
    assert cells[public][3].replace(",", "") == str(api["rows"][public]["capacity"])
    assert page.locator("html").get_attribute("lang") == lang
    bars = page.locator("#chart svg path[aria-roledescription='bar'], #chart svg .mark-rect path")
    assert bars.count() == len(api["rows"])  # one bar per facility type at city level
    violations = Axe().run(page).response["violations"]
    assert [v["id"] for v in violations if v["impact"] in ("serious", "critical")] == []
    assert not [m for m in console if "Content Security Policy" in m]
    assert blocked == []
    page.screenshot(path=str(ARTIFACTS / f"places-{lang}.png"), full_page=True)
    page.context.close()


def test_keyboard_only_choose_a_table_and_download_it(browser: Browser, server_url: str) -> None:
    page, _, _ = open_page(browser, f"{server_url}/statistics?lang=en")
    page.keyboard.press("Tab")  # skip link
    page.keyboard.press("Tab")  # home link
    page.keyboard.press("Tab")  # language
    page.keyboard.press("Tab")  # table
    assert page.evaluate("document.activeElement.id") == "table"
    title_before = page.locator("#table-title").text_content()
    page.keyboard.press("ArrowDown")  # the next table (chromium changes a focused select with the arrows)
    page.wait_for_function("t => document.getElementById('table-title').textContent !== t", arg=title_before)
    chosen = page.evaluate("document.getElementById('table').value")
    page.locator("#chart svg").wait_for()
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "csv":
            break
    assert page.evaluate("document.activeElement.id") == "csv"
    with page.expect_download() as download:
        page.keyboard.press("Enter")
    assert download.value.suggested_filename == f"dolbom-{chosen}-sigungu.csv"
    page.context.close()


def test_at_375_px_the_page_does_not_scroll_sideways(browser: Browser, server_url: str) -> None:
    page, _, _ = open_page(browser, f"{server_url}/statistics?table=staff&lang=ko", width=375)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(ARTIFACTS / "staff-375.png"), full_page=True)
    page.context.close()
