"""The parent's main flow in the portal, in a real browser (Debian chromium driven by Playwright) against uvicorn on a
database of its own with the real Seoul centres, every request to a host other than 127.0.0.1 aborted.

In Korean (a 375 px phone) and in English (a desktop), by keyboard only (Tab, Enter, Space and typing into
fields): a parent signs up, confirms the mailed code, logs in, verifies (the local 본인인증 provider), registers a
child, applies to two centres and sees the ranks; then a centre's staff verify the claim and make an offer through
the API, and the parent accepts it on the page. axe-core finds no serious or critical violation on any page, and
no page is wider than the window. Expected ranks follow from the year's rules, not from the page.

Screenshots go to ``test-artifacts/portal/`` (gitignored); docs/img/portal/ holds copies for the walkthrough
(docs/roles/parent.md).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Connection, Engine, text

from geo.admission import waitlist as wl
from geo.admission.rules import childcare_year
from geo.auth.accounts import create_user
from geo.settings import PROJECT_ROOT
from tests import browserutil
from tests.booking_util import verify
from tests.browserutil import only_local, tab_to, type_into
from tests.serverutil import uvicorn_server

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "portal"
PASSWORD = "correct horse battery staple"
STAFF_PASSWORD = "staff horse battery staple"
# What each language's page says (the catalogs' translations of the messages the test looks for).
SAYS = {
    "ko": {"rank": "{of}명 중 {rank}순위", "accepted": "입소 자리를 수락했습니다.", "locale": "ko-KR",
           "logged": "이 기기에서 확인했습니다", "log_rank": "서명된 공개 기록으로 이 기기에서 센 순위: {rank}순위",
           "keep": "유지", "kept": "신청이 유지됩니다.",
           "viewport": {"width": 375, "height": 812}},
    "en": {"rank": "Rank {rank} of {of}", "accepted": "You accepted the place.", "locale": "en-US",
           "logged": "checked on this device", "log_rank": "Rank {rank}, counted on this device from the signed public log",
           "keep": "Keep", "kept": "The application is kept.",
           "viewport": {"width": 1280, "height": 900}},
}


@pytest.fixture(scope="module")
def portal_db(make_database: Any, shared_data: Path) -> Engine:
    """A database of its own (the flow commits accounts, children and entries) with the real Seoul centres."""
    engine: Engine = make_database("portal_browser", seoul=True)  # a copy of the Seoul template
    return engine


@pytest.fixture(scope="module")
def server_url(portal_db: Engine) -> Iterator[str]:
    url = portal_db.url.render_as_string(hide_password=False)
    with uvicorn_server(url, extra_env={"DOLBOM_ENV": "development", "DOLBOM_IDENTITY_PROVIDER": "local"}) as base:
        yield base


def _centres(conn: Connection) -> list[tuple[str, str]]:
    """(code, name) of four operating centres with a 0세 class, in four different 구 (lowest codes)."""
    rows = conn.execute(text("""
        SELECT DISTINCT ON (district_code) code, name FROM facilities
        WHERE status = 'active' AND district_code IS NOT NULL AND (classes_by_age->>'0')::int >= 1
        ORDER BY district_code, code LIMIT 4""")).all()
    assert len(rows) == 4
    return [(r.code, r.name) for r in rows]


def _seed_queue(conn: Connection, code: str, born: date, lang: str) -> None:
    """Two other verified parents applied at ``code`` before ours: one child with 맞벌이 + 다자녀 claimed (400
    points: ranked before a 200-point 맞벌이 claim), one without claims (ranked after it)."""
    for n, claims in enumerate((["dual_income", "multi_child"], [])):
        uid = create_user(conn, email=f"other{n}-{lang}@example.kr", password=PASSWORD, role="parent")
        verify(conn, uid, name=f"다른부모{n}{lang}")
        child = wl.register_child(conn, parent_user_id=uid, name=f"다른아이{n}", birth_date=born, claims=claims)
        wl.apply(conn, parent_user_id=uid, child_id=child["id"], facility_code=code)


def check(page: Page, name: str) -> None:
    browserutil.check(page, name, ARTIFACTS)


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_parent_applies_and_accepts_by_keyboard(lang: str, browser: Browser, server_url: str,
                                                portal_db: Engine) -> None:
    says = SAYS[lang]
    born = date(childcare_year(date.today()) - 1, 5, 1)  # 0세반 this year
    with portal_db.begin() as conn:
        centres = _centres(conn)
        (first, first_name), (second, second_name) = centres[:2] if lang == "ko" else centres[2:]
        _seed_queue(conn, first, born, lang)
    blocked: list[str] = []
    context = browser.new_context(locale=says["locale"], viewport=says["viewport"])
    context.route("**/*", only_local(blocked))
    page = context.new_page()
    started = time.monotonic()
    email = f"mother-{lang}@example.kr"

    # Sign up (the language comes from the browser's Accept-Language).
    page.goto(server_url + "/portal/signup")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    check(page, f"{lang}-01-signup")
    type_into(page, "#display_name", "김엄마" if lang == "ko" else "Kim")
    type_into(page, "#email", email)
    type_into(page, "#password", "short")
    page.keyboard.press("Enter")
    # The weak password comes back inline, announced (role=alert), the other fields kept.
    expect(page.locator("#password-error")).to_be_visible()
    expect(page.locator("#form-errors")).to_have_attribute("role", "alert")
    expect(page.locator("#email")).to_have_value(email)
    check(page, f"{lang}-02-signup-error")
    type_into(page, "#password", PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("#token")).to_be_visible()
    # The mailed code, as the file sink would deliver it (the outbox row).
    with portal_db.connect() as conn:
        body = conn.execute(text("SELECT body FROM notification_outbox WHERE recipient = :e "
                                 "AND template = 'confirm_email'"), {"e": email}).scalar_one()
    token = re.search(r'"token": "([^"]+)"', body).group(1)  # type: ignore[union-attr]
    check(page, f"{lang}-03-confirm-email")
    type_into(page, "#token", token)
    page.keyboard.press("Enter")

    # Log in.
    expect(page.locator("#password")).to_be_visible()
    check(page, f"{lang}-04-login")
    type_into(page, "#email", email)
    type_into(page, "#password", PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text(re.compile("내 신청|My applications"))

    # 본인인증 with the local provider (reached through the menu).
    tab_to(page, 'a[href="/portal/account/identity"]')
    page.keyboard.press("Enter")
    expect(page.locator("#name")).to_be_visible()
    check(page, f"{lang}-05-identity")
    type_into(page, "#name", "김엄마")
    type_into(page, "#birth_date", "1990-02-03" if lang == "ko" else "1991.3.4")  # both forms are dates
    type_into(page, "#phone", "010-2345-6789")
    page.keyboard.press("Enter")

    # A child with a 맞벌이 claim (Space ticks the box). Wait for the children's form itself: the identity page
    # has fields of the same ids, and typing before the swap would go into those.
    expect(page.locator('form[action="/portal/children"]')).to_be_visible()
    type_into(page, "#name", "김아기")
    type_into(page, "#birth_date", born.isoformat())
    tab_to(page, 'input[name="claims"][value="dual_income"]')
    page.keyboard.press("Space")
    expect(page.locator('input[value="dual_income"]')).to_be_checked()
    check(page, f"{lang}-06-child")
    tab_to(page, 'form[action="/portal/children"] button[type="submit"]')
    page.keyboard.press("Enter")
    expect(page.locator("li", has_text="김아기")).to_be_visible()

    # Apply to two centres from their pages.
    for code in (first, second):
        page.goto(f"{server_url}/portal/centres/{code}")
        if code == first:
            check(page, f"{lang}-07-centre")
        tab_to(page, f'form[action="/portal/centres/{code}/apply"] button[type="submit"]')
        page.keyboard.press("Enter")
        expect(page.locator("h1")).to_have_text(re.compile("내 신청|My applications"))

    # The ranks: 2nd of 3 at the first centre (after the 400-point child, before the child without claims),
    # 1st of 1 at the second.
    expect(page.locator("section.card")).to_have_count(2)
    first_card = page.locator("section.card", has_text=first_name)
    second_card = page.locator("section.card", has_text=second_name)
    expect(first_card.locator(".rank")).to_have_text(says["rank"].format(rank=2, of=3))
    expect(second_card.locator(".rank")).to_have_text(says["rank"].format(rank=1, of=1))
    check(page, f"{lang}-08-my-applications")
    seconds_to_rank = time.monotonic() - started
    # The wait forecast of each waiting entry, in the page's language.
    expect(first_card.locator(".forecast p").first).to_contain_text("%")
    # The receipt's check: the device verifies the log's proofs of my entries (tlog.js, WebCrypto) and counts my
    # rank from the signed rank event itself.
    tab_to(page, "#log-check button")
    page.keyboard.press("Enter")
    expect(page.locator("#log-check [data-result]")).to_contain_text(says["logged"])
    expect(page.locator("#log-check [data-result]")).not_to_have_class(re.compile("bad"))
    expect(first_card.locator(".log-rank")).to_have_text(says["log_rank"].format(rank=2))
    check(page, f"{lang}-08b-log-check")

    # The centre's staff check the claim and offer the free place, through the API.
    with portal_db.begin() as conn:
        create_user(conn, email=f"staff-{lang}@example.kr", password=STAFF_PASSWORD, role="centre_staff",
                    facility_codes=[first])
        conn.execute(text("UPDATE facilities SET free_by_age = '{\"0\": 1}' WHERE code = :c"), {"c": first})
        child_public_id = conn.execute(text("SELECT c.public_id FROM children c JOIN users u "
                                            "ON u.id = c.parent_user_id WHERE u.email = :e"),
                                       {"e": email}).scalar_one()
    with httpx.Client(base_url=server_url) as api:
        bearer = api.post("/auth/token", json={"email": f"staff-{lang}@example.kr", "password": STAFF_PASSWORD})
        headers = {"Authorization": "Bearer " + bearer.json()["access_token"]}
        checked = api.post(f"/waitlist/centres/{first}/claims", headers=headers, json={
            "child": child_public_id, "category": "dual_income", "evidence": "verified_centre"})
        assert checked.status_code == 200, checked.text
        offered = api.post(f"/waitlist/centres/{first}/offers", headers=headers, json={"age_class": 0})
        assert offered.status_code == 201, offered.text
        # The 400-point child's claims are not checked yet: skipped, so the place is offered to ours.
        assert len(offered.json()["skipped"]) == 1 and offered.json()["offer"] is not None

    # The parent opens "my applications" again: the offer, its deadline and a running countdown.
    tab_to(page, 'a[href="/portal/applications"]')
    page.keyboard.press("Enter")
    offer = first_card.locator(".offer")
    expect(offer).to_be_visible()
    expect(offer.locator(".left")).to_have_text(re.compile(r"\d+.*\d\d:\d\d:\d\d"))
    check(page, f"{lang}-09-offer")
    tab_to(page, f'#{first_card.get_attribute("id")} details.confirm > summary')
    page.keyboard.press("Enter")
    check(page, f"{lang}-10-accept-confirm")
    tab_to(page, f'#{first_card.get_attribute("id")} form[action$="/accept"] button')
    page.keyboard.press("Enter")
    expect(page.locator(".notice[role=status]")).to_have_text(says["accepted"])
    # Admitted at the first centre; the second application stays (it lapses unless kept: "Keep" is offered).
    expect(page.locator(".notice", has_text=first_name)).to_be_visible()
    expect(page.locator("section.card")).to_have_count(1)
    expect(second_card.locator("details.confirm > summary", has_text=says["keep"])).to_be_visible()
    check(page, f"{lang}-11-accepted")
    # Keep the second application (it would lapse after the admission), after its confirmation.
    second_id = second_card.get_attribute("id")
    tab_to(page, f'#{second_id} details.confirm > summary')
    page.keyboard.press("Enter")
    tab_to(page, f'#{second_id} form[action$="/keep"] button')
    page.keyboard.press("Enter")
    expect(page.locator(".notice[role=status]")).to_have_text(says["kept"])
    expect(second_card.locator("details.confirm > summary", has_text=says["keep"])).to_have_count(0)
    with portal_db.connect() as conn:
        assert conn.execute(text("""SELECT e.status FROM waitlist_entries e JOIN facilities f ON f.id = e.facility_id
                                    JOIN children c ON c.id = e.child_id
                                    WHERE f.code = :f AND c.public_id = :c"""),
                            {"f": first, "c": child_public_id}).scalar_one() == "admitted"
        assert conn.execute(text("""SELECT e.status, e.lapse_at FROM waitlist_entries e
                                    JOIN facilities f ON f.id = e.facility_id JOIN children c ON c.id = e.child_id
                                    WHERE f.code = :f AND c.public_id = :c"""),
                            {"f": second, "c": child_public_id}).one() == ("waiting", None)
    assert all(urlsplit(u).hostname != "127.0.0.1" for u in blocked)
    print(f"\n[{lang}] sign-up to 'my child's rank' in the browser: {seconds_to_rank:.1f} s")
    context.close()


def test_map_detail_links_to_the_centre_page(browser: Browser, server_url: str, portal_db: Engine) -> None:
    """The map's centre detail links to the centre's portal page (the way in for the parent's flow)."""
    blocked: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.route("**/*", only_local(blocked))
    page = context.new_page()
    page.goto(server_url + "/")
    page.locator("#results li").first.wait_for(timeout=60_000)
    page.locator("#results button").first.click()
    link = page.locator("#apply-link")
    expect(link).to_be_visible()
    href = link.get_attribute("href") or ""
    code = href.rsplit("/", 1)[-1]
    with portal_db.connect() as conn:
        name = conn.execute(text("SELECT name FROM facilities WHERE code = :c"), {"c": code}).scalar_one()
    expect(page.locator("#detail-name")).to_have_text(name)
    link.click()
    expect(page.locator("h1")).to_have_text(name)
    context.close()


def test_staff_report_vacancy_by_keyboard(browser: Browser, server_url: str, portal_db: Engine) -> None:
    """A centre's staff log in on a phone (Korean) and report vacancies by keyboard: a report the centre's
    classes cannot hold is refused at its field, a fitting one is saved and reaches the public API."""
    with portal_db.begin() as conn:
        code, classes, name = conn.execute(text("""
            SELECT code, classes_by_age, name FROM facilities WHERE status = 'active' AND capacity >= 20
              AND (classes_by_age->>'1')::int >= 1 ORDER BY code DESC LIMIT 1""")).one()
        create_user(conn, email="staff-vacancy@example.kr", password=STAFF_PASSWORD, role="centre_staff",
                    facility_codes=[code])
        # No figures yet: the form starts from zeros (the imported figures are not this test's subject).
        conn.execute(text("UPDATE facilities SET enrolled_by_age = '{}', free_by_age = '{}' WHERE code = :c"),
                     {"c": code})
    context = browser.new_context(locale="ko-KR", viewport={"width": 375, "height": 812})
    blocked: list[str] = []
    context.route("**/*", only_local(blocked))
    page = context.new_page()
    page.goto(server_url + "/portal/login")
    type_into(page, "#email", "staff-vacancy@example.kr")
    type_into(page, "#password", STAFF_PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("내 어린이집")
    tab_to(page, f'a[href="/portal/staff/centres/{code}/vacancy"]')
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_contain_text(name)
    check(page, "ko-20-staff-vacancy")
    limit = int(classes["1"]) * 5  # 만 1세반: 5 children per class
    tab_to(page, "#enrolled_1")
    page.keyboard.press("Control+A")
    page.keyboard.type(str(limit + 1))
    page.keyboard.press("Enter")
    expect(page.locator("#enrolled_1-error")).to_contain_text(f"최대 {limit}")
    expect(page.locator("#enrolled_1")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#form-errors")).to_be_focused()  # announced and focused after the boosted post
    check(page, "ko-21-staff-vacancy-refused")
    tab_to(page, "#enrolled_1")
    page.keyboard.press("Control+A")
    page.keyboard.type("1")
    tab_to(page, "#free_1")
    page.keyboard.press("Control+A")
    page.keyboard.type("2")
    page.keyboard.press("Enter")
    expect(page.locator(".notice[role=status]")).to_be_visible()
    public = httpx.get(f"{server_url}/vacancy/centres/{code}").json()
    assert public["free_by_age"]["1"] == 2 and public["stale"] is False
    assert all(urlsplit(u).hostname != "127.0.0.1" for u in blocked)
    context.close()


def test_the_flow_needs_no_javascript(browser: Browser, server_url: str, portal_db: Engine) -> None:
    """With JavaScript off, forms still post and answer: a refused sign-up shows its error, a login lands on
    "my applications" (htmx only enhances)."""
    with portal_db.begin() as conn:
        create_user(conn, email="nojs-parent@example.kr", password=PASSWORD, role="parent")
    context = browser.new_context(locale="en-US", java_script_enabled=False)
    page = context.new_page()
    page.goto(server_url + "/portal/signup")
    page.fill("#email", "nojs@example.kr")
    page.fill("#password", "short")
    page.click("button[type=submit]")
    expect(page.locator("#password-error")).to_be_visible()
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#token")).to_be_visible()
    page.goto(server_url + "/portal/login")
    page.fill("#email", "nojs-parent@example.kr")
    page.fill("#password", PASSWORD)
    page.click("form[action='/portal/login'] button[type=submit]")
    expect(page.locator("h1")).to_have_text("My applications")
    page.click("a[href='/portal/account/identity']")
    page.fill("#name", "자바없음")
    page.fill("#birth_date", "19880707")
    page.click("form[action='/portal/account/identity'] button[type=submit]")
    expect(page.locator('form[action="/portal/children"]')).to_be_visible()
    expect(page.locator(".notice[role=status]")).to_be_visible()
    context.close()
