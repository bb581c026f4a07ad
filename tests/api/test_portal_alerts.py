"""The alert and "my data" pages without a browser (TestClient, the real Seoul centres, a rolled-back
transaction): a parent creates an alert (refused without the opt-in box or a place found), a centre's staff
report a free place on their page, the alert's message is in the outbox and on the alerts page; the message's
unsubscribe link shows a confirmation on GET and stops the alert only on POST; pause, resume and delete; "my data"
shows and downloads the alert; the account is deleted after its password."""

from __future__ import annotations

import io
import json
import re
import zipfile
from typing import Any

from bs4 import BeautifulSoup
from sqlalchemy import Connection, text

from geo.auth.accounts import create_user
from geo.settings import Settings
from tests.booking_util import verify
from tests.dbutil import client_on

PASSWORD = "correct horse battery staple"


def _soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def _csrf(html: str) -> str:
    field = _soup(html).find("input", attrs={"name": "csrf_token"})
    assert field is not None
    return str(field["value"])


def _centre(conn: Connection) -> Any:
    """An operating centre with a 1세 class and no free place recorded (the report raises it from 0)."""
    row = conn.execute(text("""
        SELECT code, name, classes_by_age FROM facilities WHERE status = 'active' AND capacity >= 20
          AND (classes_by_age->>'1')::int >= 1 AND district_code IS NOT NULL ORDER BY code LIMIT 1""")).one()
    conn.execute(text("UPDATE facilities SET enrolled_by_age = '{}', free_by_age = '{}' WHERE code = :c"),
                 {"c": row.code})
    return row


def _login(settings: Settings, conn: Connection, email: str, lang: str = "en") -> tuple[Any, str]:
    client = client_on(settings, conn)
    client.headers["Accept-Language"] = lang
    logged = client.post("/portal/login", data={"email": email, "password": PASSWORD}, follow_redirects=False)
    assert logged.status_code == 303
    return client, client.cookies["dolbom_csrf"]


def _parent(conn: Connection, email: str) -> int:
    uid = create_user(conn, email=email, password=PASSWORD, role="parent")
    verify(conn, uid, name="김엄마", phone="010-2345-6789")
    return uid


def test_alert_fires_from_the_staff_page_and_unsubscribes(settings: Settings, conn: Connection) -> None:
    centre = _centre(conn)
    uid = _parent(conn, "alert-page@example.kr")
    create_user(conn, email="alert-staff@example.kr", password=PASSWORD, role="centre_staff",
                facility_codes=[centre.code])
    client, csrf = _login(settings, conn, "alert-page@example.kr")
    form = client.get("/portal/alerts")
    assert form.status_code == 200 and _soup(form.text).find(id="place") is not None
    new = {"csrf_token": csrf, "place": centre.name, "radius_m": "500", "child_age": "1", "channel": "sms",
           "quiet": ""}
    # Without the opt-in box: refused at the box.
    no_opt_in = client.post("/portal/alerts", data=new)
    assert no_opt_in.status_code == 422
    assert "Tick the box" in _soup(no_opt_in.text).find(id="opt_in-error").get_text()
    assert _soup(no_opt_in.text).find(id="place")["value"] == centre.name
    nowhere = client.post("/portal/alerts", data={**new, "place": "qqqxxyz", "opt_in": "1"})
    assert nowhere.status_code == 422 and _soup(nowhere.text).find(id="place-error") is not None
    created = client.post("/portal/alerts", data={**new, "opt_in": "1"}, follow_redirects=False)
    assert created.status_code == 303, created.text
    row = conn.execute(text("SELECT id, active, opted_in_at, lang, radius_m FROM saved_searches "
                            "WHERE owner_user_id = :u"), {"u": uid}).one()
    assert row.active and row.opted_in_at is not None and row.lang == "en" and row.radius_m == 500

    # The centre's staff report one 1세 child enrolled and two free places, on their page.
    staff, staff_csrf = _login(settings, conn, "alert-staff@example.kr", lang="ko")
    saved = staff.post(f"/portal/staff/centres/{centre.code}/vacancy",
                       data={"csrf_token": staff_csrf, "enrolled_1": "1", "free_1": "2"}, follow_redirects=False)
    assert saved.status_code == 303
    (message,) = conn.execute(text("SELECT recipient, body, status FROM notification_outbox "
                                   "WHERE idempotency_key LIKE :k"), {"k": f"alert:{row.id}:%"}).all()
    assert message.recipient == "010-2345-6789" and message.status == "pending"
    assert f"{centre.name}, 0.0 km from" in message.body and "2 free place(s) for age 1" in message.body
    link = re.search(r"http://localhost:8000(/portal/alerts/unsubscribe/[\w-]+)", message.body)
    assert link is not None
    page = _soup(client.get("/portal/alerts").text)
    card = page.find(id=f"alert-{row.id}")
    assert "waiting to be sent" in card.get_text() and centre.name in card.find(class_="body").get_text()

    # The link, without a login: GET only asks; POST stops the alert.
    anonymous = client_on(settings, conn)
    ask = anonymous.get(link.group(1))
    assert ask.status_code == 200 and 'method="post"' in ask.text
    assert conn.execute(text("SELECT active FROM saved_searches WHERE id = :s"), {"s": row.id}).scalar_one()
    stopped = anonymous.post(link.group(1))
    assert stopped.status_code == 200 and "stopped" in stopped.text
    assert not conn.execute(text("SELECT active FROM saved_searches WHERE id = :s"), {"s": row.id}).scalar_one()
    assert anonymous.get("/portal/alerts/unsubscribe/" + "x" * 32).status_code == 404
    # The next report sends nothing.
    staff.post(f"/portal/staff/centres/{centre.code}/vacancy",
               data={"csrf_token": staff_csrf, "enrolled_1": "1", "free_1": "0"})
    staff.post(f"/portal/staff/centres/{centre.code}/vacancy",
               data={"csrf_token": staff_csrf, "enrolled_1": "1", "free_1": "3"})
    assert conn.execute(text("SELECT count(*) FROM notification_outbox WHERE idempotency_key LIKE :k"),
                        {"k": f"alert:{row.id}:%"}).scalar_one() == 1
    assert "Stopped by the link" in client.get("/portal/alerts").text


def test_pause_resume_delete_and_sms_needs_a_phone(settings: Settings, conn: Connection) -> None:
    centre = _centre(conn)
    uid = create_user(conn, email="alert-nophone@example.kr", password=PASSWORD, role="parent")
    client, csrf = _login(settings, conn, "alert-nophone@example.kr", lang="ko")
    new = {"csrf_token": csrf, "place": centre.name, "radius_m": "1000", "child_age": "2", "channel": "sms",
           "quiet": "22-07", "opt_in": "1"}
    no_phone = client.post("/portal/alerts", data=new)
    assert no_phone.status_code == 422 and "본인인증" in _soup(no_phone.text).find(id="channel-error").get_text()
    assert client.post("/portal/alerts", data={**new, "channel": "email"}, follow_redirects=False).status_code == 303
    sid = conn.execute(text("SELECT id FROM saved_searches WHERE owner_user_id = :u"), {"u": uid}).scalar_one()
    assert "22:00" in client.get("/portal/alerts").text
    paused = client.post(f"/portal/alerts/{sid}/pause", data={"csrf_token": csrf}, follow_redirects=False)
    assert paused.status_code == 303
    assert "일시 중지" in client.get(paused.headers["location"]).text
    assert not conn.execute(text("SELECT active FROM saved_searches WHERE id = :s"), {"s": sid}).scalar_one()
    client.post(f"/portal/alerts/{sid}/resume", data={"csrf_token": csrf})
    assert conn.execute(text("SELECT active FROM saved_searches WHERE id = :s"), {"s": sid}).scalar_one()
    # Another parent cannot touch it; without the CSRF token nothing changes.
    _parent(conn, "alert-stranger@example.kr")
    stranger, stranger_csrf = _login(settings, conn, "alert-stranger@example.kr")
    assert stranger.post(f"/portal/alerts/{sid}/delete", data={"csrf_token": stranger_csrf}).status_code == 404
    assert client.post(f"/portal/alerts/{sid}/delete", data={}).status_code == 403
    assert client.post(f"/portal/alerts/{sid}/delete", data={"csrf_token": csrf},
                       follow_redirects=False).status_code == 303
    assert conn.execute(text("SELECT count(*) FROM saved_searches WHERE id = :s"), {"s": sid}).scalar_one() == 0
    assert client.get("/portal/alerts", follow_redirects=False).status_code == 200
    assert client_on(settings, conn).get("/portal/alerts", follow_redirects=False).status_code == 303


def test_my_data_shows_downloads_and_deletes(settings: Settings, conn: Connection) -> None:
    centre = _centre(conn)
    uid = _parent(conn, "my-data@example.kr")
    client, csrf = _login(settings, conn, "my-data@example.kr")
    client.post("/portal/alerts", data={"csrf_token": csrf, "place": centre.name, "radius_m": "1000",
                                        "child_age": "1", "channel": "email", "quiet": "", "opt_in": "1"})
    page = client.get("/portal/account/data")
    assert page.status_code == 200
    soup = _soup(page.text)
    assert centre.name in soup.find(id="data-alerts").get_text()
    assert "010-2345-6789" in soup.find(id="data-identity").get_text()
    assert "never changed" in soup.get_text()  # what happens to the waitlist log
    data = client.get("/portal/account/data.json")
    assert data.headers["content-type"] == "application/json" and "attachment" in data.headers["content-disposition"]
    body = json.loads(data.content)
    assert body["sections"]["account"][0]["email"] == "my-data@example.kr"
    assert body["sections"]["alerts"][0]["channel"] == "email"
    assert any(a["action"] == "alert.create" for a in body["sections"]["audit"])
    archive = zipfile.ZipFile(io.BytesIO(client.get("/portal/account/data.zip").content))
    assert "alerts.csv" in archive.namelist() and "children.csv" in archive.namelist()
    assert centre.name in archive.read("alerts.csv").decode("utf-8-sig")
    # Deleting: a wrong password is refused at its field; the right one deletes (alerts go with it).
    wrong = client.post("/portal/account/delete", data={"csrf_token": csrf, "password": "not my password"})
    assert wrong.status_code == 422 and _soup(wrong.text).find(id="password-error") is not None
    gone = client.post("/portal/account/delete", data={"csrf_token": csrf, "password": PASSWORD})
    assert gone.status_code == 200 and "deleted" in gone.text
    assert conn.execute(text("SELECT count(*) FROM saved_searches WHERE owner_user_id = :u"),
                        {"u": uid}).scalar_one() == 0
    assert conn.execute(text("SELECT disabled FROM users WHERE id = :u"), {"u": uid}).scalar_one()
    assert client.get("/portal/account/data", follow_redirects=False).status_code == 303
