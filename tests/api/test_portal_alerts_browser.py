"""Vacancy alerts in a real browser (Debian chromium driven by Playwright) against uvicorn on a database of its
own, every request to a host other than 127.0.0.1 aborted.

In Korean (a 375 px phone) and in English (a desktop), by keyboard only: a verified parent logs in, opens "Alerts"
from the menu and creates an alert near a centre (opt-in box ticked with Space, quiet hours off); the centre's staff
report two free places for age 1 through the API; the notification worker delivers the message to the file sink
with the alert text and its unsubscribe link; the parent's alerts page shows it sent; "My data" downloads a JSON
file holding the alert. In Korean the parent then follows the link (no login): the page asks first, and the alert
stops only after the button. axe-core finds no serious or critical violation on any page.

Screenshots go to ``test-artifacts/portal-alerts/`` (gitignored); docs/img/portal/ holds copies for the
walkthrough (docs/roles/parent.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine, text

from geo.auth.accounts import create_user
from geo.booking.notify import FileSink, run_worker
from geo.settings import PROJECT_ROOT, Settings
from tests import browserutil
from tests.booking_util import ORIGIN_LAT, ORIGIN_LON, make_centre, verify
from tests.browserutil import local_context, tab_to, type_into
from tests.serverutil import uvicorn_server

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "portal-alerts"
PASSWORD = "correct horse battery staple"
PUBLIC_URL = "https://dolbom.example"
# Per language: the centre (name, latitude: 11 km apart, so that one language's report does not reach the other's
# alert), what its pages say, and the channel the parent picks.
RUNS: dict[str, dict[str, Any]] = {
    "ko": {"code": "ALERTB-KO", "name": "알림꽃어린이집", "lat": ORIGIN_LAT, "channel": "sms",
           "h1": "알림", "sent": "보냄", "text": "만 1세 빈자리가 2석", "stopped": "알림을 껐습니다."},
    "en": {"code": "ALERTB-EN", "name": "Alert Meadow Daycare", "lat": ORIGIN_LAT + 0.1, "channel": "email",
           "h1": "Alerts", "sent": "sent", "text": "now has 2 free place(s) for age 1", "stopped": ""},
}


@pytest.fixture(scope="module")
def alerts_db(make_database: Any) -> Engine:
    """A database of its own with two centres (one 만 1세 class each) and their staff."""
    engine: Engine = make_database("alerts_browser")
    with engine.begin() as conn:
        for lang, run in RUNS.items():
            make_centre(conn, run["code"], lat=run["lat"], lon=ORIGIN_LON, name=run["name"])
            conn.execute(text("UPDATE facilities SET capacity = 20, classes_by_age = '{\"1\": 1, \"2\": 1}', "
                              "enrolled_by_age = '{}', free_by_age = '{}' WHERE code = :c"), {"c": run["code"]})
            create_user(conn, email=f"staff-{lang}@example.kr", password=PASSWORD, role="centre_staff",
                        facility_codes=[run["code"]])
            uid = create_user(conn, email=f"parent-{lang}@example.kr", password=PASSWORD, role="parent")
            verify(conn, uid, name=f"부모{lang}", phone="010-3456-7890" if lang == "ko" else "010-4567-8901")
    return engine


@pytest.fixture(scope="module")
def server_url(alerts_db: Engine) -> Iterator[str]:
    url = alerts_db.url.render_as_string(hide_password=False)
    with uvicorn_server(url, extra_env={"DOLBOM_ENV": "development", "DOLBOM_PUBLIC_URL": PUBLIC_URL}) as base:
        yield base


def check(page: Page, name: str) -> None:
    browserutil.check(page, name, ARTIFACTS)


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_alert_by_keyboard_fires_on_a_report(lang: str, browser: Browser, server_url: str, alerts_db: Engine,
                                             tmp_path: Path) -> None:
    run = RUNS[lang]
    with local_context(browser, lang, accept_downloads=True) as (context, _blocked):
        page = context.new_page()
        page.goto(server_url + "/portal/login")
        expect(page.locator("html")).to_have_attribute("lang", lang)
        type_into(page, "#email", f"parent-{lang}@example.kr")
        type_into(page, "#password", PASSWORD)
        page.keyboard.press("Enter")
        expect(page.locator("h1")).not_to_have_text(re.compile("로그인|Log in"))
        tab_to(page, 'a[href="/portal/alerts"]')
        page.keyboard.press("Enter")
        expect(page.locator("h1")).to_have_text(run["h1"])
        check(page, f"{lang}-30-alerts-empty")

        # The form, by keyboard: the place, default distance (1 km) and age (1), the channel, no quiet hours, the
        # opt-in box. First without the box: refused at it.
        type_into(page, "#place", run["name"])
        if run["channel"] == "email":
            tab_to(page, 'input[name="channel"]:checked')
            page.keyboard.press("ArrowDown")
            expect(page.locator('input[name="channel"][value="email"]')).to_be_checked()
        tab_to(page, "#quiet")
        page.keyboard.press("End")
        expect(page.locator("#quiet")).to_have_value("")
        tab_to(page, 'form[action="/portal/alerts"] button[type="submit"]')
        page.keyboard.press("Enter")
        expect(page.locator("#opt_in-error")).to_be_visible()
        check(page, f"{lang}-31-alerts-opt-in-refused")
        tab_to(page, 'input[name="opt_in"]')
        page.keyboard.press("Space")
        expect(page.locator('input[name="opt_in"]')).to_be_checked()
        tab_to(page, 'form[action="/portal/alerts"] button[type="submit"]')
        page.keyboard.press("Enter")
        expect(page.locator(".notice[role=status]")).to_be_visible()
        expect(page.locator("section.alert")).to_have_count(1)
        check(page, f"{lang}-32-alert-created")

        # The centre's staff report two free places for age 1 (0 before) through the API.
        with httpx.Client(base_url=server_url, timeout=60) as api:
            token = api.post("/auth/token", json={"email": f"staff-{lang}@example.kr", "password": PASSWORD})
            headers = {"Authorization": "Bearer " + token.json()["access_token"]}
            reported = api.post(f"/vacancy/centres/{run['code']}/reports", headers=headers,
                                json={"enrolled_by_age": {"1": 1}, "free_by_age": {"1": 2}})
            assert reported.status_code == 201, reported.text

        # The worker delivers it: one line in the file sink, with the text and the unsubscribe link.
        sink = tmp_path / "sink.jsonl"
        settings = Settings(DATABASE_URL=alerts_db.url.render_as_string(hide_password=False))
        run_worker(alerts_db, settings, provider=FileSink(sink), once=True)
        lines = [json.loads(line) for line in sink.read_text().splitlines()]
        mine = [m for m in lines if run["name"] in m["body"]]
        assert len(mine) == 1, lines
        (message,) = mine
        assert message["to"] == ("010-3456-7890" if lang == "ko" else f"parent-{lang}@example.kr")
        assert run["text"] in message["body"], message["body"]
        link = re.search(re.escape(PUBLIC_URL) + r"(/portal/alerts/unsubscribe/[\w-]+)", message["body"])
        assert link is not None, message["body"]

        # The alerts page shows the message sent (after a reload by keyboard: the menu link).
        tab_to(page, 'a[href="/portal/alerts"]')
        page.keyboard.press("Enter")
        card = page.locator("section.alert")
        expect(card.locator(".badge", has_text=re.compile(f"^{run['sent']}$"))).to_be_visible()
        expect(card.locator(".body")).to_contain_text(run["name"])
        check(page, f"{lang}-33-alert-sent")

        # My data: the JSON download holds the alert.
        tab_to(page, 'a[href="/portal/account/data"]')
        page.keyboard.press("Enter")
        expect(page.locator("#data-alerts")).to_contain_text(run["name"])
        check(page, f"{lang}-34-my-data")
        tab_to(page, 'a[href="/portal/account/data.json"]')
        with page.expect_download() as download:
            page.keyboard.press("Enter")
        data = json.loads(Path(download.value.path()).read_text())
        (alert,) = data["sections"]["alerts"]
        assert alert["place_label"].startswith(run["name"]) and alert["channel"] == run["channel"]
        assert any(n["template"] == "alert_vacancy" and n["status"] == "sent" for n in data["sections"]["notifications"])

        if lang == "ko":
            # The link, in a context without the login: it asks first; the alert stops after the button.
            with local_context(browser, lang) as (anonymous, _):
                other = anonymous.new_page()
                other.goto(server_url + link.group(1))
                expect(other.locator("form button")).to_be_visible()
                check(other, f"{lang}-35-unsubscribe-confirm")
                with alerts_db.connect() as conn:
                    assert conn.execute(text("SELECT active FROM saved_searches WHERE place_label LIKE :n"),
                                        {"n": run["name"] + "%"}).scalar_one()
                tab_to(other, "form button")
                other.keyboard.press("Enter")
                expect(other.locator(".notice[role=status]")).to_contain_text(run["stopped"])
                check(other, f"{lang}-36-unsubscribed")
            with alerts_db.connect() as conn:
                assert not conn.execute(text("SELECT active FROM saved_searches WHERE place_label LIKE :n"),
                                        {"n": run["name"] + "%"}).scalar_one()
