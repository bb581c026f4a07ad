"""The parent's map, finished (issue #22), in a real browser (Debian chromium driven by Playwright) against uvicorn on
a database of its own with the real Seoul centres (the test commits a parent, a child, entries and declared staff
languages), every request to a host other than 127.0.0.1 aborted. In Korean (375 px) and English (desktop):

- a logged-in parent sees each application on the map (a rank badge on the centre) and in the panel; the centre's
  detail shows the parent's rank and the public queue length per class age;
- the 2026-07-21 vacancy figures are older than the staleness limit: grey "여석 N · 4개월 전 자료" badges, never green;
- road-name addresses land near the address; "강남역" does not jump to a centre named after it and says what can be
  searched; "Gangnam" finds 강남구 in English; an unknown name says plainly that nothing was found;
- the staff-language filter sends ``language=`` and lists only the centres that declare it; the detail names the
  languages in the page's language;
- the attribution names each source once;
- a server whose database refuses says so in a banner at the top of the map (role=alert), in the page's language;
- axe-core finds no serious or critical violation.

Expected values come from SQL on the same database or from the rules, never from the page.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine, text

from geo.admission import waitlist as wl
from geo.admission.rules import childcare_year
from geo.auth.accounts import create_user
from geo.settings import PROJECT_ROOT
from tests.booking_util import verify
from tests.browserutil import local_context
from tests.serverutil import uvicorn_server

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "map-parent"
PASSWORD = "correct horse battery staple"
# 테헤란로 152 (강남파이낸스센터), about 37.5000 N, 127.0364 E.
TEHERAN_152 = (37.5000, 127.0364)
SAYS = {
    "ko": {"stale": re.compile(r"^(여석 [\d,]+|여석 없음) · \d+개월 전 자료$"), "rank": "대기 {rank}번째 / {of}명",
           "none": "찾은 곳이 없습니다", "station": "역 이름은 아직 찾을 수 없습니다", "chinese": "중국어",
           "down": "데이터베이스에 연결되지 않습니다", "queue": "만 0세반 {n}명"},
    "en": {"stale": re.compile(r"^(\d+ free|Full) · data from \d+ months ago$"), "rank": "rank {rank} of {of}",
           "none": "Nothing found for", "station": "Station names cannot be searched yet", "chinese": "Chinese",
           "down": "the database is not reachable", "queue": "age 0 class: {n} waiting"},
}


def _metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    dx = (lon2 - lon1) * 111_320 * math.cos(math.radians((lat1 + lat2) / 2))
    return math.hypot(dx, (lat2 - lat1) * 110_574)


@pytest.fixture(scope="module")
def map_db(make_database: Any, shared_data: Path) -> Engine:
    """A database of its own with the real Seoul centres (the tests commit accounts and entries)."""
    engine: Engine = make_database("map_parent_browser", seoul=True)  # a copy of the Seoul template (tests/dbtemplate.py)
    return engine


@pytest.fixture(scope="module")
def server_url(map_db: Engine) -> Iterator[str]:
    with uvicorn_server(map_db.url.render_as_string(hide_password=False),
                        extra_env={"DOLBOM_ENV": "development", "DOLBOM_IDENTITY_PROVIDER": "local"}) as base:
        yield base


def check(page: Page, name: str) -> None:
    """axe: no serious or critical violation; nothing wider than the window; a screenshot."""
    results = Axe().run(page)
    serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
               for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], (name, serious)
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], (name, widths)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def open_map(page: Page, server_url: str, lang: str) -> None:
    page.goto(server_url + "/")
    page.locator("#results li").first.wait_for(timeout=90_000)
    if lang != "ko":
        page.locator("#lang").select_option(lang)
    expect(page.locator("html")).to_have_attribute("lang", lang)


def search(page: Page, query: str) -> None:
    page.locator("#place-q").fill(query)
    page.locator("#place-q").press("Enter")


def map_centre(page: Page) -> tuple[float, float]:
    centre = page.evaluate("(() => { const c = map.getCenter(); return [c.lat, c.lng]; })()")
    return float(centre[0]), float(centre[1])


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_parents_map(lang: str, browser: Browser, server_url: str, map_db: Engine) -> None:
    says = SAYS[lang]
    born = date(childcare_year(date.today()) - 1, 5, 1)  # 0세반 this year
    email = f"map-parent-{lang}@example.kr"
    with map_db.begin() as conn:
        centres = conn.execute(text("""
            SELECT DISTINCT ON (district_code) id, code, name FROM facilities
            WHERE status = 'active' AND district_code IS NOT NULL AND (classes_by_age->>'0')::int >= 1
              AND NOT location_approximate
            ORDER BY district_code, code LIMIT 4""")).all()
        (first, second) = centres[:2] if lang == "ko" else centres[2:]
        # One other parent applied at the first centre before ours (no claims either: ours ranks second).
        other = create_user(conn, email=f"map-other-{lang}@example.kr", password=PASSWORD, role="parent")
        verify(conn, other, name=f"다른부모{lang}")
        child = wl.register_child(conn, parent_user_id=other, name="다른아이", birth_date=born, claims=[])
        wl.apply(conn, parent_user_id=other, child_id=child["id"], facility_code=first.code)
        uid = create_user(conn, email=email, password=PASSWORD, role="parent")
        verify(conn, uid, name=f"김엄마{lang}")
        mine = wl.register_child(conn, parent_user_id=uid, name="하늘" if lang == "ko" else "Haneul",
                                 birth_date=born, claims=[])
        wl.apply(conn, parent_user_id=uid, child_id=mine["id"], facility_code=first.code)
        wl.apply(conn, parent_user_id=uid, child_id=mine["id"], facility_code=second.code)
        waiting_first = conn.execute(text("""SELECT count(*) FROM waitlist_entries WHERE facility_id = :f
                                             AND age_class = 0 AND status IN ('waiting', 'offered')"""),
                                     {"f": first.id}).scalar_one()
        # Two centres in 강남구 declare Chinese-speaking staff.
        chinese = [r.id for r in conn.execute(text("""
            SELECT id FROM facilities WHERE status = 'active' AND sigungu_name = '강남구' AND NOT location_approximate
            ORDER BY code LIMIT 2""")).all()]
        conn.execute(text("UPDATE facilities SET staff_languages = '{zh}' WHERE id = ANY(:ids)"), {"ids": chinese})

    with local_context(browser, lang) as (context, _blocked):
        page = context.new_page()
        page.goto(server_url + "/portal/login")
        page.locator("input[name=email]").fill(email)
        page.locator("input[name=password]").fill(PASSWORD)
        with page.expect_navigation():
            page.locator("input[name=password]").press("Enter")
        expect(page.locator("h1")).to_have_text(re.compile("내 신청|My applications"))
        open_map(page, server_url, lang)

        # Attribution: each source once.
        attribution = page.locator(".leaflet-control-attribution").inner_text()
        assert attribution.count("OA-20300") == 1, attribution

        # Stale figures (2026-07-21, older than 7 days): grey, with their age; none green.
        badges = page.locator("#results .badge").all_inner_texts()
        assert badges and all(says["stale"].match(b) or b in ("여석 정보 없음", "No vacancy data") for b in badges), badges
        assert page.locator("#results .badge.free").count() == 0 and page.locator(".centre.free").count() == 0
        assert page.locator("#results .badge.stale").count() > 0
        # Clusters of stale figures are grey, not green or red.
        assert page.locator(".cluster.stale").count() > 0
        assert page.locator(".cluster.free, .cluster.some, .cluster.full").count() == 0

        # The parent's applications: in the panel and as rank badges on the map.
        expect(page.locator("#my-apps")).to_be_visible()
        expect(page.locator("#my-apps-list li")).to_have_count(2)
        rank_text = says["rank"].format(rank=2, of=waiting_first)
        expect(page.locator("#my-apps-list")).to_contain_text(rank_text)
        expect(page.locator(".application-badge")).to_have_count(2)
        expect(page.locator(".application-badge").first).to_contain_text(f"2/{waiting_first}")
        check(page, f"{lang}-01-applications")
        page.locator(f'#my-apps-list button[data-id="{first.id}"]').click()
        expect(page.locator("#detail-name")).to_have_text(first.name)
        expect(page.locator("#detail-my-apps")).to_contain_text(rank_text)
        expect(page.locator("#queue-lengths")).to_contain_text(says["queue"].format(n=waiting_first))
        expect(page.locator("#stale-note")).to_be_visible()
        expect(page.locator("#detail-body .badge.stale")).to_be_visible()
        check(page, f"{lang}-02-detail")
        page.locator("#detail-close").click()

        # A road-name address lands near it (interpolated between the centres of 테헤란로).
        search(page, "테헤란로 152")
        expect(page.locator("#home-info")).to_contain_text("테헤란로 152", timeout=30_000)
        home = page.evaluate("[home.lat, home.lng]")
        assert _metres(home[0], home[1], *TEHERAN_152) < 500

        # 강남역: no jump to 강남역삼럭키어린이집 (1.4 km away); the page says what can be searched.
        search(page, "강남역")
        expect(page.locator("#place-results .search-none")).to_contain_text(says["none"])
        expect(page.locator("#place-results .search-none")).to_contain_text(says["station"])
        assert _metres(*page.evaluate("[home.lat, home.lng]"), home[0], home[1]) < 1  # home did not move
        check(page, f"{lang}-03-not-found")

        # Latin names: "Gangnam" finds 강남구 (in English, labelled in romanisation).
        page.locator("#place-q").fill("Gangnam" if lang == "en" else "강남구")  # suggestions, no Enter
        first_place = page.locator("#place-results button").first
        first_place.wait_for(timeout=30_000)
        if lang == "en":
            expect(first_place).to_have_text("Gangnam-gu")
        first_place.click()
        page.wait_for_timeout(800)
        with map_db.connect() as conn:
            inside = conn.execute(text("""SELECT ST_Contains(geom_4326, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
                                          FROM districts WHERE name = '강남구'"""),
                                  dict(zip(("lat", "lon"), map_centre(page), strict=True))).scalar_one()
        assert inside
        search(page, "Xyzzyville")
        expect(page.locator("#place-results .search-none")).to_contain_text(says["none"])

        # The staff-language filter: only the centres that declare Chinese; the detail names the language.
        if not page.locator("#filters-box").evaluate("d => d.open"):  # folded on a phone
            page.locator("#filters-box summary").click()
        page.locator('input[name=distance][value="all"]').check()
        with page.expect_response(lambda r: "/facilities/radius" in r.url and "language=zh" in r.url):
            page.locator("#staff-language").select_option("zh")
        expect(page.locator("#summary")).to_contain_text(re.compile(r"\b2\b"))
        assert sorted(page.evaluate("[...centres.keys()]")) == sorted(chinese)
        page.evaluate(f"map.setView([{37.5}, {127.05}], 11)")
        page.locator("#results button").first.click()
        expect(page.locator("#detail-languages")).to_have_text(says["chinese"])
        check(page, f"{lang}-04-language-filter")


def _refusing_url(tmp_path: Path) -> str:
    """A database URL whose socket directory has no server: every connection is refused at once."""
    return f"postgresql+psycopg://nobody@/dolbom?host={tmp_path}"


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_database_down_banner(lang: str, browser: Browser, tmp_path: Path) -> None:
    with uvicorn_server(_refusing_url(tmp_path)) as base, local_context(browser, lang) as (context, _blocked):
        page = context.new_page()
        if lang != "ko":
            page.add_init_script("localStorage.setItem('dolbom.lang', 'en')")
        page.goto(base + "/")
        banner = page.locator("#db-banner")
        expect(banner).to_be_visible(timeout=60_000)
        expect(banner).to_have_attribute("role", "alert")
        expect(banner).to_contain_text(SAYS[lang]["down"])
        # At the top of the window, over the map.
        box = banner.bounding_box()
        assert box is not None and box["y"] == 0
        expect(page.locator("html")).to_have_attribute("lang", lang)
        check(page, f"{lang}-05-database-down")
