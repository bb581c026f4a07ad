"""Accounts over HTTP: sign-up, passwords, sessions with CSRF, bearer tokens, lockout, logout/revocation,
every role rule (each 403 as problem+json), audit rows, 본인인증 with the local provider."""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy import Connection, text

from geo.settings import Settings
from tests.accounts_util import PASSWORD, make_cast, valid_report
from tests.dbutil import client_on
from tests.problem_util import problem as _problem


def test_signup_stores_argon2_hash_and_refuses_duplicates(settings: Settings, conn: Connection) -> None:
    client = client_on(settings, conn)
    resp = client.post("/auth/signup", json={"email": "Mom@Example.kr", "password": PASSWORD, "display_name": "엄마"})
    assert resp.status_code == 202, resp.text
    stored = conn.execute(text("SELECT password_hash, role FROM users WHERE email = 'mom@example.kr'")).one()
    assert stored.password_hash.startswith("$argon2id$") and PASSWORD not in stored.password_hash
    assert stored.role == "parent"
    # A second sign-up with the address: the same answer, no second account (docs/accounts.md).
    again = client.post("/auth/signup", json={"email": "mom@example.kr", "password": PASSWORD})
    assert (again.status_code, again.json()) == (202, resp.json())
    assert conn.execute(text("SELECT count(*) FROM users WHERE email = 'mom@example.kr'")).scalar_one() == 1
    assert _problem(client.post("/auth/signup", json={"email": "x@example.kr", "password": "short"}),
                    422)["param"] == "password"
    _problem(client.post("/auth/signup", json={"email": "not-an-email", "password": PASSWORD}), 422)
    # Nobody can sign up as anything but a parent.
    _problem(client.post("/auth/signup", json={"email": "y@example.kr", "password": PASSWORD,
                                               "role": "city_admin"}), 422)


def test_bearer_token_login_me_logout_and_revocation(settings: Settings, conn: Connection) -> None:
    client = client_on(settings, conn)
    client.post("/auth/signup", json={"email": "p@example.kr", "password": PASSWORD})
    _problem(client.post("/auth/token", json={"email": "p@example.kr", "password": "wrong password"}), 401)
    token = client.post("/auth/token", json={"email": "p@example.kr", "password": PASSWORD, "label": "cli"}).json()
    # Only the SHA-256 of the secret is stored.
    hashes = conn.execute(text("SELECT token_hash FROM auth_tokens WHERE id = :id"),
                          {"id": token["id"]}).scalars().all()
    assert hashes == [hashlib.sha256(token["access_token"].encode()).hexdigest()]
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    assert client.get("/auth/me", headers=auth).json()["email"] == "p@example.kr"
    # A second token, revoked by id; the first still works.
    second = client.post("/auth/tokens", json={"label": "other"}, headers=auth).json()
    assert client.delete(f"/auth/tokens/{second['id']}", headers=auth).status_code == 204
    _problem(client.get("/auth/me", headers={"Authorization": f"Bearer {second['access_token']}"}), 401)
    assert client.get("/auth/me", headers=auth).status_code == 200
    assert client.post("/auth/logout", headers=auth).status_code == 204
    _problem(client.get("/auth/me", headers=auth), 401)
    _problem(client.get("/auth/me", headers={"Authorization": "Bearer not-a-token"}), 401)
    _problem(client.get("/auth/me", headers={"Authorization": "Basic abc"}), 401)
    _problem(client.get("/auth/me"), 401)


def test_session_cookies_and_csrf(settings: Settings, conn: Connection) -> None:
    client = client_on(settings, conn)
    client.post("/auth/signup", json={"email": "web@example.kr", "password": PASSWORD})
    resp = client.post("/auth/login", json={"email": "web@example.kr", "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    set_cookie = resp.headers.get_list("set-cookie")
    session_cookie = next(c for c in set_cookie if c.startswith("dolbom_session="))
    csrf_cookie = next(c for c in set_cookie if c.startswith("dolbom_csrf="))
    assert "HttpOnly" in session_cookie and "SameSite=lax" in session_cookie and "Path=/" in session_cookie
    assert "HttpOnly" not in csrf_cookie and "SameSite=strict" in csrf_cookie
    csrf = resp.json()["csrf_token"]
    assert csrf_cookie.startswith(f"dolbom_csrf={csrf};")
    # Safe methods ride on the cookie alone.
    assert client.get("/auth/me").json()["email"] == "web@example.kr"
    # Unsafe methods on a cookie session need the synchronizer token.
    assert _problem(client.post("/auth/tokens", json={}), 403)["reason"] == "csrf"
    assert _problem(client.post("/auth/tokens", json={}, headers={"X-CSRF-Token": "forged"}), 403)["reason"] == "csrf"
    assert client.post("/auth/tokens", json={}, headers={"X-CSRF-Token": csrf}).status_code == 201
    # Logout is unsafe too, then the cookie is dead even if replayed.
    old = client.cookies.get("dolbom_session")
    _problem(client.post("/auth/logout"), 403)
    assert client.post("/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    client.cookies.set("dolbom_session", old)
    _problem(client.get("/auth/me"), 401)


def test_lockout_after_repeated_failures(settings: Settings, conn: Connection) -> None:
    strict = settings.updated(DOLBOM_LOGIN_MAX_FAILURES=3, DOLBOM_LOGIN_LOCKOUT_MINUTES=10.0)
    client = client_on(strict, conn)
    client.post("/auth/signup", json={"email": "lock@example.kr", "password": PASSWORD})
    for _ in range(3):
        _problem(client.post("/auth/token", json={"email": "lock@example.kr", "password": "wrong password"}), 401)
    # Locked: even the right password is refused, with the time to wait.
    body = _problem(client.post("/auth/token", json={"email": "lock@example.kr", "password": PASSWORD}), 429)
    assert 0 < body["retry_after_s"] <= 600
    # Failures older than the window no longer count.
    conn.execute(text("UPDATE login_failures SET at = at - interval '11 minutes' WHERE email = 'lock@example.kr'"))
    assert client.post("/auth/token", json={"email": "lock@example.kr", "password": PASSWORD}).status_code == 200
    # A success clears the account's failures.
    assert conn.execute(text("SELECT count(*) FROM login_failures WHERE email = 'lock@example.kr'")).scalar_one() == 0


def test_address_throttle_across_accounts(settings: Settings, conn: Connection) -> None:
    strict = settings.updated(DOLBOM_LOGIN_MAX_FAILURES=100, DOLBOM_LOGIN_IP_MAX_FAILURES=4)
    client = client_on(strict, conn)
    client.post("/auth/signup", json={"email": "real@example.kr", "password": PASSWORD})
    for i in range(4):
        _problem(client.post("/auth/token", json={"email": f"guess{i}@example.kr", "password": "x" * 12}), 401)
    # The guessed accounts get no second try from this address (another account still logs in: see
    # tests/api/test_city_hardening.py for a shared address).
    _problem(client.post("/auth/token", json={"email": "guess1@example.kr", "password": "x" * 12}), 429)
    assert client.post("/auth/token", json={"email": "real@example.kr", "password": PASSWORD}).status_code == 200


def test_role_rules_every_403(settings: Settings, conn: Connection) -> None:
    cast = make_cast(conn, settings)
    client = client_on(settings, conn)
    h = cast.headers
    own, other = cast.own, cast.other
    report = valid_report(own)
    # Reporting: only staff of that centre (and admins).
    for who in ("parent", "officer"):
        _problem(client.post(f"/vacancy/centres/{own.code}/reports", json=report, headers=h[who]), 403)
    _problem(client.post(f"/vacancy/centres/{other.code}/reports", json=valid_report(other), headers=h["staff"]), 403)
    _problem(client.post(f"/vacancy/centres/{own.code}/reports", json=report), 401)
    assert client.post(f"/vacancy/centres/{own.code}/reports", json=report, headers=h["staff"]).status_code == 201
    assert client.post(f"/vacancy/centres/{own.code}/reports", json=report, headers=h["admin"]).status_code == 201
    # History: staff of the centre, the officer of its 구, admins.
    _problem(client.get(f"/vacancy/centres/{own.code}/reports", headers=h["parent"]), 403)
    _problem(client.get(f"/vacancy/centres/{other.code}/reports", headers=h["staff"]), 403)
    _problem(client.get(f"/vacancy/centres/{other.code}/reports", headers=h["officer"]), 403)
    for who in ("staff", "officer", "admin"):
        assert client.get(f"/vacancy/centres/{own.code}/reports", headers=h[who]).status_code == 200
    # 구 status: its officer and admins.
    for who in ("parent", "staff"):
        _problem(client.get(f"/vacancy/districts/{own.district_code}", headers=h[who]), 403)
    _problem(client.get(f"/vacancy/districts/{other.district_code}", headers=h["officer"]), 403)
    for who in ("officer", "admin"):
        assert client.get(f"/vacancy/districts/{own.district_code}", headers=h[who]).status_code == 200
    # Administration: admins only.
    new_staff = {"email": "new@example.kr", "password": PASSWORD, "role": "centre_staff", "facility_codes": [own.code]}
    for who in ("parent", "staff", "officer"):
        _problem(client.post("/admin/users", json=new_staff, headers=h[who]), 403)
        _problem(client.get("/admin/audit", headers=h[who]), 403)
        _problem(client.get(f"/admin/users/{cast.ids['parent']}", headers=h[who]), 403)
    _problem(client.post("/admin/users", json=new_staff), 401)
    created = client.post("/admin/users", json=new_staff, headers=h["admin"])
    assert created.status_code == 201 and created.json()["facility_codes"] == [own.code]


def test_admin_creates_staff_and_officers_with_checked_bindings(settings: Settings, conn: Connection) -> None:
    cast = make_cast(conn, settings)
    client = client_on(settings, conn)
    admin = cast.headers["admin"]
    name = conn.execute(text("SELECT name FROM districts WHERE code = :c"), {"c": cast.own.district_code}).scalar_one()
    officer = client.post("/admin/users", headers=admin, json={
        "email": "o2@example.kr", "password": PASSWORD, "role": "district_officer", "district_code": name})
    assert officer.status_code == 201 and officer.json()["district_code"] == cast.own.district_code
    bad = [
        ({"role": "centre_staff"}, 422, "facility_codes"),
        ({"role": "centre_staff", "facility_codes": ["00000000000"]}, 404, "facility_codes"),
        ({"role": "district_officer"}, 422, "district_code"),
        ({"role": "district_officer", "district_code": "없는구"}, 404, "district_code"),
        ({"role": "parent", "district_code": cast.own.district_code}, 422, "district_code"),
        ({"role": "parent", "facility_codes": [cast.own.code]}, 422, "facility_codes"),
    ]
    for extra, status, field in bad:
        body = _problem(client.post("/admin/users", headers=admin,
                                    json={"email": "b@example.kr", "password": PASSWORD, **extra}), status)
        assert body["param"] == field


def test_audit_rows_record_who_what_and_previous_value(settings: Settings, conn: Connection) -> None:
    cast = make_cast(conn, settings)
    client = client_on(settings, conn)
    before = conn.execute(text("SELECT enrolled, enrolled_by_age, free_by_age FROM facilities WHERE id = :id"),
                          {"id": cast.own.id}).mappings().one()
    resp = client.post(f"/vacancy/centres/{cast.own.code}/reports", json=valid_report(cast.own),
                       headers=cast.headers["staff"])
    assert resp.status_code == 201
    rows = client.get("/admin/audit", params={"entity": "facilities", "entity_id": cast.own.code},
                      headers=cast.headers["admin"]).json()
    assert len(rows) == 1
    row = rows[0]
    assert row["action"] == "vacancy.report" and row["actor_user_id"] == cast.ids["staff"]
    assert row["before"]["enrolled"] == before["enrolled"]
    assert row["before"]["enrolled_by_age"] == before["enrolled_by_age"]
    assert row["before"]["free_by_age"] == before["free_by_age"]
    assert row["after"]["enrolled"] == sum(valid_report(cast.own)["enrolled_by_age"].values())
    # Account creation and token revocation are audited too, never with secrets.
    created = conn.execute(text("SELECT actor_user_id, after FROM audit_log WHERE action = 'user.create' "
                                "AND entity_id = :id"), {"id": str(cast.ids["staff"])}).one()
    assert created.after["facility_codes"] == [cast.own.code]
    assert "password" not in str(created.after) and "argon2" not in str(created.after)
    client.post("/auth/logout", headers=cast.headers["parent"])
    revoked = conn.execute(text("SELECT actor_user_id, before, after FROM audit_log "
                                "WHERE action = 'bearer.revoke'")).one()
    assert revoked.actor_user_id == cast.ids["parent"] and revoked.before == {"revoked": False}


def test_local_identity_verification_keeps_only_provider_data(settings: Settings, conn: Connection) -> None:
    client = client_on(settings, conn)
    client.post("/auth/signup", json={"email": "id@example.kr", "password": PASSWORD})
    auth = {"Authorization": "Bearer " + client.post(
        "/auth/token", json={"email": "id@example.kr", "password": PASSWORD}).json()["access_token"]}
    start = client.post("/auth/identity/start", headers=auth).json()
    assert start["provider"] == "local"
    _problem(client.post("/auth/identity/local", headers=auth, json={
        "state": "forged", "name": "김엄마", "birth_date": "1990-03-04"}), 401)
    # A 주민등록번호 in any field is refused, and nothing is stored.
    _problem(client.post("/auth/identity/local", headers=auth, json={
        "state": start["state"], "name": "김엄마", "birth_date": "900304-2345678"}), 422)
    resp = client.post("/auth/identity/local", headers=auth, json={
        "state": start["state"], "name": "김엄마", "birth_date": "1990-03-04", "phone": "010-1234-5678"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["verified_name"] == "김엄마" and resp.json()["verified_birth_date"] == "1990-03-04"
    row = conn.execute(text("SELECT ci_hash FROM users WHERE email = 'id@example.kr'")).one()
    ci = "LOCAL-" + hashlib.sha256("김엄마|1990-03-04".encode()).hexdigest()
    assert row.ci_hash == hmac.new(settings.identity.ci_hash_key.encode(), ci.encode(), hashlib.sha256).hexdigest()
    columns = conn.execute(text("SELECT column_name FROM information_schema.columns WHERE table_name = 'users'"))
    assert not any("rrn" in c or "resident" in c for c in columns.scalars())
