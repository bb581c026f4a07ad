"""Account mails (issue #20): e-mail confirmation before an account may act, sign-up that does not reveal
which addresses exist, and a password reset so that a lockout is not a denial of service."""

from __future__ import annotations

from sqlalchemy import Connection, text

from geo.settings import Settings
from tests.accounts_util import PASSWORD, mail_to, mailed_token, make_cast, valid_report
from tests.booking_util import make_centre, make_slot, verify
from tests.dbutil import client_on
from tests.problem_util import problem

NEW_PASSWORD = "a quite different secret"


def _token(client, email: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    resp = client.post("/auth/token", json={"email": email, "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    return {"Authorization": "Bearer " + resp.json()["access_token"]}


def test_an_unconfirmed_account_reads_but_does_not_act(settings: Settings, connection: Connection) -> None:
    """The report: a fresh account with no e-mail check booked a slot's every place."""
    client = client_on(settings, connection)
    email = "fresh@example.kr"
    assert client.post("/auth/signup", json={"email": email, "password": PASSWORD}).status_code == 202
    headers = _token(client, email)  # may log in
    me = client.get("/auth/me", headers=headers).json()
    assert me["email_confirmed_at"] is None
    verify(connection, me["id"], name="새부모")
    slot = make_slot(connection, make_centre(connection, "T-MAIL-1"), places_by_age={"2": 5})
    refused = problem(client.post("/bookings", json={"slot_id": slot, "child_age": 2}, headers=headers), 403)
    assert refused["reason"] == "email_not_confirmed"
    body = {"lat": 37.556, "lon": 126.91, "child_age": 2, "radius_m": 1000}
    assert problem(client.post("/bookings/emergency", json=body, headers=headers), 403)["reason"] == \
        "email_not_confirmed"
    assert client.get("/bookings/mine", headers=headers).status_code == 200  # reads
    # The mail's token confirms (once); then the account acts.
    token = mailed_token(connection, email)
    assert client.post("/auth/confirm-email", json={"token": token}).status_code == 200
    assert problem(client.post("/auth/confirm-email", json={"token": token}), 422)["param"] == "token"
    assert client.get("/auth/me", headers=headers).json()["email_confirmed_at"] is not None
    made = client.post("/bookings", json={"slot_id": slot, "child_age": 2}, headers=headers)
    assert made.status_code == 201, made.text


def test_staff_of_an_unconfirmed_account_cannot_report(settings: Settings, conn: Connection) -> None:
    cast = make_cast(conn, settings)  # accounts created by an admin or a fixture are confirmed
    client = client_on(settings, conn)
    url = f"/vacancy/centres/{cast.own.code}/reports"
    conn.execute(text("UPDATE users SET email_confirmed_at = NULL WHERE id = :u"), {"u": cast.ids["staff"]})
    refused = client.post(url, json=valid_report(cast.own), headers=cast.headers["staff"])
    assert problem(refused, 403)["reason"] == "email_not_confirmed"


def test_signup_does_not_reveal_registered_addresses(settings: Settings, connection: Connection) -> None:
    """The report: a second sign-up answered 409 naming the address."""
    client = client_on(settings, connection)
    first = client.post("/auth/signup", json={"email": "taken@example.kr", "password": PASSWORD})
    again = client.post("/auth/signup", json={"email": "Taken@example.kr", "password": "another good secret"})
    new = client.post("/auth/signup", json={"email": "free@example.kr", "password": PASSWORD})
    assert first.status_code == again.status_code == new.status_code == 202
    assert first.json() == again.json() == new.json()
    assert "taken@example.kr" not in again.text
    # The owner of the address hears of it; the password was not changed.
    assert len(mail_to(connection, "taken@example.kr", "signup_existing")) == 1
    assert len(mail_to(connection, "taken@example.kr", "confirm_email")) == 1
    assert client.post("/auth/token", json={"email": "taken@example.kr", "password": PASSWORD}).status_code == 200


def test_password_reset_ends_a_lockout(settings: Settings, connection: Connection) -> None:
    """The report: anyone who knows an address can keep the account locked by failing logins."""
    cast = make_cast(connection, settings)
    client = client_on(settings, connection)
    email = "parent@example.kr"
    for _ in range(settings.auth.login_max_failures):
        client.post("/auth/token", json={"email": email, "password": "wrong password"})
    assert client.post("/auth/token", json={"email": email, "password": PASSWORD}).status_code == 429
    unknown = client.post("/auth/password-reset", json={"email": "nobody@example.kr"})
    asked = client.post("/auth/password-reset", json={"email": email})
    assert unknown.status_code == asked.status_code == 202 and unknown.json() == asked.json()
    assert mail_to(connection, "nobody@example.kr", "password_reset") == []
    token = mailed_token(connection, email, "password_reset")
    weak = client.post("/auth/password-reset/confirm", json={"token": token, "new_password": "password12"})
    assert problem(weak, 422)["param"] == "new_password"
    done = client.post("/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD})
    assert done.status_code == 200, done.text
    assert done.json()["revoked"] >= 1
    assert client.get("/auth/me", headers=cast.headers["parent"]).status_code == 401  # sessions revoked
    assert client.post("/auth/token", json={"email": email, "password": NEW_PASSWORD}).status_code == 200
    again = client.post("/auth/password-reset/confirm", json={"token": token, "new_password": "yet another secret"})
    assert problem(again, 422)["param"] == "token"


def test_account_mails_to_one_address_are_capped(settings: Settings, connection: Connection) -> None:
    make_cast(connection, settings)
    client = client_on(settings.updated(DOLBOM_LIMIT_MAIL_PER_ACCOUNT_DAY=2), connection)
    for _ in range(4):
        assert client.post("/auth/password-reset", json={"email": "parent@example.kr"}).status_code == 202
    assert len(mail_to(connection, "parent@example.kr", "password_reset")) == 2
