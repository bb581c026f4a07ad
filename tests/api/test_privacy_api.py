"""Privacy rights over HTTP: password change and "log out everywhere" revoke sessions, a disabled account stops
at once, a parent lists and removes children, and an account is deleted (entries withdrawn with an audit row,
future bookings cancelled, personal fields pseudonymised, the public chain untouched and still verifying)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, text

from geo.admission import waitlist as wl
from geo.admission.rules import childcare_year
from geo.auth.accounts import issue_token
from geo.booking.bookings import book
from geo.settings import Settings
from tests.accounts_util import PASSWORD, make_cast
from tests.api.privacy_util import writing_client
from tests.booking_util import make_centre, make_slot
from tests.problem_util import problem

NEW_PASSWORD = "a much longer new secret"
BORN = date(childcare_year(date.today()) - 1, 6, 1)  # 0세반 this year


def _bearer(conn: Connection, settings: Settings, user_id: int) -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_token(conn, settings, user_id=user_id, kind="bearer").secret}


def _verify(conn: Connection, user_id: int) -> None:
    conn.execute(text("UPDATE users SET verified_at = now(), verified_name = '김부모', verified_phone = '010-2222-3333', "
                      "verified_birth_date = '1990-01-02' WHERE id = :u"), {"u": user_id})


def test_password_change_keeps_this_session_and_revokes_the_others(settings: Settings, conn: Connection) -> None:
    cast = make_cast(conn, settings)
    client = writing_client(settings, conn)
    this, other = cast.headers["parent"], _bearer(conn, settings, cast.ids["parent"])
    body = {"current_password": "wrong password!", "new_password": NEW_PASSWORD}
    problem(client.post("/auth/password", json=body, headers=this), 403)
    problem(client.post("/auth/password", json={"current_password": PASSWORD, "new_password": "short"},
                        headers=this), 422)
    assert client.get("/auth/me", headers=other).status_code == 200  # nothing changed by the refusals
    resp = client.post("/auth/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
                       headers=this)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"revoked": 1}
    assert client.get("/auth/me", headers=this).status_code == 200
    problem(client.get("/auth/me", headers=other), 401)
    login = {"email": "parent@example.kr", "password": PASSWORD}
    problem(client.post("/auth/token", json=login), 401)
    assert client.post("/auth/token", json=login | {"password": NEW_PASSWORD}).status_code == 200
    actions = conn.execute(text("SELECT action FROM audit_log WHERE entity = 'users' AND entity_id = :u "
                                "ORDER BY id"), {"u": str(cast.ids["parent"])}).scalars().all()
    assert actions[-2:] == ["user.password", "token.revoke_all"]


def test_logout_everywhere(settings: Settings, conn: Connection) -> None:
    cast = make_cast(conn, settings)
    client = writing_client(settings, conn)
    this, other = cast.headers["parent"], _bearer(conn, settings, cast.ids["parent"])
    problem(client.post("/auth/logout-all"), 401)
    assert client.post("/auth/logout-all", headers=this).status_code == 204
    for headers in (this, other):
        problem(client.get("/auth/me", headers=headers), 401)
    assert client.get("/auth/me", headers=cast.headers["staff"]).status_code == 200  # someone else's: untouched


def test_disabled_user_stops_at_once_and_can_be_enabled(settings: Settings, conn: Connection) -> None:
    cast = make_cast(conn, settings)
    client = writing_client(settings, conn)
    h, parent = cast.headers, cast.ids["parent"]
    for role in ("parent", "staff", "officer"):
        problem(client.post(f"/admin/users/{parent}/disable", headers=h[role]), 403)
    problem(client.post(f"/admin/users/{cast.ids['admin']}/disable", headers=h["admin"]), 409)
    problem(client.post("/admin/users/99999999/disable", headers=h["admin"]), 404)
    resp = client.post(f"/admin/users/{parent}/disable", headers=h["admin"])
    assert resp.status_code == 200 and resp.json()["disabled"] is True
    problem(client.get("/auth/me", headers=h["parent"]), 401)
    login = {"email": "parent@example.kr", "password": PASSWORD}
    problem(client.post("/auth/token", json=login), 401)
    assert client.post(f"/admin/users/{parent}/enable", headers=h["admin"]).json()["disabled"] is False
    problem(client.get("/auth/me", headers=h["parent"]), 401)  # revoked tokens stay revoked
    assert client.post("/auth/token", json=login).status_code == 200
    actions = conn.execute(text("SELECT action FROM audit_log WHERE entity = 'users' AND entity_id = :u "
                                "AND action LIKE 'user.%' ORDER BY id"), {"u": str(parent)}).scalars().all()
    assert actions == ["user.create", "user.disable", "user.enable"]


def test_parent_lists_and_removes_children(settings: Settings, conn: Connection) -> None:
    cast = make_cast(conn, settings)
    client = writing_client(settings, conn)
    h = cast.headers
    _verify(conn, cast.ids["parent"])
    ids = []
    for name in ("첫째", "둘째"):
        resp = client.post("/waitlist/children", json={"name": name, "birth_date": BORN.isoformat()},
                           headers=h["parent"])
        assert resp.status_code == 201, resp.text
        ids.append(resp.json()["id"])
    entry = client.post("/waitlist/entries", json={"child_id": ids[0], "centre": cast.own.code}, headers=h["parent"])
    assert entry.status_code == 201, entry.text
    problem(client.get("/waitlist/children"), 401)
    listed = client.get("/waitlist/children", headers=h["parent"]).json()
    assert [(c["id"], c["name"], c["live_entries"]) for c in listed] == [(ids[0], "첫째", 1), (ids[1], "둘째", 0)]
    assert client.get("/waitlist/children", headers=h["staff"]).status_code == 403
    # Someone else's child: 404; a child with a live entry: 409 naming it.
    problem(client.delete(f"/waitlist/children/{ids[1]}", headers=h["staff"]), 403)
    other = issue_token(conn, settings, user_id=_second_parent(conn), kind="bearer").secret
    problem(client.delete(f"/waitlist/children/{ids[1]}", headers={"Authorization": f"Bearer {other}"}), 404)
    assert entry.json()["entry"] in problem(client.delete(f"/waitlist/children/{ids[0]}", headers=h["parent"]),
                                            409)["detail"]
    assert client.delete(f"/waitlist/children/{ids[1]}", headers=h["parent"]).status_code == 204
    assert [c["id"] for c in client.get("/waitlist/children", headers=h["parent"]).json()] == [ids[0]]
    # Withdrawn, the first child can go too; the centre's chain keeps its events and still verifies.
    assert client.post(f"/waitlist/entries/{entry.json()['entry']}/withdraw", headers=h["parent"]).status_code == 200
    chain_before = wl.chain_rows(conn, cast.own.id)
    assert client.delete(f"/waitlist/children/{ids[0]}", headers=h["parent"]).status_code == 204
    assert client.get("/waitlist/children", headers=h["parent"]).json() == []
    assert wl.chain_rows(conn, cast.own.id) == chain_before
    assert any(r.event.get("entry") == entry.json()["entry"] for r in chain_before)
    assert wl.verify_centre(conn, cast.own.id) == []
    assert "첫째" not in str(conn.execute(text("SELECT array_agg(after::text) FROM audit_log "
                                             "WHERE action = 'child.remove'")).scalar_one())


def _second_parent(conn: Connection) -> int:
    return int(conn.execute(text("INSERT INTO users (email, password_hash, role, verified_at) "
                                 "VALUES ('parent2@example.kr', 'x', 'parent', now()) RETURNING id")).scalar_one())


def test_account_deletion(settings: Settings, conn: Connection) -> None:
    cast = make_cast(conn, settings)
    client = writing_client(settings, conn)
    h, parent = cast.headers, cast.ids["parent"]
    _verify(conn, parent)
    kid = client.post("/waitlist/children", json={"name": "홍길순", "birth_date": BORN.isoformat()},
                      headers=h["parent"]).json()
    entry = client.post("/waitlist/entries", json={"child_id": kid["id"], "centre": cast.own.code},
                        headers=h["parent"]).json()["entry"]
    centre = make_centre(conn, "T-PRIV-1")
    future = book(conn, slot_id=make_slot(conn, centre, places_by_age={"2": 1}), parent_user_id=parent,
                  child_age=2, phone="010-2222-3333", child_name="홍길순")
    past_slot = make_slot(conn, centre, places_by_age={"2": 1}, starts_in=timedelta(days=-3))
    past = book(conn, slot_id=past_slot, parent_user_id=parent, child_age=2, phone="010-2222-3333",
                child_name="홍길순", now=datetime.now(UTC) - timedelta(days=4))
    chain_before = wl.chain_rows(conn, cast.own.id)

    problem(client.request("DELETE", "/auth/me", json={"password": "not my password"}, headers=h["parent"]), 403)
    resp = client.request("DELETE", "/auth/me", json={"password": PASSWORD}, headers=h["parent"])
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert (out["entries_withdrawn"], out["bookings_cancelled"], out["bookings_pseudonymised"],
            out["children_deleted"]) == (1, 1, 2, 1)

    # The entry was withdrawn with an audited event, the chain only grew and still verifies.
    withdrawn = conn.execute(text("SELECT before, after FROM audit_log WHERE action = 'waitlist.withdraw' "
                                  "AND entity_id = :e"), {"e": entry}).one()
    assert (withdrawn.before["status"], withdrawn.after) == ("waiting", {"status": "withdrawn",
                                                                           "reason": "account_deleted"})
    chain_after = wl.chain_rows(conn, cast.own.id)
    assert chain_after[:len(chain_before)] == chain_before
    assert [(r.event["type"], r.event.get("status")) for r in chain_after[len(chain_before):]
            if r.event.get("entry") == entry] == [("withdraw", "withdrawn")]
    assert wl.verify_centre(conn, cast.own.id) == []
    assert "홍길순" not in str([r.event for r in chain_after])
    # Bookings: the future one cancelled, both kept without name or phone; texts about them erased.
    rows = {r.id: r for r in conn.execute(text("SELECT id, status, child_name, phone FROM bookings "
                                                "WHERE parent_user_id = :u"), {"u": parent})}
    assert rows[future["id"]].status == "cancelled" and rows[past["id"]].status == "booked"
    assert {(r.child_name, r.phone) for r in rows.values()} == {(None, "")}
    assert conn.execute(text("SELECT count(*) FROM notification_outbox WHERE recipient = '010-2222-3333' "
                             "OR (status = 'pending' AND idempotency_key LIKE 'booking:%' AND recipient = '')")
                        ).scalar_one() == 0
    # The account: a disabled tombstone; no child, token or personal field left; audit rows pseudonymised.
    user = conn.execute(text("SELECT * FROM users WHERE id = :u"), {"u": parent}).mappings().one()
    assert user["disabled"] and user["email"] == f"deleted-{parent}@deleted.invalid"
    assert all(user[k] is None for k in ("display_name", "verified_name", "verified_phone", "verified_birth_date",
                                          "ci_hash", "verified_at"))
    assert conn.execute(text("SELECT count(*) FROM children WHERE parent_user_id = :u"), {"u": parent}
                        ).scalar_one() == 0
    audit_text = str(conn.execute(text("SELECT array_agg(before::text || after::text) FROM audit_log")).scalar_one())
    assert "parent@example.kr" not in audit_text and "010-2222-3333" not in audit_text
    assert "user.delete" in conn.execute(text("SELECT array_agg(action) FROM audit_log WHERE entity_id = :u"),
                                         {"u": str(parent)}).scalar_one()
    problem(client.get("/auth/me", headers=h["parent"]), 401)
    problem(client.post("/auth/token", json={"email": "parent@example.kr", "password": PASSWORD}), 401)
    # The last city admin cannot delete their account.
    problem(client.request("DELETE", "/auth/me", json={"password": PASSWORD}, headers=h["admin"]), 409)


def test_wrong_passwords_on_sensitive_changes_count_towards_the_lockout(settings: Settings, conn: Connection) -> None:
    """A stolen session cannot guess the account's password through password change or account deletion: each
    wrong password is a login failure, and past ``login_max_failures`` the account is locked (429, Retry-After),
    for logins too, even with the right password."""
    cast = make_cast(conn, settings)
    client = writing_client(settings, conn)
    this = cast.headers["parent"]
    limit = settings.auth.login_max_failures
    for attempt in range(limit):
        guess = f"guess number {attempt}!"
        if attempt % 2:
            problem(client.request("DELETE", "/auth/me", json={"password": guess}, headers=this), 403)
        else:
            problem(client.post("/auth/password", json={"current_password": guess, "new_password": NEW_PASSWORD},
                                headers=this), 403)
    locked = client.post("/auth/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
                         headers=this)
    problem(locked, 429)
    assert int(locked.headers["retry-after"]) >= 1
    problem(client.post("/auth/token", json={"email": "parent@example.kr", "password": PASSWORD}), 429)
    failures = conn.execute(text("SELECT count(*) FROM login_failures WHERE email = 'parent@example.kr'")).scalar_one()
    assert failures == limit
    assert client.get("/auth/me", headers=this).status_code == 200  # the account itself is untouched
