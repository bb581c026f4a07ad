"""The care-booking pages without a browser (TestClient, the real Seoul centres, a rolled-back transaction): a
centre's staff publish slots and patterns (refusals next to their field), a parent finds a slot near home for a
day and an age, books it, sees the text exactly as the outbox holds it, joins a waiting list, cancels; staff
confirm and cancel; emergency requests from the parent's page to the centre's page. Refusals: not logged in (to
the login page), not the centre's staff (403 page), a post without the CSRF token (403 page), bad input (422
inline). The browser flow is in test_portal_bookings_browser.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text

from geo.auth.accounts import create_user
from geo.domain import SEOUL_TZ
from geo.settings import Settings
from tests.booking_util import verify
from tests.dbutil import client_on

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Site:
    """A real centre offering holiday care, and the 구 and 동 it is in (a parent's "home")."""

    id: int
    code: str
    name: str
    near: str


def _soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def _csrf(html: str) -> str:
    field = _soup(html).find("input", attrs={"name": "csrf_token"})
    assert field is not None
    return str(field["value"])


def holiday_centres(conn: Connection, n: int = 2) -> list[Site]:
    """Operating centres offering 휴일보육 with the 구 and 행정동 around them (lowest codes, distinct 구)."""
    rows = conn.execute(text("""
        SELECT DISTINCT ON (f.district_code) f.id, f.code, f.name, d.name AS district, a.name AS dong
        FROM facilities f JOIN districts d ON d.code = f.district_code
        JOIN admin_dongs a ON ST_Contains(a.geom_4326, f.geom_4326)
        WHERE f.status = 'active' AND 'holiday' = ANY(f.services)
        ORDER BY f.district_code, f.code LIMIT :n"""), {"n": n}).all()
    assert len(rows) == n
    return [Site(r.id, r.code, r.name, f"{r.district} {r.dong}") for r in rows]


def login(settings: Settings, conn: Connection, email: str, *, role: str = "parent", lang: str = "en",
          facility_codes: list[str] | None = None, verified: bool = True) -> TestClient:
    """A client logged in to the portal as a new account (parents verified through the local provider)."""
    user_id = create_user(conn, email=email, password=PASSWORD, role=role, facility_codes=facility_codes or [])
    if role == "parent" and verified:
        verify(conn, user_id, name=f"부모{user_id}", phone=f"010-7{user_id % 1000:03d}-{user_id % 10000:04d}")
    client = client_on(settings, conn)
    client.headers["Accept-Language"] = lang
    done = client.post("/portal/login", data={"email": email, "password": PASSWORD}, follow_redirects=False)
    assert done.status_code == 303, done.text
    return client


@pytest.fixture()
def site(conn: Connection) -> Site:
    return holiday_centres(conn, 1)[0]


def _publish(staff: TestClient, code: str, day: str, **fields: str) -> tuple[int, BeautifulSoup]:
    form = staff.get(f"/portal/staff/centres/{code}/slots")
    data = {"csrf_token": _csrf(form.text), "kind": "once", "service": "holiday", "date": day, "start": "08:00",
            "end": "20:00", **{f"places_{a}": "0" for a in range(6)}, **fields}
    answer = staff.post(f"/portal/staff/centres/{code}/slots", data=data, follow_redirects=False)
    return answer.status_code, _soup(answer.text)


def _day(days: int = 3) -> str:
    return (datetime.now(UTC).astimezone(SEOUL_TZ) + timedelta(days=days)).date().isoformat()


def test_staff_publish_with_inline_refusals_and_patterns(settings: Settings, conn: Connection, site: Site) -> None:
    staff = login(settings, conn, "slots-staff@example.kr", role="centre_staff", facility_codes=[site.code])
    home = staff.get("/portal/staff")
    assert f'href="/portal/staff/centres/{site.code}/slots"' in home.text
    # No place at all: the fieldset says so; a place count that is not a number: its field says so.
    status, page = _publish(staff, site.code, _day())
    assert status == 422 and "at least one place" in page.find(id="places-error").get_text()
    assert page.find(id="form-errors")["role"] == "alert"
    status, page = _publish(staff, site.code, _day(), places_2="two")
    assert status == 422 and page.find(id="places_2")["aria-invalid"] == "true"
    assert page.find(id="places_2")["value"] == "two"  # what was typed is kept
    status, page = _publish(staff, site.code, _day(), places_2="3", end="25:99")
    assert status == 422 and "18:30" in page.find(id="end-error").get_text()
    status, page = _publish(staff, site.code, "next week", places_2="3")
    assert status == 422 and page.find(id="date")["aria-invalid"] == "true"
    # A service the centre does not offer (a forged choice) is refused at the service field.
    status, page = _publish(staff, site.code, _day(), places_2="3", service="general")
    assert status == 422 and page.find(id="service-error") is not None
    status, _page = _publish(staff, site.code, _day(), places_2="3", places_3="1")
    assert status == 303
    # The same service and time again: refused at the start time, in Korean for a Korean reader.
    staff.headers["Accept-Language"] = "ko"
    status, page = _publish(staff, site.code, _day(), places_2="1")
    assert status == 422 and "이미" in page.find(id="start-error").get_text()
    # A weekly pattern (every Sunday, 4 weeks) and a bad one (ends before it starts).
    status, page = _publish(staff, site.code, "", kind="weekly", weekday="6", valid_from=_day(1),
                            valid_until=_day(0), places_1="2")
    assert status == 422 and page.find(id="valid_until-error") is not None
    status, _page = _publish(staff, site.code, "", kind="weekly", weekday="6", valid_from=_day(1),
                             valid_until=_day(28), places_1="2")
    assert status == 303
    slots = conn.execute(text("SELECT pattern_id IS NOT NULL AS weekly, places_by_age FROM booking_slots "
                              "WHERE facility_id = :f ORDER BY starts_at"), {"f": site.id}).all()
    assert sum(1 for s in slots if s.weekly) == 4
    assert [s.places_by_age for s in slots if not s.weekly] == [{"2": 3, "3": 1}]
    listed = _soup(staff.get(f"/portal/staff/centres/{site.code}/slots").text)
    assert len(listed.select("section.card[id^=slot-]")) == 5


def test_refusals_login_other_centre_and_csrf(settings: Settings, conn: Connection) -> None:
    own, other = holiday_centres(conn, 2)
    anonymous = client_on(settings, conn)
    for path in ("/portal/bookings", "/portal/bookings/emergency", f"/portal/staff/centres/{own.code}/slots",
                 f"/portal/staff/centres/{own.code}/emergency"):
        answer = anonymous.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/portal/login?next="), path
    for path in ("/portal/bookings", f"/portal/staff/centres/{own.code}/slots"):
        answer = anonymous.post(path, data={"slot_id": "1"}, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/portal/login"), path
    staff = login(settings, conn, "refusal-staff@example.kr", role="centre_staff", facility_codes=[own.code])
    # Another centre's slot and emergency pages: a 403 page in the reader's language, nothing published.
    for path in (f"/portal/staff/centres/{other.code}/slots", f"/portal/staff/centres/{other.code}/emergency"):
        refused = staff.get(path)
        assert refused.status_code == 403 and refused.headers["content-type"].startswith("text/html"), path
    csrf = _csrf(staff.get(f"/portal/staff/centres/{own.code}/slots").text)
    forged = staff.post(f"/portal/staff/centres/{other.code}/slots", data={
        "csrf_token": csrf, "kind": "once", "service": "holiday", "date": _day(), "start": "08:00", "end": "20:00",
        "places_2": "1"})
    assert forged.status_code == 403
    # Without the session's CSRF token: refused before anything is done.
    no_token = staff.post(f"/portal/staff/centres/{own.code}/slots", data={
        "kind": "once", "service": "holiday", "date": _day(), "start": "08:00", "end": "20:00", "places_2": "1"})
    assert no_token.status_code == 403 and "expired" in no_token.text
    assert conn.execute(text("SELECT count(*) FROM booking_slots WHERE facility_id IN (:a, :b)"),
                        {"a": own.id, "b": other.id}).scalar_one() == 0
    # A parent is not a centre's staff.
    parent = login(settings, conn, "refusal-parent@example.kr")
    assert parent.get(f"/portal/staff/centres/{own.code}/slots").status_code == 403
    no_token = parent.post("/portal/bookings", data={"slot_id": "1", "child_age": "2"})
    assert no_token.status_code == 403


def test_parent_finds_books_sees_the_text_and_cancels(settings: Settings, conn: Connection, site: Site) -> None:
    staff = login(settings, conn, "book-staff@example.kr", role="centre_staff", facility_codes=[site.code])
    assert _publish(staff, site.code, _day(), places_2="1")[0] == 303
    slot_id = conn.execute(text("SELECT id FROM booking_slots WHERE facility_id = :f"), {"f": site.id}).scalar_one()
    mum = login(settings, conn, "book-mum@example.kr", lang="ko")
    # Bad input comes back at its field: an unknown place, a day that is not a date.
    unknown = mum.get("/portal/bookings", params={"near": "없는동네zzz", "on": _day(), "age": "2"})
    assert unknown.status_code == 422 and _soup(unknown.text).find(id="near")["aria-invalid"] == "true"
    bad_day = mum.get("/portal/bookings", params={"near": site.near, "on": "내일", "age": "2"})
    assert bad_day.status_code == 422 and _soup(bad_day.text).find(id="on-error") is not None
    found = mum.get("/portal/bookings", params={"near": site.near, "on": _day(), "age": "2", "radius_m": "5000"})
    assert found.status_code == 200, found.text
    card = _soup(found.text).find(id=f"slot-{slot_id}")
    assert card is not None and card.find("a", href=f"/portal/centres/{site.code}").get_text() == site.name
    assert card.select_one("dd.free").get_text(strip=True) == "1"
    # Home as a point (lat, lon) instead of a place name: the centre itself is 0 m away.
    lon, lat = conn.execute(text("SELECT ST_X(geom_4326), ST_Y(geom_4326) FROM facilities WHERE id = :f"),
                            {"f": site.id}).one()
    by_point = _soup(mum.get("/portal/bookings", params={"near": f"{lat:.6f}, {lon:.6f}", "on": _day(),
                                                         "age": "2"}).text).find(id=f"slot-{slot_id}")
    assert by_point is not None and by_point.find("dd", string="0m") is not None
    # Age 3 has no place in this slot: it is not listed.
    other_age = mum.get("/portal/bookings", params={"near": site.near, "on": _day(), "age": "3", "radius_m": "5000"})
    assert _soup(other_age.text).find(id=f"slot-{slot_id}") is None
    form = card.find("form")
    data = {i["name"]: i.get("value", "") for i in form.find_all("input")}
    booked = mum.post("/portal/bookings", data=data, follow_redirects=False)
    assert booked.status_code == 303 and booked.headers["location"].startswith("/portal/bookings?done=booked")
    booking_id = conn.execute(text("SELECT id FROM bookings WHERE slot_id = :s"), {"s": slot_id}).scalar_one()
    mine = _soup(mum.get(booked.headers["location"]).text)
    section = mine.find(id=f"booking-{booking_id}")
    assert section.select_one("dd.status").get_text(strip=True) == "예약됨"
    body, lang, recipient = conn.execute(text("SELECT body, lang, recipient FROM notification_outbox "
                                              "WHERE idempotency_key = :k"), {"k": f"booking:{booking_id}:booked"}).one()
    assert lang == "ko" and recipient.startswith("010-7")  # the phone of the 본인인증, in the page's language
    assert [q.get_text() for q in section.select("q.sms")] == [body]
    # The slot is full now: a second parent (English) joins the waiting list; booking without it is refused.
    dad = login(settings, conn, "book-dad@example.kr")
    full = _soup(dad.get("/portal/bookings", params={"near": site.near, "on": _day(), "age": "2",
                                                     "radius_m": "5000"}).text).find(id=f"slot-{slot_id}")
    assert full.select_one("dd.free").get_text(strip=True).startswith("0")
    data = {i["name"]: i.get("value", "") for i in full.find("form").find_all("input")}
    assert data["join_waitlist"] == "1"
    refused = dad.post("/portal/bookings", data={**data, "join_waitlist": ""})
    assert refused.status_code == 409 and "waiting list" in _soup(refused.text).find(id="form-errors").get_text()
    waited = dad.post("/portal/bookings", data=data, follow_redirects=False)
    assert waited.headers["location"].startswith("/portal/bookings?done=waiting")
    waiting_id = conn.execute(text("SELECT id FROM bookings WHERE slot_id = :s AND status = 'waiting'"),
                              {"s": slot_id}).scalar_one()
    waiting = _soup(dad.get("/portal/bookings").text).find(id=f"booking-{waiting_id}")
    assert waiting.select_one("dd.status").get_text(strip=True) == "waiting · number 1 on the waiting list"
    assert "number 1 on the waiting list" in waiting.select_one("q.sms").get_text()
    # The dad may not cancel the mum's booking; the mum may.
    csrf = _csrf(dad.get("/portal/bookings").text)
    not_his = dad.post(f"/portal/bookings/{booking_id}/cancel", data={"csrf_token": csrf})
    assert not_his.status_code == 409 and "may not" in not_his.text
    csrf = _csrf(mum.get("/portal/bookings").text)
    cancelled = mum.post(f"/portal/bookings/{booking_id}/cancel", data={"csrf_token": csrf}, follow_redirects=False)
    assert cancelled.status_code == 303
    after = _soup(mum.get("/portal/bookings").text).find(id=f"booking-{booking_id}")
    assert after.select_one("dd.status").get_text(strip=True) == "취소됨"
    assert len(after.select("q.sms")) == 2 and after.find("form") is None
    # The waiting dad moved up; the centre confirms him from its page.
    assert conn.execute(text("SELECT status FROM bookings WHERE id = :b"), {"b": waiting_id}).scalar_one() == "booked"
    listed = staff.get(f"/portal/staff/centres/{site.code}/slots")
    confirm = f"/portal/staff/centres/{site.code}/bookings/{waiting_id}/confirm"
    assert f'action="{confirm}"' in listed.text
    done = staff.post(confirm, data={"csrf_token": _csrf(listed.text)}, follow_redirects=False)
    assert done.status_code == 303
    again = staff.post(confirm, data={"csrf_token": _csrf(listed.text)})
    assert again.status_code == 409 and "already confirmed" in again.text
    texts = _soup(dad.get("/portal/bookings").text).find(id=f"booking-{waiting_id}").select("q.sms")
    assert [q.get_text() for q in texts][-1].startswith(f"[dolbom] {site.name} confirmed")


def test_emergency_request_from_parent_page_to_centre_page(settings: Settings, conn: Connection,
                                                           site: Site) -> None:
    staff = login(settings, conn, "em-staff@example.kr", role="centre_staff", facility_codes=[site.code])
    mum = login(settings, conn, "em-mum@example.kr")
    # Nobody has a slot covering now: the list is empty and the request form is offered.
    nearest = mum.get("/portal/bookings/emergency", params={"near": site.near, "age": "1"})
    assert nearest.status_code == 200 and 'action="/portal/bookings/emergency"' in nearest.text
    form = _soup(nearest.text).find("form", action="/portal/bookings/emergency", method="post")
    data = {i["name"]: i.get("value", "") for i in form.find_all("input")}
    bad = mum.post("/portal/bookings/emergency", data={**data, "hours": "100"})
    assert bad.status_code == 422 and _soup(bad.text).find(id="hours-error") is not None
    sent = mum.post("/portal/bookings/emergency", data=data, follow_redirects=False)
    assert sent.status_code == 303
    request_id = conn.execute(text("SELECT r.id FROM emergency_requests r JOIN users u ON u.id = r.parent_user_id "
                                   "WHERE u.email = 'em-mum@example.kr'")).scalar_one()
    mine = _soup(mum.get(sent.headers["location"]).text).find(id=f"request-{request_id}")
    assert mine.select_one("dd.status").get_text(strip=True).startswith("open")
    page = staff.get(f"/portal/staff/centres/{site.code}/emergency")
    assert _soup(page.text).find(id=f"request-{request_id}") is not None
    accept = f"/portal/staff/centres/{site.code}/emergency/{request_id}/accept"
    taken = staff.post(accept, data={"csrf_token": _csrf(page.text)}, follow_redirects=False)
    assert taken.status_code == 303
    twice = staff.post(accept, data={"csrf_token": _csrf(page.text)})
    assert twice.status_code == 409 and "already" in twice.text
    mine = _soup(mum.get("/portal/bookings/emergency").text).find(id=f"request-{request_id}")
    assert site.name in mine.select_one("dd.status").get_text()
    body = conn.execute(text("SELECT body FROM notification_outbox WHERE idempotency_key = :k"),
                        {"k": f"emergency:{request_id}:accepted"}).scalar_one()
    assert [q.get_text() for q in mine.select("q.sms")] == [body]
