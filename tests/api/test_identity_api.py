"""본인인증 over HTTP: booking and emergency requests need a verified parent; a verified account cannot become
another person by verifying again (409), the same person verifying again changes nothing, and only a city
admin resets a verification (audited with the reason), after which the parent verifies anew."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Connection, text

from geo.settings import Settings
from tests.booking_util import ORIGIN_LAT, ORIGIN_LON, bearer, make_centre, make_slot, make_user
from tests.dbutil import client_on

PROBLEM = "application/problem+json"


def _problem(resp, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM)
    return resp.json()  # type: ignore[no-any-return]


def _verify(client: TestClient, headers: dict[str, str], name: str, birth_date: str = "1990-03-04"):  # type: ignore[no-untyped-def]
    start = client.post("/auth/identity/start", headers=headers).json()
    return client.post("/auth/identity/local", headers=headers,
                       json={"state": start["state"], "name": name, "birth_date": birth_date})


def _identity(conn: Connection, user_id: int) -> tuple:
    return tuple(conn.execute(text("SELECT verified_name, verified_birth_date, ci_hash, verified_at FROM users "
                                   "WHERE id = :id"), {"id": user_id}).one())


def _audit(conn: Connection, user_id: int) -> list[tuple]:
    return [tuple(r) for r in conn.execute(text(
        "SELECT action, actor_user_id, before, after FROM audit_log WHERE entity = 'users' AND entity_id = :id "
        "AND action LIKE 'identity.%' ORDER BY id"), {"id": str(user_id)})]


def test_an_unverified_parent_may_not_book_or_ask_for_emergency_care(settings: Settings,
                                                                   connection: Connection) -> None:
    centre = make_centre(connection, "T-IDV-1", lon=ORIGIN_LON + 0.002, lat=ORIGIN_LAT)
    slot = make_slot(connection, centre, places_by_age={"2": 2})
    parent = make_user(connection, "unverified@example.kr", "parent", verified=False)
    headers = bearer(connection, settings, parent)
    client = client_on(settings, connection)
    booking = {"slot_id": slot, "child_age": 2, "phone": "010-1234-5678"}
    emergency = {"lat": ORIGIN_LAT, "lon": ORIGIN_LON, "child_age": 2, "phone": "010-1234-5678", "radius_m": 1000}
    for path, body in (("/bookings", booking), ("/bookings/emergency", emergency)):
        problem = _problem(client.post(path, json=body, headers=headers), 403)
        assert problem["reason"] == "identity_not_verified" and "본인인증" in problem["detail"]
    assert connection.execute(text(
        "SELECT (SELECT count(*) FROM bookings WHERE parent_user_id = :p) + "
        "(SELECT count(*) FROM emergency_requests WHERE parent_user_id = :p)"), {"p": parent}).scalar_one() == 0
    assert _verify(client, headers, "김엄마").status_code == 200
    assert client.post("/bookings", json=booking, headers=headers).status_code == 201
    assert client.post("/bookings/emergency", json=emergency, headers=headers).status_code == 201


def test_reverification_as_another_person_only_after_an_admin_reset(settings: Settings,
                                                                   connection: Connection) -> None:
    parent = make_user(connection, "reverify@example.kr", "parent", verified=False)
    other_parent = make_user(connection, "other@example.kr", "parent", verified=False)
    staff = make_user(connection, "staff@example.kr", "centre_staff",
                      (make_centre(connection, "T-IDV-2"),))
    admin = make_user(connection, "admin@example.kr", "city_admin")
    h = {name: bearer(connection, settings, uid) for name, uid in
         (("parent", parent), ("other", other_parent), ("staff", staff), ("admin", admin))}
    client = client_on(settings, connection)
    first = _verify(client, h["parent"], "김엄마")
    assert first.status_code == 200 and first.json()["verified_name"] == "김엄마"
    verified = _identity(connection, parent)
    assert len(_audit(connection, parent)) == 1
    # The same person again: nothing changes, no second audit row.
    again = _verify(client, h["parent"], "김엄마")
    assert again.status_code == 200 and again.json()["verified_name"] == "김엄마"
    assert _identity(connection, parent) == verified and len(_audit(connection, parent)) == 1
    # Another person on the verified account: 409, nothing stored, nothing audited.
    assert _problem(_verify(client, h["parent"], "이아빠", "1988-07-08"), 409)["reason"] == "identity_mismatch"
    assert _identity(connection, parent) == verified and len(_audit(connection, parent)) == 1
    # Resetting is a city admin's, never the parent's own, another parent's or a centre's.
    reset = {"reason": "민원 2026-123: 보호자 변경"}
    for who in ("parent", "other", "staff"):
        _problem(client.post(f"/admin/users/{parent}/identity/reset", json=reset, headers=h[who]), 403)
    _problem(client.post(f"/admin/users/{parent}/identity/reset", json={"reason": ""}, headers=h["admin"]), 422)
    assert _identity(connection, parent) == verified
    done = client.post(f"/admin/users/{parent}/identity/reset", json=reset, headers=h["admin"])
    assert done.status_code == 200, done.text
    assert done.json()["verified_name"] is None and done.json()["verified_at"] is None
    assert _identity(connection, parent) == (None, None, None, None)
    action, actor, before, after = _audit(connection, parent)[-1]
    assert (action, actor) == ("identity.reset", admin)
    assert before["verified_name"] == "김엄마" and after == {"reason": reset["reason"]}
    assert "ci_hash" not in before
    # A second reset of an unverified account is refused (nothing to reset).
    _problem(client.post(f"/admin/users/{parent}/identity/reset", json=reset, headers=h["admin"]), 409)
    # Now the parent verifies as the other person.
    second = _verify(client, h["parent"], "이아빠", "1988-07-08")
    assert second.status_code == 200 and second.json()["verified_name"] == "이아빠"
    assert [a[0] for a in _audit(connection, parent)] == ["identity.verify", "identity.reset", "identity.verify"]
