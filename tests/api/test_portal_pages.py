"""The portal's pages without a browser (TestClient, the real Seoul centres, a rolled-back transaction): a parent
signs up, confirms the mailed code, logs in, verifies (local provider), registers a child, applies and sees the
rank; form errors come back inline (422, role=alert) in the request's language; a form post without the session's
CSRF token is refused; the language follows the cookie, then Accept-Language. The browser flows are in
test_portal_browser.py."""

from __future__ import annotations

import re
import threading
from datetime import date
from urllib.parse import parse_qs, urlparse

from bs4 import BeautifulSoup
from sqlalchemy import Connection, text

from geo.admission.rules import childcare_year
from geo.auth.accounts import create_user
from geo.settings import Settings
from tests.accounts_util import mail_to, pick_centres
from tests.dbutil import client_on
from tests.geo.auth.test_identity import CLIENT_ID, SECRET, Issuer

PASSWORD = "correct horse battery staple"


def _soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def _csrf(html: str) -> str:
    field = _soup(html).find("input", attrs={"name": "csrf_token"})
    assert field is not None
    return str(field["value"])


def test_parent_flow_in_pages(settings: Settings, conn: Connection) -> None:
    own, other = pick_centres(conn)
    client = client_on(settings, conn)
    client.headers["Accept-Language"] = "ko-KR,ko;q=0.9,en;q=0.5"
    # A weak password: the form comes back with the field marked and the message in Korean.
    weak = client.post("/portal/signup", data={"email": "mother@example.kr", "password": "short"})
    assert weak.status_code == 422
    page = _soup(weak.text)
    assert page.find(id="form-errors")["role"] == "alert"
    assert page.find(id="password")["aria-invalid"] == "true"
    assert "비밀번호" in page.find(id="password-error").get_text()
    assert page.find("input", attrs={"name": "email"})["value"] == "mother@example.kr"
    done = client.post("/portal/signup", data={"email": "mother@example.kr", "password": PASSWORD,
                                               "display_name": "김엄마"})
    assert done.status_code == 200 and 'name="token"' in done.text
    (body,) = mail_to(conn, "mother@example.kr", "confirm_email")
    token = re.search(r'"token": "([^"]+)"', body).group(1)  # type: ignore[union-attr]
    bad = client.post("/portal/account/confirm-email", data={"token": "nope"})
    assert bad.status_code == 422 and "코드" in _soup(bad.text).find(id="token-error").get_text()
    confirmed = client.post("/portal/account/confirm-email", data={"token": token}, follow_redirects=False)
    assert confirmed.status_code == 303 and confirmed.headers["location"] == "/portal/login?confirmed=1"
    wrong = client.post("/portal/login", data={"email": "mother@example.kr", "password": "wrong password!"})
    assert wrong.status_code == 422 and "비밀번호가 틀렸습니다" in wrong.text
    logged = client.post("/portal/login", data={"email": "mother@example.kr", "password": PASSWORD},
                         follow_redirects=False)
    assert logged.status_code == 303 and {"dolbom_session", "dolbom_csrf"} <= set(logged.cookies.keys())
    identity = client.get("/portal/account/identity")
    csrf = _csrf(identity.text)
    assert csrf == client.cookies["dolbom_csrf"]
    # Without the session's CSRF token a form post is refused (a page in Korean, not a problem body).
    forged = client.post("/portal/account/identity", data={"name": "김엄마", "birth_date": "1990-02-03"})
    assert forged.status_code == 403 and forged.headers["content-type"].startswith("text/html")
    assert "양식이 만료" in forged.text
    verified = client.post("/portal/account/identity", data={"csrf_token": csrf, "name": "김엄마",
                                                             "birth_date": "1990-02-03"}, follow_redirects=False)
    assert verified.status_code == 303
    assert conn.execute(text("SELECT verified_name FROM users WHERE email = 'mother@example.kr'")).scalar() == "김엄마"
    # A sibling claim without its centre is refused inline; with it the child is registered.
    born = date(childcare_year(date.today()) - 1, 5, 1).isoformat()
    child = {"csrf_token": csrf, "name": "김아기", "birth_date": born, "claims": ["dual_income", "sibling_enrolled"]}
    refused = client.post("/portal/children", data=child)
    assert refused.status_code == 422 and _soup(refused.text).find(id="claim_details")["aria-invalid"] == "true"
    added = client.post("/portal/children", data={**child, "claim_details": own.code}, follow_redirects=False)
    assert added.status_code == 303
    child_id = conn.execute(text("SELECT id FROM children WHERE name = '김아기'")).scalar_one()
    for centre in (own, other):
        applied = client.post(f"/portal/centres/{centre.code}/apply", data={"csrf_token": csrf,
                                                                            "child_id": str(child_id)},
                              follow_redirects=False)
        assert applied.status_code == 303, applied.text
    again = client.post(f"/portal/centres/{own.code}/apply", data={"csrf_token": csrf, "child_id": str(child_id)})
    assert again.status_code == 422 and "이미" in _soup(again.text).find(id="form-errors").get_text()
    mine = _soup(client.get("/portal/applications").text)
    cards = mine.select("section.card")
    assert len(cards) == 2
    expected = conn.execute(text("""SELECT f.code, count(*) FILTER (WHERE o.status IN ('waiting', 'offered'))
                                    FROM waitlist_entries e JOIN facilities f ON f.id = e.facility_id
                                    JOIN waitlist_entries o ON o.facility_id = e.facility_id AND o.year = e.year
                                         AND o.age_class = e.age_class
                                    JOIN children ch ON ch.id = e.child_id WHERE ch.name = '김아기'
                                    GROUP BY f.code""")).all()
    ranks = {c.select_one("h2").get_text(): c.select_one(".rank").get_text() for c in cards}
    names = dict(conn.execute(text("SELECT code, name FROM facilities WHERE code IN (:a, :b)"),
                              {"a": own.code, "b": other.code}).all())
    # Nobody else is in these queues (the test's own transaction): rank 1 of the queue's length, which is 1.
    assert {code: n for code, n in expected} == {own.code: 1, other.code: 1}
    assert ranks == {f"{names[own.code]} · 김아기": "1명 중 1순위", f"{names[other.code]} · 김아기": "1명 중 1순위"}
    # The part htmx refreshes: the same list, without the layout.
    part = client.get("/portal/applications/entries")
    assert part.status_code == 200 and "<html" not in part.text
    assert len(_soup(part.text).select("#entries section.card")) == 2
    # Each waiting entry shows its wait forecast and can be renewed for next year (its class age moves up, its
    # application time stays); the renewal is confirmed and the page then offers it no more.
    assert all(c.select_one(".forecast p") is not None and "%" in c.select_one(".forecast p").get_text()
               for c in cards)
    next_year = childcare_year(date.today()) + 1
    entry_id = cards[0]["id"].removeprefix("entry-")
    renew_form = mine.find("form", attrs={"action": f"/portal/entries/{entry_id}/renew"})
    assert renew_form is not None and f"{next_year}" in renew_form.parent.find("summary").get_text()
    before = conn.execute(text("SELECT year, age_class, applied_at FROM waitlist_entries WHERE public_id = :e"),
                          {"e": entry_id}).one()
    renewed = client.post(f"/portal/entries/{entry_id}/renew", data={"csrf_token": csrf}, follow_redirects=False)
    assert renewed.status_code == 303 and renewed.headers["location"].endswith("done=renew")
    after = conn.execute(text("SELECT year, age_class, applied_at FROM waitlist_entries WHERE public_id = :e"),
                         {"e": entry_id}).one()
    assert (after.year, after.age_class, after.applied_at) == (next_year, before.age_class + 1, before.applied_at)
    page_after = client.get("/portal/applications?done=renew")
    assert "다음 해로 갱신되었습니다" in page_after.text
    assert _soup(page_after.text).find("form", attrs={"action": f"/portal/entries/{entry_id}/renew"}) is None
    again_renew = client.post(f"/portal/entries/{entry_id}/renew", data={"csrf_token": csrf})
    assert again_renew.status_code == 409  # already for next year: refused inline
    # A notice (an offer) is listed, in Korean.
    conn.execute(text("""INSERT INTO waitlist_notices (parent_user_id, entry_id, kind, message)
                         SELECT ch.parent_user_id, e.id, 'offer', 'a place is offered to you'
                         FROM waitlist_entries e JOIN children ch ON ch.id = e.child_id WHERE e.public_id = :e"""),
                 {"e": entry_id})
    notices = _soup(client.get("/portal/applications").text).find(id="notices-title")
    assert notices is not None and "입소 자리가 제안되었습니다" in notices.parent.get_text()
    # Logged out, the pages send the reader to the login page and back.
    client.post("/portal/account/logout", data={"csrf_token": csrf})
    away = client.get("/portal/applications", follow_redirects=False)
    assert away.status_code == 303 and away.headers["location"] == "/portal/login?next=/portal/applications"


def test_language_negotiation(settings: Settings, conn: Connection) -> None:
    client = client_on(settings, conn)
    assert _soup(client.get("/portal/login").text).html["lang"] == "ko"  # no preference: Korean
    english = client.get("/portal/login", headers={"Accept-Language": "fr;q=1, en-US;q=0.8, ko;q=0.1"})
    assert english.headers["content-language"] == "en" and "Log in" in english.text
    vietnamese = client.get("/portal/lang?to=vi&next=/portal/login", follow_redirects=False)
    assert vietnamese.status_code == 303 and vietnamese.headers["location"] == "/portal/login"
    # The cookie (the user's choice) wins over Accept-Language.
    chosen = client.get("/portal/login", headers={"Accept-Language": "en"})
    assert chosen.headers["content-language"] == "vi" and "Đăng nhập" in chosen.text
    # The switch never leaves the site.
    assert client.get("/portal/lang?to=zh&next=//evil.example/x", follow_redirects=False).headers["location"] \
        == "/portal/"


def test_staff_vacancy_report_page(settings: Settings, conn: Connection) -> None:
    own, other = pick_centres(conn)
    create_user(conn, email="staff@example.kr", password=PASSWORD, role="centre_staff", facility_codes=[own.code])
    client = client_on(settings, conn)
    client.headers["Accept-Language"] = "en"
    client.post("/portal/login", data={"email": "staff@example.kr", "password": PASSWORD})
    home = client.get("/portal/", follow_redirects=False)
    assert home.headers["location"] == "/portal/staff"
    assert f"/portal/staff/centres/{own.code}/vacancy" in client.get("/portal/staff").text
    form = client.get(f"/portal/staff/centres/{own.code}/vacancy")
    csrf = _csrf(form.text)
    # More children in the 0세 classes than they hold (3 per class): refused, named at its field.
    too_many = own.classes_by_age["0"] * 3 + 1
    refused = client.post(f"/portal/staff/centres/{own.code}/vacancy",
                          data={"csrf_token": csrf, "enrolled_0": str(too_many), "free_0": "0"})
    assert refused.status_code == 422
    page = _soup(refused.text)
    assert page.find(id="enrolled_0")["aria-invalid"] == "true"
    assert page.find(id="enrolled_0")["value"] == str(too_many)
    assert f"At most {own.classes_by_age['0'] * 3} here" in page.find(id="enrolled_0-error").get_text()
    # A report that fits: saved, on the centre's row and in its history.
    saved = client.post(f"/portal/staff/centres/{own.code}/vacancy",
                        data={"csrf_token": csrf, "enrolled_0": "1", "enrolled_1": "1", "free_0": "1"},
                        follow_redirects=False)
    assert saved.status_code == 303
    row = conn.execute(text("SELECT free_by_age, enrolled_by_age FROM facilities WHERE id = :f"),
                       {"f": own.id}).one()
    assert row.free_by_age["0"] == 1 and row.enrolled_by_age["0"] == 1 and row.enrolled_by_age["1"] == 1
    assert conn.execute(text("SELECT count(*) FROM vacancy_reports WHERE facility_id = :f"),
                        {"f": own.id}).scalar_one() == 1
    # Another centre's form is refused (a page, in the reader's language).
    refused_other = client.get(f"/portal/staff/centres/{other.code}/vacancy")
    assert refused_other.status_code == 403 and refused_other.headers["content-type"].startswith("text/html")


def test_identity_with_openid_connect(settings: Settings, conn: Connection) -> None:
    """본인인증 through an OpenID Connect issuer (a local one signing real ID tokens): the page sends the browser to
    it with state and nonce, the callback stores what it verified; a callback with another state is refused."""
    issuer = Issuer()
    thread = threading.Thread(target=issuer.server.serve_forever, daemon=True)
    thread.start()
    try:
        oidc = Settings(DATABASE_URL=settings.database.url, DOLBOM_IDENTITY_PROVIDER="oidc",
                        DOLBOM_OIDC_ISSUER=issuer.url, DOLBOM_OIDC_CLIENT_ID=CLIENT_ID,
                        DOLBOM_OIDC_CLIENT_SECRET=SECRET,
                        DOLBOM_OIDC_REDIRECT_URI="http://testserver/portal/account/identity/callback")
        user_id = create_user(conn, email="oidc@example.kr", password=PASSWORD, role="parent")
        client = client_on(oidc, conn)
        client.headers["Accept-Language"] = "en"
        client.post("/portal/login", data={"email": "oidc@example.kr", "password": PASSWORD})
        form = client.get("/portal/account/identity")
        assert 'action="/portal/account/identity/start"' in form.text
        started = client.post("/portal/account/identity/start", data={"csrf_token": _csrf(form.text)},
                              follow_redirects=False)
        assert started.status_code == 303
        target = urlparse(started.headers["location"])
        query = parse_qs(target.query)
        assert f"{target.scheme}://{target.netloc}{target.path}" == f"{issuer.url}/authorize"
        assert query["redirect_uri"] == ["http://testserver/portal/account/identity/callback"]
        forged = client.get("/portal/account/identity/callback", params={"code": "c-1", "state": "not-it"})
        assert forged.status_code == 422 and "did not complete" in forged.text
        # The cookie is cleared after any answer: start again.
        started = client.post("/portal/account/identity/start", data={"csrf_token": _csrf(form.text)},
                              follow_redirects=False)
        query = parse_qs(urlparse(started.headers["location"]).query)
        issuer.nonce = query["nonce"][0]
        issuer.userinfo = {"sub": "user-1", "ci": "CI-PORTAL", "phone_number": "010-2222-3333"}
        done = client.get("/portal/account/identity/callback", params={"code": "c-2", "state": query["state"][0]},
                          follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"] == "/portal/children?verified=1"
        row = conn.execute(text("SELECT verified_name, verified_birth_date, identity_provider FROM users "
                                "WHERE id = :u"), {"u": user_id}).one()
        assert (row.verified_name, row.verified_birth_date.isoformat(), row.identity_provider) == (
            "김엄마", "1990-03-04", "oidc")
    finally:
        issuer.server.shutdown()
        issuer.server.server_close()
