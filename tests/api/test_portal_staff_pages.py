"""The centre staff's waitlist pages without a browser (TestClient, the real Seoul centres, a rolled-back
transaction): the queue with its claims, a claim checked (a rejection moves the ranks, and the page says how), a
place offered (who gets it, who is skipped and why), refusals for anyone but the centre's staff and for a post
without the CSRF token; and the parents' list that refreshes itself (204 while nothing moved, the new list and a
sentence for the live region once a rank moved). The browser flow is in test_portal_staff_browser.py."""

from __future__ import annotations

from datetime import date
from typing import Any

from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text

from geo.admission import waitlist as wl
from geo.admission.rules import childcare_year
from geo.auth.accounts import create_user
from geo.settings import Settings
from tests.accounts_util import pick_centres
from tests.booking_util import verify
from tests.dbutil import client_on

PASSWORD = "correct horse battery staple"


def _soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def _csrf(html: str) -> str:
    field = _soup(html).find("input", attrs={"name": "csrf_token"})
    assert field is not None
    return str(field["value"])


def _seed(conn: Connection, code: str) -> dict[str, dict[str, Any]]:
    """Three parents at ``code``'s 0세반, in this order: 가 (다자녀 claimed), 나 (맞벌이 claimed), 다 (no claim)."""
    born = date(childcare_year(date.today()) - 1, 5, 1)
    out = {}
    for n, (name, claims) in enumerate((("가아이", ["multi_child"]), ("나아이", ["dual_income"]), ("다아이", []))):
        uid = create_user(conn, email=f"queue-parent{n}@example.kr", password=PASSWORD, role="parent")
        verify(conn, uid, name=f"부모{n}")
        child = wl.register_child(conn, parent_user_id=uid, name=name, birth_date=born, claims=claims)
        entry = wl.apply(conn, parent_user_id=uid, child_id=child["id"], facility_code=code)
        out[name] = {"user": uid, "child": child["public_id"], "entry": entry["entry"],
                     "email": f"queue-parent{n}@example.kr"}
    return out


def _login(client: TestClient, email: str) -> None:
    done = client.post("/portal/login", data={"email": email, "password": PASSWORD}, follow_redirects=False)
    assert done.status_code == 303


def _ranks(html: str) -> list[str]:
    """The children's names in queue order."""
    return [li.select_one("h3").get_text(" ", strip=True).split(" ")[1] for li in _soup(html).select("ol.queue > li")]


def test_queue_check_and_offer_pages(settings: Settings, conn: Connection) -> None:
    own, other = pick_centres(conn)
    kids = _seed(conn, own.code)
    conn.execute(text("UPDATE facilities SET free_by_age = '{\"0\": 1}' WHERE id = :f"), {"f": own.id})
    create_user(conn, email="queue-staff@example.kr", password=PASSWORD, role="centre_staff",
                facility_codes=[own.code])
    create_user(conn, email="other-staff@example.kr", password=PASSWORD, role="centre_staff",
                facility_codes=[other.code])
    staff = client_on(settings, conn)
    staff.headers["Accept-Language"] = "en"
    _login(staff, "queue-staff@example.kr")
    # The staff home and the vacancy page link to the queue.
    queue_url = f"/portal/staff/centres/{own.code}/queue"
    assert queue_url in staff.get("/portal/staff").text
    assert queue_url in staff.get(f"/portal/staff/centres/{own.code}/vacancy").text
    page = staff.get(queue_url)
    assert page.status_code == 200
    soup = _soup(page.text)
    assert _ranks(page.text) == ["가아이", "나아이", "다아이"]
    # Both claims wait for a check: their cards stand out, with the buttons to verify or reject.
    assert len(soup.select("ol.queue > li.pending")) == 2
    assert "2 claims wait for an evidence check." in soup.get_text()
    assert soup.select_one(f'form[data-child="{kids["가아이"]["child"]}"] button[value="rejected"]') is not None
    csrf = _csrf(page.text)

    # Another centre's staff are refused the page and the posts (a page, not a problem body).
    other_staff = client_on(settings, conn)
    other_staff.headers["Accept-Language"] = "en"
    _login(other_staff, "other-staff@example.kr")
    refused = other_staff.get(queue_url)
    assert refused.status_code == 403 and refused.headers["content-type"].startswith("text/html")
    other_csrf = _csrf(other_staff.get("/portal/staff").text)
    for path, data in ((f"/portal/staff/centres/{own.code}/claims",
                        {"child": kids["가아이"]["child"], "category": "multi_child", "evidence": "rejected",
                         "age_class": "0"}),
                       (f"/portal/staff/centres/{own.code}/offers", {"age_class": "0"})):
        assert other_staff.post(path, data={**data, "csrf_token": other_csrf}).status_code == 403
    # A parent is refused too.
    parent = client_on(settings, conn)
    _login(parent, kids["다아이"]["email"])
    assert parent.get(queue_url).status_code == 403

    # Without the CSRF token the post is refused, and nothing changes.
    forged = staff.post(f"/portal/staff/centres/{own.code}/claims",
                        data={"child": kids["가아이"]["child"], "category": "multi_child", "evidence": "rejected",
                              "age_class": "0"})
    assert forged.status_code == 403 and "This form has expired" in forged.text
    assert conn.execute(text("SELECT evidence FROM claims c JOIN children ch ON ch.id = c.child_id "
                             "WHERE ch.public_id = :c"), {"c": kids["가아이"]["child"]}).scalar_one() == "claimed"

    # Rejecting 가's 다자녀 claim: 가 drops below 나 (who keeps 맞벌이); the page says which ranks moved.
    rejected = staff.post(f"/portal/staff/centres/{own.code}/claims",
                          data={"csrf_token": csrf, "child": kids["가아이"]["child"], "category": "multi_child",
                                "evidence": "rejected", "age_class": "0"}, follow_redirects=False)
    assert rejected.status_code == 303
    after = staff.get(rejected.headers["location"])
    assert _ranks(after.text) == ["나아이", "가아이", "다아이"]
    said = _soup(after.text).select_one(".notice[role=status]").get_text(" ", strip=True)
    assert "is now rejected" in said and "나아이: rank 2 → 1" in said and "가아이: rank 1 → 2" in said
    # The same rejection again is refused inline, in the reader's language (not a crash, not a problem body).
    again = staff.post(f"/portal/staff/centres/{own.code}/claims",
                       data={"csrf_token": csrf, "child": kids["가아이"]["child"], "category": "multi_child",
                             "evidence": "rejected", "age_class": "0"})
    assert again.status_code == 409 and "cannot become" in _soup(again.text).select_one("#form-errors").get_text()

    # The offer: 나's 맞벌이 is still unchecked, so 나 is skipped (and why), and 가 gets the place.
    offered = staff.post(f"/portal/staff/centres/{own.code}/offers", data={"csrf_token": csrf, "age_class": "0"},
                         follow_redirects=False)
    assert offered.status_code == 303
    shown = staff.get(offered.headers["location"])
    said = _soup(shown.text).select_one(".notice[role=status]").get_text(" ", strip=True)
    assert "The place is offered to 가아이 until" in said
    assert "나아이 skipped: a priority claim that counts is not checked yet." in said
    offers = _soup(shown.text).select("ul.offers li")
    assert len(offers) == 1 and "가아이" in offers[0].get_text() and "open" in offers[0].get_text()
    # No second free place: refused inline.
    none_left = staff.post(f"/portal/staff/centres/{own.code}/offers", data={"csrf_token": csrf, "age_class": "0"})
    assert none_left.status_code == 409 and "No free place in this class" in none_left.text
    # In Korean the same page speaks Korean.
    korean = staff.get(queue_url + "?age=0", headers={"Accept-Language": "ko"})
    assert "만 0세반" in korean.text and "증빙 확인 대기" in korean.text


def test_my_applications_refresh_only_when_ranks_move(settings: Settings, conn: Connection) -> None:
    own, _other = pick_centres(conn)
    kids = _seed(conn, own.code)
    parent = client_on(settings, conn)
    parent.headers["Accept-Language"] = "en"
    _login(parent, kids["다아이"]["email"])
    page = _soup(parent.get("/portal/applications").text)
    news = page.select_one("#rank-news")
    assert news is not None and news["aria-live"] == "polite" and news["role"] == "status"
    block = page.select_one("#entries")
    assert block["hx-trigger"] == "poll"  # portal.js paces it (test_portal_staff_browser.py)
    assert page.select_one(".rank").get_text() == "Rank 3 of 3"
    # Nothing moved: 204, no swap, nothing announced.
    poll = block["hx-get"]
    assert parent.get(poll).status_code == 204
    # Another parent withdraws: the list comes back with the new rank and a sentence for the live region.
    wl.withdraw(conn, parent_user_id=kids["가아이"]["user"], entry_public_id=kids["가아이"]["entry"])
    moved = parent.get(poll)
    assert moved.status_code == 200
    part = _soup(moved.text)
    assert part.select_one("#entries .rank").get_text() == "Rank 2 of 2"
    oob = part.select_one("[hx-swap-oob]")
    assert oob["hx-swap-oob"] == "innerHTML:#rank-news" and "Rank 2 of 2" in oob.get_text()
    # The reasons stay until the parent opens the page again (the refresh does not remember the look).
    assert part.select_one("ul.changes") is not None
    assert parent.get(poll).status_code == 200  # still the old version: the page had not swapped yet
    assert parent.get(part.select_one("#entries")["hx-get"]).status_code == 204
    again = _soup(parent.get("/portal/applications").text)
    assert again.select_one("ul.changes") is not None  # the full page shows the reasons, then remembers
    assert _soup(parent.get("/portal/applications").text).select_one("ul.changes") is None
