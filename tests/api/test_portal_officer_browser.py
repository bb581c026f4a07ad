"""A district officer and the city admin in the portal, in a real browser (Debian chromium driven by Playwright)
against uvicorn on a database of its own with the real Seoul centres, every request to a host other than 127.0.0.1
aborted.

In Korean (a 375 px phone) and in English (a desktop), a district officer of 마포구 logs in (keyboard), finds the
centre whose figures were moved 400 days back at the top of the stale list and opens it, then designates another
centre of the 구 as 다문화 (multicultural) in the designations page: the public search
(``/facilities/radius?service=multicultural``) finds it and the ETag of the facilities tile that holds it changes.
The city admin creates a centre-staff account and finds the action in the audit trail. axe-core finds no serious
or critical violation on any page, and no page is wider than the window.

Screenshots go to ``test-artifacts/portal/`` (gitignored); docs/img/portal/ holds copies for the walkthroughs
(docs/roles/district-officer.md, docs/roles/city-admin.md).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import Engine, text

from geo.auth.accounts import create_user
from geo.settings import PROJECT_ROOT
from geo.vacancy.reports import VacancyReportIn, submit_report
from tests import browserutil
from tests.browserutil import local_context, tab_to, type_into
from tests.serverutil import uvicorn_server

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "portal"
PASSWORD = "officer horse battery staple"
MAPO = "11440"
SAYS = {
    "ko": {"dashboard": "구 현황판", "stale": "오래된 빈자리 정보", "saved": "지정이 저장되었습니다",
           "service": "다문화"},
    "en": {"dashboard": "District dashboard", "stale": "Stale vacancy figures", "saved": "The designation is saved",
           "service": "Multicultural"},
}
TILE_ZOOM = 14


@pytest.fixture(scope="module")
def officer_db(make_database: Any, shared_data: Path) -> Engine:
    """A database of its own (the flow commits accounts, reports and designations) with the real Seoul centres."""
    engine: Engine = make_database("officer_browser", seoul=True)  # a copy of the Seoul template (tests/dbtemplate.py)
    return engine


@pytest.fixture(scope="module")
def server_url(officer_db: Engine) -> Iterator[str]:
    url = officer_db.url.render_as_string(hide_password=False)
    with uvicorn_server(url, extra_env={"DOLBOM_ENV": "development"}) as base:
        yield base


def check(page: Any, name: str) -> None:
    browserutil.check(page, name, ARTIFACTS)


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """(x, y) of the Web Mercator tile holding lon/lat at zoom z (the slippy-map formula)."""
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


def _seed(engine: Engine, lang: str) -> dict[str, Any]:
    """The officer; a centre of 마포구 whose last report is 400 days old (a centre of its own per language); the
    centre to designate (no 다문화 service yet)."""
    with engine.begin() as conn:
        create_user(conn, email=f"officer-{lang}@example.kr", password=PASSWORD, role="district_officer",
                    district_code=MAPO)
        stale, designate = conn.execute(text("""
            SELECT code, name, ST_X(geom_4326) AS lon, ST_Y(geom_4326) AS lat FROM facilities
            WHERE district_code = :d AND status = 'active' AND NOT ('multicultural' = ANY(services))
            ORDER BY code OFFSET :o LIMIT 2"""), {"d": MAPO, "o": 0 if lang == "ko" else 2}).all()
        submit_report(conn, facility_code=stale.code, report=VacancyReportIn(enrolled_by_age={}, free_by_age={}),
                      author_user_id=None)
        # The seed's way of making figures stale: the report moved far back (older than the other language's).
        conn.execute(text("""UPDATE vacancy_reports SET reported_at = now() - make_interval(days => :d)
                             WHERE facility_id = (SELECT id FROM facilities WHERE code = :c)"""),
                     {"d": 400 if lang == "ko" else 500, "c": stale.code})
    return {"stale": stale, "designate": designate}


def _tile_etag(api: httpx.Client, lon: float, lat: float) -> str:
    x, y = tile_of(lon, lat, TILE_ZOOM)
    response = api.get(f"/tiles/facilities/{TILE_ZOOM}/{x}/{y}.mvt")
    assert response.status_code == 200, response.text
    return response.headers["etag"]


def _multicultural_nearby(api: httpx.Client, lon: float, lat: float) -> list[str]:
    response = api.get("/facilities/radius", params={"lat": lat, "lon": lon, "radius_m": 30,
                                                     "service": "multicultural", "f": "json", "limit": 50})
    assert response.status_code == 200, response.text
    return [item["code"] for item in response.json()["items"]]


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_officer_finds_stale_figures_and_designates(lang: str, browser: Browser, server_url: str,
                                                    officer_db: Engine) -> None:
    says = SAYS[lang]
    seeded = _seed(officer_db, lang)
    stale, target = seeded["stale"], seeded["designate"]
    with local_context(browser, lang) as (context, _blocked), httpx.Client(base_url=server_url) as api:
        page = context.new_page()
        page.goto(server_url + "/portal/login")
        type_into(page, "#email", f"officer-{lang}@example.kr")
        type_into(page, "#password", PASSWORD)
        page.keyboard.press("Enter")
        # The officer's start page is their 구's dashboard; the stale centre heads the stale list.
        expect(page.locator("h1")).to_contain_text(says["dashboard"])
        expect(page.locator("h1")).to_contain_text("마포구")
        expect(page.locator("#stale-heading")).to_have_text(says["stale"])
        first = page.locator("#stale tbody tr").first
        expect(first.locator("a")).to_have_text(stale.name)
        expect(first).to_contain_text("400" if lang == "ko" else "500")
        check(page, f"{lang}-30-officer-dashboard")
        tab_to(page, f'#stale tbody tr:first-child a[href="/portal/centres/{stale.code}"]')
        page.keyboard.press("Enter")
        expect(page.locator("h1")).to_have_text(stale.name)

        # Designate the other centre as 다문화.
        before_etag = _tile_etag(api, target.lon, target.lat)
        assert target.code not in _multicultural_nearby(api, target.lon, target.lat)
        tab_to(page, 'a[href="/portal/officer/designations"]')
        page.keyboard.press("Enter")
        expect(page.locator("#designate-heading")).to_be_visible()
        check(page, f"{lang}-31-designations")
        page.select_option("#centre", target.code)
        page.select_option("#service", "multicultural")
        tab_to(page, 'form[action="/portal/officer/designations"] button[type="submit"]')
        page.keyboard.press("Enter")
        expect(page.locator(".notice[role=status]")).to_contain_text(says["saved"])
        card = page.locator("section.card", has_text=target.name)
        expect(card.locator("h3")).to_contain_text(says["service"])
        expect(page.locator("#conflicts")).to_contain_text(target.name)
        check(page, f"{lang}-32-designated")

        # The public search finds it; the tile that holds it has a new ETag (the tile versions follow the data).
        assert target.code in _multicultural_nearby(api, target.lon, target.lat)
        deadline = time.monotonic() + 30
        while (after_etag := _tile_etag(api, target.lon, target.lat)) == before_etag and time.monotonic() < deadline:
            time.sleep(0.5)
        assert after_etag != before_etag


def test_city_admin_creates_staff_and_reads_the_audit(browser: Browser, server_url: str,
                                                      officer_db: Engine) -> None:
    with officer_db.begin() as conn:
        create_user(conn, email="city-admin@example.kr", password=PASSWORD, role="city_admin")
        code = conn.execute(text("SELECT code FROM facilities WHERE district_code = :d AND status = 'active' "
                                 "ORDER BY code DESC LIMIT 1"), {"d": MAPO}).scalar_one()
    with local_context(browser, "en") as (context, _blocked):
        page = context.new_page()
        page.goto(server_url + "/portal/login")
        type_into(page, "#email", "city-admin@example.kr")
        type_into(page, "#password", PASSWORD)
        page.keyboard.press("Enter")
        # The city admin picks a 구 on the dashboard.
        expect(page.locator("select#district")).to_be_visible()
        page.select_option("#district", MAPO)
        page.locator("form.picker button").click()
        expect(page.locator("h1")).to_contain_text("마포구")
        tab_to(page, 'a[href="/portal/admin/users"]')
        page.keyboard.press("Enter")
        expect(page.locator("#create-heading")).to_be_visible()
        check(page, "en-40-admin-users")
        type_into(page, "#email", "new-staff@example.kr")
        type_into(page, "#display_name", "Centre Staff")
        type_into(page, "#password", "staff horse battery staple")
        page.select_option("#role", "centre_staff")
        type_into(page, "#facility_codes", code)
        tab_to(page, 'form[action="/portal/admin/users"] button[type="submit"]')
        page.keyboard.press("Enter")
        expect(page.locator(".notice[role=status]")).to_have_text("The account is created.")
        card = page.locator("section.card", has_text="new-staff@example.kr")
        expect(card).to_contain_text(code)
        check(page, "en-41-admin-user-created")
        tab_to(page, 'a[href="/portal/admin/audit"]')
        page.keyboard.press("Enter")
        page.select_option("#action", "user.create")
        page.locator('form[action="/portal/admin/audit"] button[type="submit"]').click()
        first = page.locator("#audit tbody tr").first
        expect(first).to_contain_text("user.create")
        expect(first).to_contain_text("city-admin@example.kr")
        expect(first).to_contain_text("new-staff@example.kr")
        expect(page).to_have_url(re.compile(r"action=user\.create"))
        check(page, "en-42-admin-audit")
