"""Care booking in a real browser (Debian chromium driven by Playwright) against uvicorn on a database of its own
with the real Seoul centres, every request to a host other than 127.0.0.1 aborted.

In Korean (a 375 px phone) and in English (a desktop): a centre's staff log in and publish a holiday slot (a form
without any place is refused at its fieldset first); a parent, by keyboard only (Tab, arrows, Enter and typing),
finds the slot for the day and age near home (a 구 and 동), books it, and the notify worker (``dolbom notify
worker --once``, the file provider) delivers the text to the sink: the page shows the same text, word for word.
The parent cancels; the cancellation's text arrives and is shown too. axe-core finds no serious or critical
violation on any page, and no page is wider than the window.

Screenshots go to ``test-artifacts/portal-bookings/`` (gitignored); docs/img/portal/ holds copies for the
walkthroughs (docs/roles/parent.md, docs/roles/centre-staff.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine, text

from geo.auth.accounts import create_user
from geo.domain import SEOUL_TZ
from geo.settings import PROJECT_ROOT
from tests import browserutil
from tests.api.test_portal_bookings_pages import holiday_centres
from tests.booking_util import verify
from tests.browserutil import local_context, tab_to, type_into
from tests.serverutil import uvicorn_server

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "portal-bookings"
PASSWORD = "correct horse battery staple"
SAYS = {
    "ko": {"staff_home": "내 어린이집", "published": "게시되었습니다", "booked": "예약되었습니다",
           "status_booked": "예약됨", "cancelled_notice": "예약이 취소되었습니다.", "status_cancelled": "취소됨",
           "need_place": "1명 이상"},
    "en": {"staff_home": "My centres", "published": "Published.", "booked": "Booked.", "status_booked": "booked",
           "cancelled_notice": "The booking is cancelled.", "status_cancelled": "cancelled",
           "need_place": "at least one place"},
}


@pytest.fixture(scope="module")
def bookings_db(make_database: Any, shared_data: Path) -> Engine:
    """A database of its own (the flow commits accounts, slots and bookings) with the real Seoul centres."""
    engine: Engine = make_database("portal_bookings_browser", seoul=True)  # a copy of the Seoul template (tests/dbtemplate.py)
    return engine


@pytest.fixture(scope="module")
def server_url(bookings_db: Engine) -> Iterator[str]:
    url = bookings_db.url.render_as_string(hide_password=False)
    with uvicorn_server(url, extra_env={"DOLBOM_ENV": "development", "DOLBOM_IDENTITY_PROVIDER": "local"}) as base:
        yield base


def check(page: Page, name: str) -> None:
    browserutil.check(page, name, ARTIFACTS)


def deliver(engine: Engine, sink: Path) -> dict[str, str]:
    """Run the notify worker once with the file provider (as ``dolbom notify worker --once`` in production);
    the sink's texts by idempotency key."""
    env = {**os.environ, "DATABASE_URL": engine.url.render_as_string(hide_password=False),
           "DOLBOM_NOTIFY_PROVIDER": "file", "DOLBOM_NOTIFY_FILE": str(sink)}
    done = subprocess.run([sys.executable, "-m", "geo.cli", "notify", "worker", "--once", "--poll-s", "0.2"],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, timeout=180)
    assert done.returncode == 0, done.stderr.decode()
    lines = [json.loads(line) for line in sink.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {line["idempotency_key"]: line["body"] for line in lines}


def login(page: Page, server_url: str, email: str) -> None:
    """Log in on the portal's login page, by keyboard."""
    page.goto(server_url + "/portal/login")
    type_into(page, "#email", email)
    type_into(page, "#password", PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("#password")).to_have_count(0)


def replace(page: Page, selector: str, value: str) -> None:
    """Tab to a field, select what it holds and type ``value`` over it."""
    tab_to(page, selector)
    page.keyboard.press("Control+A")
    page.keyboard.type(value)


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_staff_publish_parent_books_texts_and_cancels(lang: str, browser: Browser, server_url: str,
                                                      bookings_db: Engine, tmp_path: Path) -> None:
    says = SAYS[lang]
    day = (datetime.now(UTC).astimezone(SEOUL_TZ) + timedelta(days=3)).date().isoformat()
    with bookings_db.begin() as conn:
        site = holiday_centres(conn, 2)[0 if lang == "ko" else 1]
        create_user(conn, email=f"slots-{lang}@example.kr", password=PASSWORD, role="centre_staff",
                    facility_codes=[site.code])
        parent_id = create_user(conn, email=f"parent-{lang}@example.kr", password=PASSWORD, role="parent")
        verify(conn, parent_id, name="김엄마" if lang == "ko" else "Kim", phone=f"010-4{parent_id % 1000:03d}-0001")

    # The centre's staff publish a holiday slot on the day: two places for age 2.
    with local_context(browser, lang) as (context, _blocked):
        page = context.new_page()
        login(page, server_url, f"slots-{lang}@example.kr")
        expect(page.locator("h1")).to_have_text(says["staff_home"])
        tab_to(page, f'a[href="/portal/staff/centres/{site.code}/slots"]')
        page.keyboard.press("Enter")
        expect(page.locator("h1")).to_contain_text(site.name)
        check(page, f"{lang}-30-staff-slots")
        replace(page, "#date", day)
        tab_to(page, 'form[action$="/slots"] button[type="submit"]')
        page.keyboard.press("Enter")
        expect(page.locator("#places-error")).to_contain_text(says["need_place"])
        expect(page.locator("#form-errors")).to_have_attribute("role", "alert")
        check(page, f"{lang}-31-staff-slots-refused")
        replace(page, "#places_2", "2")
        page.keyboard.press("Enter")
        expect(page.locator(".notice[role=status]")).to_contain_text(says["published"])
        expect(page.locator("section.card[id^=slot-]")).to_have_count(1)
        check(page, f"{lang}-32-staff-slot-published")
    with bookings_db.connect() as conn:
        slot_id = conn.execute(text("SELECT id FROM booking_slots WHERE facility_id = (SELECT id FROM facilities "
                                    "WHERE code = :c)"), {"c": site.code}).scalar_one()

    # The parent, by keyboard: the booking page from the menu, home (구 and 동), the day, age 2 (the default),
    # a 5 km distance (arrow keys on the list), search.
    with local_context(browser, lang) as (context, _blocked):
        page = context.new_page()
        login(page, server_url, f"parent-{lang}@example.kr")
        tab_to(page, 'a[href="/portal/bookings"]')
        page.keyboard.press("Enter")
        expect(page.locator("#near")).to_be_visible()
        check(page, f"{lang}-33-bookings")
        type_into(page, "#near", site.near)
        replace(page, "#on", day)
        tab_to(page, "#radius_m")
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowDown")
        expect(page.locator("#radius_m")).to_have_value("5000")
        expect(page.locator("#age")).to_have_value("2")
        tab_to(page, 'form[action="/portal/bookings"][method="get"] button[type="submit"]')
        page.keyboard.press("Enter")
        card = page.locator(f"#slot-{slot_id}")
        expect(card).to_be_visible()
        expect(card.locator(f'a[href="/portal/centres/{site.code}"]')).to_have_text(site.name)
        expect(card.locator("dd.free")).to_have_text("2")
        check(page, f"{lang}-34-bookings-found")
        tab_to(page, f"#slot-{slot_id} button[type=submit]")
        page.keyboard.press("Enter")
        expect(page.locator(".notice[role=status]")).to_contain_text(says["booked"])
        with bookings_db.connect() as conn:
            booking_id = conn.execute(text("SELECT id FROM bookings WHERE slot_id = :s AND parent_user_id = :p"),
                                      {"s": slot_id, "p": parent_id}).scalar_one()
        mine = page.locator(f"#booking-{booking_id}")
        expect(mine.locator("dd.status")).to_have_text(says["status_booked"])
        # The worker delivers the text to the sink: the page shows it word for word, in the page's language.
        sink = tmp_path / "sms.jsonl"
        sent = deliver(bookings_db, sink)
        key = f"booking:{booking_id}:booked"
        assert site.name in sent[key] and (("예약이 접수" in sent[key]) if lang == "ko" else ("received" in sent[key]))
        expect(mine.locator(f'q.sms[data-key="{key}"]')).to_have_text(sent[key])
        check(page, f"{lang}-35-booked-with-text")

        # Cancel, after the confirmation.
        tab_to(page, f"#booking-{booking_id} details.confirm > summary")
        page.keyboard.press("Enter")
        tab_to(page, f'#booking-{booking_id} form[action$="/cancel"] button')
        check(page, f"{lang}-36-cancel-confirm")
        page.keyboard.press("Enter")
        expect(page.locator(".notice[role=status]")).to_have_text(says["cancelled_notice"])
        expect(mine.locator("dd.status")).to_have_text(says["status_cancelled"])
        sent = deliver(bookings_db, sink)
        key = f"booking:{booking_id}:cancelled"
        page.reload()
        expect(mine.locator(f'q.sms[data-key="{key}"]')).to_have_text(sent[key])
        check(page, f"{lang}-37-cancelled")
    with bookings_db.connect() as conn:
        status = conn.execute(text("SELECT status FROM bookings WHERE id = :b"), {"b": booking_id}).scalar_one()
    assert status == "cancelled"
