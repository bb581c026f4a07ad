"""What the browser tests share: Debian's chromium driven by Playwright, every request to a host other than
127.0.0.1 aborted, keyboard-only moves (Tab until an element has focus, then type), and the page check (axe-core
finds no serious or critical violation, nothing is wider than the window, a screenshot)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect, sync_playwright

from geo.settings import PROJECT_ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
# A loaded 2-core machine answers a form post in seconds, not milliseconds: wait for pages up to 30 s.
expect.set_options(timeout=30_000)
# Each test language: the browser's locale and its window (Korean on a 375 px phone, English on a desktop).
CONTEXTS: dict[str, dict[str, Any]] = {
    "ko": {"locale": "ko-KR", "viewport": {"width": 375, "height": 812}},
    "en": {"locale": "en-US", "viewport": {"width": 1280, "height": 900}},
    "zh": {"locale": "zh-CN", "viewport": {"width": 1280, "height": 900}},
    "vi": {"locale": "vi-VN", "viewport": {"width": 375, "height": 812}},
}


@contextmanager
def launch_chromium() -> Iterator[Browser]:
    """Debian's chromium, headless, for one test module (use it in a module-scoped fixture)."""
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def only_local(blocked: list[str]) -> Callable[[Route], None]:
    """A route handler that lets requests to 127.0.0.1 through and aborts (and records) every other."""
    def handle(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()
    return handle


@contextmanager
def local_context(browser: Browser, lang: str = "ko", **options: Any) -> Iterator[tuple[BrowserContext, list[str]]]:
    """A browser context in ``lang`` (locale and window of ``CONTEXTS``) whose requests leave 127.0.0.1 never;
    yields the context and the list of blocked URLs (asserted to hold no local one on exit)."""
    blocked: list[str] = []
    context = browser.new_context(**{**CONTEXTS[lang], **options})
    context.route("**/*", only_local(blocked))
    try:
        yield context, blocked
        assert all(urlsplit(u).hostname != "127.0.0.1" for u in blocked)
    finally:
        context.close()


def tab_to(page: Page, selector: str, *, limit: int = 80) -> None:
    """Press Tab until the focused element matches ``selector`` (keyboard only: no click, no focus())."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} not reached by Tab in {limit} presses on {page.url}")


def type_into(page: Page, selector: str, value: str) -> None:
    """Tab to a field and type into it."""
    tab_to(page, selector)
    page.keyboard.type(value)


def check(page: Page, name: str, folder: Path) -> None:
    """axe finds no serious or critical violation, nothing is wider than the window; a full-page screenshot
    ``folder/name.png``."""
    page.wait_for_load_state("networkidle")
    results = Axe().run(page)
    serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
               for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], (name, serious)
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], (name, widths)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
