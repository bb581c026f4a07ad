"""The officer's and the city admin's pages without a browser (TestClient, the real Seoul centres, a rolled-back
transaction): a district officer sees their own 구 only (the stale centre first, the queue against free places by
행정동), designates and ends a designation through the forms (search sees it), is refused another 구's centres
and the admin pages; a parent gets 403; a form post without the session's CSRF token is refused; the city admin
picks a 구, creates a centre-staff account, disables and enables it, finds the actions in the audit trail. The
browser flows are in test_portal_officer_browser.py."""

from __future__ import annotations

from datetime import date

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text

from geo.admission import waitlist as wl
from geo.admission.rules import childcare_year
from geo.analysis import district as dash
from geo.auth.accounts import create_user
from geo.auth.directory import AuditFilter, audit_entries, find_users
from geo.designations.register import today_in_seoul
from geo.settings import Settings
from geo.vacancy.reports import VacancyReportIn, submit_report
from tests.booking_util import verify
from tests.dbutil import client_on

PASSWORD = "correct horse battery staple"
MAPO, GANGNAM = "11440", "11680"


def _soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def _csrf(html: str) -> str:
    field = _soup(html).find("input", attrs={"name": "csrf_token"})
    assert field is not None
    return str(field["value"])


def _login(settings: Settings, conn: Connection, email: str, lang: str = "en") -> TestClient:
    client = client_on(settings, conn)
    client.headers["Accept-Language"] = lang
    done = client.post("/portal/login", data={"email": email, "password": PASSWORD}, follow_redirects=False)
    assert done.status_code == 303, done.text
    return client


def _centres(conn: Connection, district: str, n: int) -> list[tuple[str, str, int]]:
    rows = conn.execute(text("""SELECT code, name, id FROM facilities WHERE district_code = :d AND status = 'active'
                                  AND (classes_by_age->>'1')::int >= 1 ORDER BY code LIMIT :n"""),
                        {"d": district, "n": n}).all()
    assert len(rows) == n
    return [(r.code, r.name, r.id) for r in rows]


def _make_stale(conn: Connection, code: str, days: int) -> None:
    """A report from the centre, moved ``days`` into the past."""
    submit_report(conn, facility_code=code, report=VacancyReportIn(enrolled_by_age={}, free_by_age={}),
                  author_user_id=None)
    conn.execute(text("""UPDATE vacancy_reports SET reported_at = now() - make_interval(days => :d)
                         WHERE facility_id = (SELECT id FROM facilities WHERE code = :c)"""), {"d": days, "c": code})


def test_an_officer_sees_their_district(settings: Settings, conn: Connection) -> None:
    create_user(conn, email="officer@example.kr", password=PASSWORD, role="district_officer", district_code=MAPO)
    (old, old_name, _), (older, older_name, _), (fresh, _, fresh_id) = _centres(conn, MAPO, 3)
    _make_stale(conn, old, 40)
    _make_stale(conn, older, 400)
    submit_report(conn, facility_code=fresh, report=VacancyReportIn(enrolled_by_age={}, free_by_age={"1": 2}),
                  author_user_id=None)
    # A child queued at the fresh centre (age 1 this year): the 행정동's row shows 2 free / 1 queued.
    parent = create_user(conn, email="p@example.kr", password=PASSWORD, role="parent")
    verify(conn, parent, name="김부모")
    born = date(childcare_year(date.today()) - 2, 5, 1)
    child = wl.register_child(conn, parent_user_id=parent, name="김아이", birth_date=born, claims=[])
    wl.apply(conn, parent_user_id=parent, child_id=child["id"], facility_code=fresh)
    dong = conn.execute(text("SELECT a.name FROM facilities f JOIN admin_dongs a ON a.id = f.admin_dong_id "
                             "WHERE f.id = :f"), {"f": fresh_id}).scalar_one()

    client = _login(settings, conn, "officer@example.kr")
    assert client.get("/portal/", follow_redirects=False).headers["location"] == "/portal/officer"
    page = client.get("/portal/officer")
    assert page.status_code == 200
    soup = _soup(page.text)
    assert "마포구" in soup.h1.get_text()
    rows = soup.select("#stale tbody tr")
    # The oldest figures first; the fresh centre is not listed; the never-reported ones are counted apart.
    assert [r.a.get_text() for r in rows[:2]] == [older_name, old_name]
    assert rows[0].a["href"] == f"/portal/centres/{older}"
    assert "400 days" in rows[0].get_text()
    assert fresh not in page.text.split('id="pressure"')[0].split('id="stale"')[1]
    stale = dash.stale_centres(conn, MAPO, stale_after_days=settings.vacancy.stale_days)
    assert [c["code"] for c in stale[:2]] == [older, old] and all(c["district_code"] == MAPO for c in stale)
    pressure = {r.th.get_text(): r for r in soup.select("#pressure tbody tr")}
    age_1 = pressure[dong].select("td")[2]  # after the centres and age 0
    free_1 = sum(int((f or {}).get("1") or 0) for f in conn.execute(text(
        "SELECT free_by_age FROM facilities WHERE admin_dong_id = (SELECT admin_dong_id FROM facilities WHERE id = :f) "
        "AND district_code = :d AND status IN ('active', 'reopened')"), {"f": fresh_id, "d": MAPO}).scalars())
    assert free_1 >= 2 and age_1.get_text(strip=True).startswith(f"{free_1} / 1")
    assert page.text.count("/portal/centres/") >= len(stale)
    # Another 구, the designations of another 구 and the admin pages are refused (a page, not a problem body).
    for path in (f"/portal/officer?district={GANGNAM}", f"/portal/officer/designations?district={GANGNAM}",
                 "/portal/admin/users", "/portal/admin/audit"):
        refused = client.get(path)
        assert refused.status_code == 403 and refused.headers["content-type"].startswith("text/html"), path


def test_parents_and_strangers_are_kept_out(settings: Settings, conn: Connection) -> None:
    create_user(conn, email="parent@example.kr", password=PASSWORD, role="parent")
    client = _login(settings, conn, "parent@example.kr")
    for path in ("/portal/officer", f"/portal/officer?district={MAPO}", "/portal/officer/designations",
                 "/portal/admin/users", "/portal/admin/audit"):
        assert client.get(path).status_code == 403, path
    csrf = client.cookies["dolbom_csrf"]
    (code, _, _), = _centres(conn, MAPO, 1)
    posted = client.post("/portal/officer/designations", data={
        "csrf_token": csrf, "centre": code, "service": "multicultural", "authority": "마포구청",
        "valid_from": today_in_seoul().isoformat()})
    assert posted.status_code == 403
    assert client.post("/portal/admin/users", data={"csrf_token": csrf, "email": "x@example.kr"}).status_code == 403
    anonymous = client_on(settings, conn)
    away = anonymous.get("/portal/officer", follow_redirects=False)
    assert away.status_code == 303 and away.headers["location"] == "/portal/login?next=/portal/officer"


def test_an_officer_designates_and_ends_in_the_page(settings: Settings, conn: Connection) -> None:
    create_user(conn, email="officer@example.kr", password=PASSWORD, role="district_officer", district_code=MAPO)
    (code, name, fid), = _centres(conn, MAPO, 1)
    (other, _, _), = _centres(conn, GANGNAM, 1)
    conn.execute(text("UPDATE facilities SET services = array_remove(services, 'multicultural'), "
                      "services_imported = array_remove(services_imported, 'multicultural') WHERE id = :f"),
                 {"f": fid})
    client = _login(settings, conn, "officer@example.kr", lang="ko")
    form = client.get("/portal/officer/designations")
    assert form.status_code == 200 and "마포구" in _soup(form.text).h1.get_text()
    csrf = _csrf(form.text)
    today = today_in_seoul().isoformat()
    fields = {"centre": code, "service": "multicultural", "authority": "마포구청", "valid_from": today,
              "district": MAPO}
    # Without the session's CSRF token: refused.
    forged = client.post("/portal/officer/designations", data=fields)
    assert forged.status_code == 403 and "양식이 만료" in forged.text
    # A bad date comes back at its field, in Korean, the other values kept.
    bad = client.post("/portal/officer/designations", data={**fields, "csrf_token": csrf, "valid_to": "2020-01-01"})
    assert bad.status_code == 422
    soup = _soup(bad.text)
    assert soup.find(id="valid_to")["aria-invalid"] == "true"
    assert soup.find("option", attrs={"value": code, "selected": True}) is not None
    # Another 구's centre: refused.
    assert client.post("/portal/officer/designations",
                       data={**fields, "csrf_token": csrf, "centre": other}).status_code == 403
    made = client.post("/portal/officer/designations", data={**fields, "csrf_token": csrf, "note": "2026 지정"},
                       follow_redirects=False)
    assert made.status_code == 303
    assert made.headers["location"] == f"/portal/officer/designations?district={MAPO}&done=created"
    assert "multicultural" in conn.execute(text("SELECT services FROM facilities WHERE id = :f"),
                                           {"f": fid}).scalar_one()
    found = client.get("/facilities/radius", params={
        "lat": conn.execute(text("SELECT ST_Y(geom_4326) FROM facilities WHERE id = :f"), {"f": fid}).scalar(),
        "lon": conn.execute(text("SELECT ST_X(geom_4326) FROM facilities WHERE id = :f"), {"f": fid}).scalar(),
        "radius_m": 50, "service": "multicultural", "f": "json"})
    assert code in found.text
    page = _soup(client.get(made.headers["location"]).text)
    assert page.find(attrs={"role": "status"}) is not None
    (card,) = page.select("section.card")
    assert name in card.h3.get_text() and "다문화" in card.h3.get_text()
    assert "officer@example.kr" in card.select_one("ul.changes").get_text()
    # Not in the official data: listed among the conflicts.
    assert name in page.select_one("#conflicts").get_text()
    designation_id = int(card["id"].removeprefix("designation-"))
    ended = client.post(f"/portal/officer/designations/{designation_id}/end",
                        data={"csrf_token": csrf, "valid_to": "1999-01-01"})
    assert ended.status_code == 422 and _soup(ended.text).find(id=f"end-{designation_id}")["aria-invalid"] == "true"
    ended = client.post(f"/portal/officer/designations/{designation_id}/end",
                        data={"csrf_token": csrf, "valid_to": today}, follow_redirects=False)
    assert ended.status_code == 303
    history = _soup(client.get("/portal/officer/designations").text).select_one("section.card ul.changes")
    assert len(history.select("li")) == 2


def test_the_city_admin_manages_accounts_and_reads_the_audit(settings: Settings, conn: Connection) -> None:
    admin = create_user(conn, email="admin@example.kr", password=PASSWORD, role="city_admin")
    (code, _, _), = _centres(conn, MAPO, 1)
    client = _login(settings, conn, "admin@example.kr")
    picker = _soup(client.get("/portal/officer").text)
    assert picker.find("select", id="district") is not None and picker.find(id="stale") is None
    gangnam = _soup(client.get(f"/portal/officer?district={GANGNAM}").text)
    assert "강남구" in gangnam.h1.get_text() and gangnam.find(id="pressure") is not None
    assert client.get("/portal/officer?district=99999").status_code == 404
    users = client.get("/portal/admin/users")
    assert users.status_code == 200
    csrf = _csrf(users.text)
    account = {"email": "staff@example.kr", "password": PASSWORD, "role": "centre_staff",
               "facility_codes": code}
    forged = client.post("/portal/admin/users", data=account)
    assert forged.status_code == 403
    missing = client.post("/portal/admin/users", data={**account, "csrf_token": csrf, "facility_codes": ""})
    assert missing.status_code == 422 and _soup(missing.text).find(id="facility_codes")["aria-invalid"] == "true"
    made = client.post("/portal/admin/users", data={**account, "csrf_token": csrf}, follow_redirects=False)
    assert made.status_code == 303
    listed = _soup(client.get(made.headers["location"]).text)
    (card,) = listed.select("section.card")
    assert "staff@example.kr" in card.h3.get_text() and code in card.get_text()
    staff_id = int(card["id"].removeprefix("account-"))
    assert client.post(f"/portal/admin/users/{staff_id}/disable", data={"csrf_token": csrf},
                       follow_redirects=False).status_code == 303
    assert conn.execute(text("SELECT disabled FROM users WHERE id = :u"), {"u": staff_id}).scalar_one()
    assert client.post(f"/portal/admin/users/{staff_id}/enable", data={"csrf_token": csrf},
                       follow_redirects=False).status_code == 303
    # Disabling oneself is refused next to one's own card (there is no button for it; a forged post).
    own = client.post(f"/portal/admin/users/{admin}/disable", data={"csrf_token": csrf})
    assert own.status_code == 422 and _soup(own.text).find(id=f"user-{admin}") is not None
    # The audit trail: newest first, filtered by actor and action.
    trail = _soup(client.get("/portal/admin/audit", params={"actor": "admin@example.kr", "action": "user."}).text)
    actions = [r.select("td")[2].get_text() for r in trail.select("#audit tbody tr")]
    assert actions[:3] == ["user.enable", "user.disable", "user.create"]
    assert "staff@example.kr" in trail.select("#audit tbody tr")[2].get_text()
    bad = client.get("/portal/admin/audit", params={"from": "yesterday"})
    assert bad.status_code == 422 and _soup(bad.text).find(id="from")["aria-invalid"] == "true"
    today = today_in_seoul()
    rows, total = audit_entries(conn, AuditFilter(actor=str(admin), action="user.create", day_from=today,
                                                  day_to=today), limit=1)
    # The admin's own account (created by itself) and the staff account, newest first.
    assert total == 2 and rows[0]["entity_id"] == str(staff_id)
    found, n = find_users(conn, query=code)
    assert n == 1 and found[0]["email"] == "staff@example.kr"


@pytest.mark.parametrize("query", ["%", "_", "\\"])
def test_user_search_takes_wildcards_literally(conn: Connection, query: str) -> None:
    create_user(conn, email="plain@example.kr", password=PASSWORD, role="parent")
    found, _ = find_users(conn, query=query)
    assert all(query in (u["email"] + (u["display_name"] or "")) for u in found)
