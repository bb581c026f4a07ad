"""Inspections in a real browser (Debian chromium driven by Playwright) against uvicorn on a database of its own
with the real Seoul centres, every request to a host other than 127.0.0.1 aborted.

A district officer (Korean on a 375 px phone, English on a desktop), by keyboard only, goes from the risk list to
a planned visit, records it against the checklist with a violation (a finding) and orders a correction with a
deadline; the centre's staff answer it in a second browser context; the officer accepts the answer, closes the
finding and then the inspection. axe-core finds no serious or critical violation on any page, and no page is
wider than the window.

Screenshots go to ``test-artifacts/inspections/`` (gitignored); docs/img/portal/ holds a few copies
(docs/inspections.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine, text

from geo.auth.accounts import create_user
from geo.inspections.risk import planning_list
from geo.settings import PROJECT_ROOT
from tests import browserutil
from tests.browserutil import launch_chromium, local_context, tab_to, type_into
from tests.serverutil import uvicorn_server

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "inspections"
PASSWORD = "officer horse battery staple"
DISTRICT = {"ko": "11440", "en": "11680"}  # 마포구, 강남구
SAYS = {
    "ko": {"risk": "위험도순 어린이집", "visited": "점검 완료", "ordered": "시정명령", "answered": "답변 완료",
           "closed": "종결", "sent": "답변을 구청에 보냈습니다."},
    "en": {"risk": "Centres by risk", "visited": "Visited", "ordered": "Correction ordered", "answered": "Answered",
           "closed": "Closed", "sent": "Your answer is sent to the district office."},
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


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch_chromium() as chromium:
        yield chromium


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
def test_officer_inspects_staff_answer_officer_closes(lang: str, browser: Browser, server_url: str,
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
        # The vehicles item: a violation (arrow key in its radio group), with a note.
        tab_to(page, "input[name=result_vehicles][value=compliant]")
        page.keyboard.press("ArrowDown")
        expect(page.locator("input[name=result_vehicles][value=violation]")).to_be_checked()
        type_into(page, "#note_vehicles", "동승보호자 없이 운행" if lang == "ko" else "No adult on the school bus")
        tab_to(page, "#visit button[type=submit]")
        page.keyboard.press("Enter")
        expect(page.locator("#inspection-status")).to_have_text(says["visited"])
        finding = page.locator("section.card").first
        finding_id = (finding.get_attribute("id") or "").removeprefix("finding-")
        type_into(page, f"#order_text_{finding_id}", "동승보호자 배치 후 보고" if lang == "ko" else "Put an adult on board")
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
            type_into(staff, f"#answer_text_{finding_id}", "보호자 2명 배치, 운행일지 사진 첨부" if lang == "ko"
                      else "Two adults assigned; photo of the log attached")
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
    with db.connect() as conn:
        events = conn.execute(text("""SELECT t.kind, t.event, u.email FROM inspection_transitions t
                                      LEFT JOIN users u ON u.id = t.actor_user_id ORDER BY t.id""")).all()
    mine = [(e.kind, e.event) for e in events if e.email in (f"officer-{lang}@example.go.kr",
                                                             f"staff-{lang}@example.kr")]
    assert mine == [("inspection", "plan"), ("inspection", "visit"), ("finding", "record"), ("finding", "order"),
                    ("finding", "answer"), ("finding", "close"), ("inspection", "close")]
