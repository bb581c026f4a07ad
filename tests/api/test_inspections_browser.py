"""Inspections in a real browser (Debian chromium driven by Playwright) against uvicorn on a database of its own
with the real Seoul centres, every request to a host other than 127.0.0.1 aborted.

A district officer (Korean on a 375 px phone, English on a desktop), by keyboard only, goes from the risk list to
a planned visit, records it against the checklist with a violation (a finding) and orders a correction with a
deadline; the centre's staff answer it in a second browser context; the officer accepts the answer, closes the
finding and then the inspection; then records a sanction that follows the finding and publishes its violation
(위반사실 공표), which the public centre page shows, and which a server whose clock is past the publication period
no longer shows. axe-core finds no serious or critical violation on any page, and no page is wider than the
window.

Screenshots go to ``test-artifacts/inspections/`` (gitignored); docs/img/portal/ holds a few copies
(docs/inspections.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine, text

from geo.auth.accounts import create_user
from geo.disclosure.rules import seoul_day
from geo.inspections.risk import planning_list
from geo.settings import PROJECT_ROOT, Settings
from tests import browserutil
from tests.browserutil import local_context, tab_to, type_into
from tests.serverutil import uvicorn_server

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "inspections"
PASSWORD = "officer horse battery staple"
DISTRICT = {"ko": "11440", "en": "11680"}  # 마포구, 강남구
SAYS = {
    "ko": {"risk": "위험도순 어린이집", "visited": "점검 완료", "ordered": "시정명령", "answered": "답변 완료",
           "closed": "종결", "sent": "답변을 구청에 보냈습니다.", "published": "처분이 등록되고 위반사실이 공표되었습니다.",
           "heading": "위반사실 공표"},
    "en": {"risk": "Centres by risk", "visited": "Visited", "ordered": "Correction ordered", "answered": "Answered",
           "closed": "Closed", "sent": "Your answer is sent to the district office.",
           "published": "The sanction is recorded and its violation is published.",
           "heading": "Published violation"},
}


@pytest.fixture(scope="module")
def db(make_database: Any, shared_data: Path) -> Engine:
    """A database of its own (the flow commits) with the real Seoul centres."""
    engine: Engine = make_database("inspections_browser", seoul=True)  # a copy of the Seoul template (tests/dbtemplate.py)
    return engine


@pytest.fixture(scope="module")
def server_url(db: Engine) -> Iterator[str]:
    url = db.url.render_as_string(hide_password=False)
    with uvicorn_server(url, extra_env={"DOLBOM_ENV": "development"}) as base:
        yield base


def check(page: Page, name: str) -> None:
    browserutil.check(page, name, ARTIFACTS)


def log_in(page: Page, server_url: str, email: str, next_path: str) -> None:
    """Log in by keyboard, landing on ``next_path``."""
    page.goto(f"{server_url}/portal/login?next={next_path}")
    type_into(page, "#email", email)
    type_into(page, "#password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server_url}{next_path}")


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_officer_inspects_staff_answer_officer_closes_and_publishes(lang: str, browser: Browser, server_url: str,
                                                      db: Engine) -> None:
    says, district = SAYS[lang], DISTRICT[lang]
    with db.begin() as conn:
        top = planning_list(conn, district, stale_after_days=7, limit=1)[0]
        create_user(conn, email=f"officer-{lang}@example.go.kr", password=PASSWORD, role="district_officer",
                    district_code=district)
        create_user(conn, email=f"staff-{lang}@example.kr", password=PASSWORD, role="centre_staff",
                    facility_codes=[top.code])
    code = top.code
    with local_context(browser, lang) as (officer_ctx, _blocked):
        page = officer_ctx.new_page()
        log_in(page, server_url, f"officer-{lang}@example.go.kr", "/portal/officer/inspections")
        expect(page.locator("#risk")).to_have_text(says["risk"])
        expect(page.locator(f"#centre-{code} .reasons li").first).to_be_visible()
        check(page, f"{lang}-01-risk-list")
        # Plan a visit to the first centre of the list (the date field holds a day next week).
        tab_to(page, f"#centre-{code} button[type=submit]")
        page.keyboard.press("Enter")
        expect(page.locator("#inspection-status")).to_be_visible()
        with db.connect() as conn:
            inspection_id = conn.execute(text("SELECT i.id FROM inspections i JOIN facilities f ON f.id = "
                                              "i.facility_id WHERE f.code = :c"), {"c": code}).scalar_one()
        inspection_url = f"{server_url}/portal/officer/inspections/{inspection_id}"
        assert page.url.split("?")[0] == inspection_url
        check(page, f"{lang}-02-visit-form")
        # The subsidies item: a violation (arrow key in its radio group), with a note.
        tab_to(page, "input[name=result_subsidies][value=compliant]")
        page.keyboard.press("ArrowDown")
        expect(page.locator("input[name=result_subsidies][value=violation]")).to_be_checked()
        type_into(page, "#note_subsidies", "출석하지 않은 아동 2명 허위 등록" if lang == "ko"
                  else "Two absent children registered to claim subsidies")
        tab_to(page, "#visit button[type=submit]")
        page.keyboard.press("Enter")
        expect(page.locator("#inspection-status")).to_have_text(says["visited"])
        finding = page.locator("section.card").first
        finding_id = (finding.get_attribute("id") or "").removeprefix("finding-")
        type_into(page, f"#order_text_{finding_id}", "허위 등록 정정 후 보고" if lang == "ko"
                  else "Correct the register and report")
        tab_to(page, f"form[action='/portal/officer/findings/{finding_id}/order'] button[type=submit]")
        page.keyboard.press("Enter")
        expect(page.locator(f"#finding-{finding_id} .badge")).to_have_text(says["ordered"])
        check(page, f"{lang}-03-finding-ordered")

        # The centre's staff answer, in a context of their own.
        with local_context(browser, lang) as (staff_ctx, _staff_blocked):
            staff = staff_ctx.new_page()
            log_in(staff, server_url, f"staff-{lang}@example.kr", f"/portal/staff/centres/{code}/inspections")
            expect(staff.locator(f"#finding-{finding_id} .badge")).to_have_text(says["ordered"])
            check(staff, f"{lang}-04-staff-findings")
            type_into(staff, f"#answer_text_{finding_id}", "출석부 정정, 보조금 반환 계획 첨부" if lang == "ko"
                      else "Register corrected; repayment plan attached")
            staff.keyboard.press("Tab")
            staff.keyboard.press("Enter")
            expect(staff.locator(".notice[role=status]")).to_have_text(says["sent"])
            expect(staff.locator(f"#finding-{finding_id} .badge")).to_have_text(says["answered"])
            check(staff, f"{lang}-05-staff-answered")

        # The officer accepts the answer, closes the finding, then the inspection.
        page.goto(inspection_url)
        expect(page.locator(f"#finding-{finding_id} .badge")).to_have_text(says["answered"])
        tab_to(page, f"form[action='/portal/officer/findings/{finding_id}/close'] button[type=submit]")
        page.keyboard.press("Enter")
        expect(page.locator(f"#finding-{finding_id} .badge")).to_have_text(says["closed"])
        tab_to(page, "form[action$='/close']:not([action*='findings']) button[type=submit]")
        page.keyboard.press("Enter")
        expect(page.locator("#inspection-status")).to_have_text(says["closed"])
        check(page, f"{lang}-06-closed")

        # The 구 decides a sanction that follows the finding and, once final, publishes the violation.
        today = seoul_day(Settings().now())
        page.goto(f"{server_url}/portal/officer/sanctions")
        expect(page.locator("#record-heading")).to_be_visible()
        type_into(page, "#code", code)
        tab_to(page, "#kind")
        page.locator("#kind").select_option("suspension")
        type_into(page, "#violation", "아동 허위 등록으로 보조금 부정수급" if lang == "ko" else "Subsidies claimed for absent children")
        type_into(page, "#disposition", "운영정지 3개월" if lang == "ko" else "Suspended for 3 months")
        type_into(page, "#legal_basis", "영유아보육법 제45조")
        type_into(page, "#authority", "마포구청" if lang == "ko" else "Gangnam-gu Office")
        type_into(page, "#decided_at", (today - timedelta(days=20)).isoformat())
        type_into(page, "#final_at", (today - timedelta(days=2)).isoformat())
        type_into(page, "#finding_ref", finding_id)
        tab_to(page, "#publish")
        page.keyboard.press("Space")
        tab_to(page, 'form[action="/portal/officer/sanctions"] button[type="submit"]')
        page.keyboard.press("Enter")
        expect(page.locator(".notice")).to_have_text(says["published"])
        check(page, f"{lang}-07-sanction-published")
    with db.connect() as conn:
        until: date = conn.execute(text("""SELECT d.published_until FROM disclosures d JOIN sanctions s
                                           ON s.id = d.sanction_id JOIN facilities f ON f.id = d.facility_id
                                           WHERE f.code = :c AND s.finding_ref = :r"""),
                                   {"c": code, "r": finding_id}).scalar_one()
    # The public centre page (no login) shows it while the period lasts ...
    with local_context(browser, lang) as (public_ctx, _blocked):
        page = public_ctx.new_page()
        page.goto(f"{server_url}/portal/centres/{code}")
        expect(page.locator("#disclosures h2")).to_contain_text(says["heading"])
        expect(page.locator("#disclosures .period")).to_contain_text(until.isoformat())
        check(page, f"{lang}-08-centre-disclosure")
    # ... and not after it: a server whose clock is two days past the last day (test-only setting).
    offset = (until - today).days + 2
    with uvicorn_server(db.url.render_as_string(hide_password=False),
                        extra_env={"DOLBOM_ENV": "development", "DOLBOM_CLOCK_OFFSET_DAYS": str(offset)}) as later, \
            local_context(browser, lang) as (later_ctx, _blocked):
        page = later_ctx.new_page()
        page.goto(f"{later}/portal/centres/{code}")
        expect(page.locator("h1")).to_be_visible()
        expect(page.locator("#disclosures")).to_have_count(0)
    with db.connect() as conn:
        events = conn.execute(text("""SELECT t.kind, t.event, u.email FROM inspection_transitions t
                                      LEFT JOIN users u ON u.id = t.actor_user_id ORDER BY t.id""")).all()
    mine = [(e.kind, e.event) for e in events if e.email in (f"officer-{lang}@example.go.kr",
                                                             f"staff-{lang}@example.kr")]
    assert mine == [("inspection", "plan"), ("inspection", "visit"), ("finding", "record"), ("finding", "order"),
                    ("finding", "answer"), ("finding", "close"), ("inspection", "close")]
