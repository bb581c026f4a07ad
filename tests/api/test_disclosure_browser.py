"""An officer records a sanction and publishes its violation in a real browser (Debian chromium, Playwright)
against uvicorn on a database of its own (hand-made centres), every request to a host other than 127.0.0.1
aborted; in Korean (a 375 px phone) and in English (a desktop). The public centre page then shows the violation
(what, when, until); a second server started with its clock moved past the end of the period
(DOLBOM_CLOCK_OFFSET_DAYS, test only) shows it no more. axe-core finds no serious or critical violation on any
page, and no page is wider than the window.

Screenshots go to ``test-artifacts/disclosure/`` (gitignored); docs/img/disclosure/ holds copies for the docs.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine, text

from geo.auth.accounts import create_user
from geo.disclosure.rules import seoul_day
from geo.settings import PROJECT_ROOT, Settings
from tests import browserutil
from tests.browserutil import local_context
from tests.search_data import DISTRICT_CODE, insert_search_fixture
from tests.serverutil import uvicorn_server

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "disclosure"
DOCS_IMG = PROJECT_ROOT / "docs" / "img" / "disclosure"
PASSWORD = "officer horse battery staple"
ENV = {"DOLBOM_ENV": "development", "DOLBOM_IDENTITY_PROVIDER": "local"}
SAYS = {
    "ko": {"published": "처분이 등록되고 위반사실이 공표되었습니다.", "heading": "위반사실 공표", "kind": "보조금 반환명령"},
    "en": {"published": "The sanction is recorded and its violation is published.",
           "heading": "Published violation", "kind": "Order to return subsidies"},
}


@pytest.fixture(scope="module")
def db(make_database: Any) -> Engine:
    engine: Engine = make_database("disclosure_browser")
    with engine.begin() as conn:
        insert_search_fixture(conn)
        create_user(conn, email="officer@gasang.go.kr", password=PASSWORD, role="district_officer",
                    district_code=DISTRICT_CODE)
    return engine


@pytest.fixture(scope="module")
def server_url(db: Engine) -> Iterator[str]:
    with uvicorn_server(db.url.render_as_string(hide_password=False), extra_env=ENV) as base:
        yield base


def check(page: Page, name: str) -> None:
    browserutil.check(page, name, ARTIFACTS)


def fill(page: Page, selector: str, value: str) -> None:
    page.locator(selector).fill(value)


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_officer_publishes_and_the_public_page_shows_it_until_the_end(lang: str, browser: Browser,
                                                                      server_url: str, db: Engine) -> None:
    says = SAYS[lang]
    with db.connect() as conn:
        code, name = conn.execute(text("SELECT code, name FROM facilities WHERE status = 'active' ORDER BY code "
                                       "OFFSET :o LIMIT 1"), {"o": 0 if lang == "ko" else 1}).one()
    today = seoul_day(Settings().now())
    with local_context(browser, lang) as (context, _blocked):
        page = context.new_page()
        page.goto(f"{server_url}/portal/login?next=/portal/officer/sanctions")
        expect(page.locator("html")).to_have_attribute("lang", lang)
        fill(page, "#email", "officer@gasang.go.kr")
        fill(page, "#password", PASSWORD)
        page.keyboard.press("Enter")
        expect(page.locator("#record-heading")).to_be_visible()
        check(page, f"{lang}-01-sanctions")
        fill(page, "#code", code)
        page.locator("#kind").select_option("subsidy_recovery")
        fill(page, "#violation", "아동 허위 등록으로 보조금 부정수급")
        fill(page, "#disposition", "보조금 반환명령 5,400,000원")
        fill(page, "#legal_basis", "영유아보육법 제40조")
        fill(page, "#authority", "가상구청")
        fill(page, "#decided_at", "어제")  # not a date: refused inline, the rest kept
        fill(page, "#final_at", (today - timedelta(days=3)).isoformat())
        fill(page, "#representative_name", "이대표")
        fill(page, "#director_name", "이원장")
        page.locator("#publish").check()
        page.locator('form[action="/portal/officer/sanctions"] button[type="submit"]').click()
        expect(page.locator("#decided_at")).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#violation")).to_have_value("아동 허위 등록으로 보조금 부정수급")
        check(page, f"{lang}-02-sanction-error")
        fill(page, "#decided_at", (today - timedelta(days=30)).isoformat())
        page.locator('form[action="/portal/officer/sanctions"] button[type="submit"]').click()
        expect(page.locator(".notice")).to_have_text(says["published"])
        card = page.locator("section.card", has_text=code)
        expect(card.locator(".disclosure-state")).to_contain_text(today.isoformat())
        check(page, f"{lang}-03-published")

    with db.connect() as conn:
        until: date = conn.execute(text("SELECT d.published_until FROM disclosures d JOIN facilities f "
                                        "ON f.id = d.facility_id WHERE f.code = :c"), {"c": code}).scalar_one()
    with local_context(browser, lang) as (context, _blocked):
        page = context.new_page()
        page.goto(f"{server_url}/portal/centres/{code}")
        section = page.locator("#disclosures")
        expect(section.locator("h2")).to_contain_text(says["heading"])
        expect(section).to_contain_text("아동 허위 등록으로 보조금 부정수급")
        expect(section).to_contain_text(says["kind"])
        expect(section.locator(".period")).to_contain_text(until.isoformat())
        expect(page.locator("h1")).to_have_text(name)
        check(page, f"{lang}-04-centre-published")

    # A server whose clock is two days past the last day of publication: the page shows no violation.
    offset = (until - today).days + 2
    with uvicorn_server(db.url.render_as_string(hide_password=False),
                        extra_env={**ENV, "DOLBOM_CLOCK_OFFSET_DAYS": str(offset)}) as later, \
            local_context(browser, lang) as (context, _blocked):
        page = context.new_page()
        page.goto(f"{later}/portal/centres/{code}")
        expect(page.locator("h1")).to_have_text(name)
        expect(page.locator("#disclosures")).to_have_count(0)
        check(page, f"{lang}-05-centre-after-the-period")
    if lang == "ko":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        for shot in ("ko-03-published", "ko-04-centre-published"):
            shutil.copy(ARTIFACTS / f"{shot}.png", DOCS_IMG / f"{shot}.png")
    assert re.match(r"\d{4}-\d{2}-\d{2}", until.isoformat())
