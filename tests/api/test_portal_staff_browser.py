"""Two people in two browsers (Debian chromium driven by Playwright) against uvicorn on a database of its own with
the real Seoul centres, every request to a host other than 127.0.0.1 aborted: a centre's staff run the waitlist
while a waiting parent watches "my applications".

Seeded through the domain functions: a centre's 0세반 with three waiting parents, 가 (맞벌이 + 다자녀 claimed, rank
1), 나 (맞벌이 claimed, rank 2) and 다 (no claim, rank 3), and one free place. Parent 다 has "my applications"
open in one context; in another the staff log in and, by keyboard only, open the queue (both claims wait for an
evidence check), verify 나's claim (no rank moves) and offer the place: 가 is skipped (claims unchecked), 나 gets it.
나 accepts (through the domain), and parent 다's open page shows rank 2 of 2 instead of 3 of 3 without a reload,
in the polite live region, with the focus where it was. In Korean (a 375 px phone) and English (a desktop); axe
finds no serious or critical violation on any page.

Screenshots go to ``test-artifacts/portal/`` (gitignored); docs/img/portal/ holds copies for the walkthrough
(docs/roles/centre-staff.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Connection, Engine, text

from geo.admission import waitlist as wl
from geo.admission.rules import childcare_year
from geo.auth.accounts import create_user
from geo.settings import PROJECT_ROOT
from tests import browserutil
from tests.booking_util import verify
from tests.browserutil import local_context, tab_to, type_into
from tests.serverutil import uvicorn_server

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "portal"
PASSWORD = "correct horse battery staple"
SAYS = {
    "ko": {"rank": "{of}명 중 {rank}순위", "home": "내 어린이집", "verified": "어린이집이 확인함",
           "offered": "{name}에게", "skipped": "{name} 건너뜀", "pending": "증빙 확인을 기다리는 항목이 3개 있습니다."},
    "en": {"rank": "Rank {rank} of {of}", "home": "My centres", "verified": "verified by the centre",
           "offered": "The place is offered to {name}", "skipped": "{name} skipped",
           "pending": "3 claims wait for an evidence check."},
}


@pytest.fixture(scope="module")
def portal_db(make_database: Any, shared_data: Path) -> Engine:
    """A database of its own (the flow commits accounts, children, entries and offers) with the Seoul centres."""
    engine: Engine = make_database("portal_staff_browser", seoul=True)  # a copy of the Seoul template (tests/dbtemplate.py)
    return engine


@pytest.fixture(scope="module")
def server_url(portal_db: Engine) -> Iterator[str]:
    url = portal_db.url.render_as_string(hide_password=False)
    with uvicorn_server(url, extra_env={"DOLBOM_ENV": "development", "DOLBOM_IDENTITY_PROVIDER": "local"}) as base:
        yield base


def check(page: Page, name: str) -> None:
    browserutil.check(page, name, ARTIFACTS)


def _seed(conn: Connection, lang: str) -> dict[str, Any]:
    """A centre (one per language) with staff, one free 0세 place and three waiting parents in rank order."""
    code, name = conn.execute(text("""
        SELECT code, name FROM facilities WHERE status = 'active' AND (classes_by_age->>'0')::int >= 1
        ORDER BY code OFFSET :n LIMIT 1"""), {"n": {"ko": 0, "en": 1}.get(lang, 2)}).one()
    conn.execute(text("UPDATE facilities SET free_by_age = '{\"0\": 1}' WHERE code = :c"), {"c": code})
    create_user(conn, email=f"queue-staff-{lang}@example.kr", password=PASSWORD, role="centre_staff",
                facility_codes=[code])
    born = date(childcare_year(date.today()) - 1, 5, 1)  # 0세반 this year
    kids: dict[str, dict[str, Any]] = {}
    for key, claims in (("가", ["dual_income", "multi_child"]), ("나", ["dual_income"]), ("다", [])):
        email = f"queue-{key}-{lang}@example.kr".replace("가", "ga").replace("나", "na").replace("다", "da")
        uid = create_user(conn, email=email, password=PASSWORD, role="parent")
        verify(conn, uid, name=f"부모{key}{lang}")
        child = wl.register_child(conn, parent_user_id=uid, name=f"{key}아이", birth_date=born, claims=claims)
        entry = wl.apply(conn, parent_user_id=uid, child_id=child["id"], facility_code=code)
        kids[key] = {"user": uid, "email": email, "child": child["public_id"], "name": f"{key}아이",
                     "entry": entry["entry"]}
    return {"code": code, "name": name, "kids": kids}


def _login(page: Page, base: str, email: str) -> None:
    page.goto(base + "/portal/login")
    type_into(page, "#email", email)
    type_into(page, "#password", PASSWORD)
    page.keyboard.press("Enter")


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_staff_run_the_queue_while_a_parent_watches(lang: str, browser: Browser, server_url: str,
                                                    portal_db: Engine) -> None:
    says = SAYS[lang]
    with portal_db.begin() as conn:
        seed = _seed(conn, lang)
    code, kids = seed["code"], seed["kids"]
    with local_context(browser, lang) as (parent_ctx, _blocked), local_context(browser, lang) as (staff_ctx, _b):
        # Parent 다 opens "my applications": third of three.
        mine = parent_ctx.new_page()
        _login(mine, server_url, kids["다"]["email"])
        rank = mine.locator("section.card .rank")
        expect(rank).to_have_text(says["rank"].format(rank=3, of=3))
        # A mark on the window: it survives only if the page is never reloaded.
        mine.evaluate("window.__stillHere = true")

        # The staff log in, open the queue from "my centres", keyboard only.
        staff = staff_ctx.new_page()
        _login(staff, server_url, f"queue-staff-{lang}@example.kr")
        expect(staff.locator("h1")).to_have_text(says["home"])
        tab_to(staff, f'a[href="/portal/staff/centres/{code}/queue"]')
        staff.keyboard.press("Enter")
        expect(staff.locator("h1")).to_contain_text(seed["name"])
        expect(staff.locator("ol.queue > li")).to_have_count(3)
        expect(staff.locator("ol.queue > li.pending")).to_have_count(2)
        expect(staff.locator(".pending-note")).to_contain_text(says["pending"])
        check(staff, f"{lang}-30-staff-queue")

        # Verify 나's 맞벌이 claim: checked, nobody moves.
        tab_to(staff, f'form[data-child="{kids["나"]["child"]}"][data-category="dual_income"] '
                      'button[value="verified_centre"]')
        staff.keyboard.press("Enter")
        notice = staff.locator(".notice[role=status]")
        expect(notice).to_be_visible()
        card = staff.locator("ol.queue > li", has_text=kids["나"]["name"])
        expect(card.locator(".badge.evidence-verified_centre")).to_have_text(says["verified"])
        expect(staff.locator("ol.queue > li.pending")).to_have_count(1)
        check(staff, f"{lang}-31-staff-claim-verified")

        # Offer the free place: 가 is skipped (claims unchecked), 나 gets it.
        tab_to(staff, "#offer-form button")
        staff.keyboard.press("Enter")
        expect(notice).to_contain_text(says["offered"].format(name=kids["나"]["name"]))
        expect(notice).to_contain_text(says["skipped"].format(name=kids["가"]["name"]))
        expect(staff.locator("ul.offers li", has_text=kids["나"]["name"])).to_be_visible()
        check(staff, f"{lang}-32-staff-offer")

        # Meanwhile parent 다's page has not moved (an offer keeps 나 in the queue); the focus sits on a link.
        expect(rank).to_have_text(says["rank"].format(rank=3, of=3))
        tab_to(mine, 'a[href="/portal/children"]')

        # 나 accepts (the domain, as the parent's page would): 다 moves up, on the open page, without a reload.
        with portal_db.begin() as conn:
            offer_id = conn.execute(text("""SELECT o.id FROM waitlist_offers o JOIN children c ON c.id = o.child_id
                                            WHERE c.public_id = :c AND o.status = 'open'"""),
                                    {"c": kids["나"]["child"]}).scalar_one()
            wl.accept(conn, parent_user_id=kids["나"]["user"], offer_id=offer_id)
        expect(rank).to_have_text(says["rank"].format(rank=2, of=2))
        expect(mine.locator("#rank-news")).to_contain_text(says["rank"].format(rank=2, of=2))
        assert mine.evaluate("window.__stillHere === true")
        assert mine.evaluate("document.activeElement.matches('a[href=\"/portal/children\"]')")
        check(mine, f"{lang}-33-parent-rank-moved")


ENTRIES = "/portal/applications/entries"
SET_HIDDEN = """hidden => {
    Object.defineProperty(document, "hidden", {value: hidden, configurable: true});
    Object.defineProperty(document, "visibilityState", {value: hidden ? "hidden" : "visible", configurable: true});
    document.dispatchEvent(new Event("visibilitychange"));
}"""


def test_the_open_list_asks_only_while_it_is_shown(browser: Browser, server_url: str, portal_db: Engine) -> None:
    """"My applications" polls every 5 s while shown, never while the tab is hidden, at once when shown again
    (the page's clock is Playwright's: no real waiting, and "at once" means with the clock stopped), and every 15 s
    after 5 minutes without a change. bench_load: an open page's polls cost more than the whole API mix."""
    with portal_db.begin() as conn:
        seed = _seed(conn, "poll")
    kids = seed["kids"]
    with local_context(browser, "en") as (ctx, _blocked):
        mine = ctx.new_page()
        mine.clock.install()
        asked: list[str] = []
        mine.on("request", lambda r: asked.append(r.url) if ENTRIES in r.url else None)
        _login(mine, server_url, kids["다"]["email"])
        rank = mine.locator("section.card .rank")
        expect(rank).to_have_text("Rank 3 of 3")
        mine.clock.pause_at(datetime.now() + timedelta(seconds=5))

        def run(seconds: int) -> int:
            """Run the page's clock ``seconds`` on, 5 s at a time (each poll answered before the next)."""
            before = len(asked)
            for _ in range(seconds // 5):
                mine.clock.run_for(5_000)
                mine.wait_for_timeout(150)
            return len(asked) - before

        assert run(20) >= 3  # shown: every 5 s
        mine.evaluate(SET_HIDDEN, True)
        assert run(60) == 0  # hidden: nothing in a minute
        with portal_db.begin() as conn:  # meanwhile 가 withdraws
            wl.withdraw(conn, parent_user_id=kids["가"]["user"], entry_public_id=kids["가"]["entry"])
        with mine.expect_request(lambda r: ENTRIES in r.url):
            mine.evaluate(SET_HIDDEN, False)  # shown again: it asks with the clock stopped
        mine.wait_for_timeout(300)
        mine.clock.run_for(1_000)  # htmx settles the swap on a timer
        expect(rank).to_have_text("Rank 2 of 2")
        run(300)  # five quiet minutes
        assert 6 <= run(120) <= 10  # then every 15 s (8 in two minutes), not every 5 s (24)
