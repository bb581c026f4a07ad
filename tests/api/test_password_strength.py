"""Passwords (issue #20): length 10 was the only rule (``aaaaaaaaaa``, ``password12`` and the e-mail itself
were accepted). Now a zxcvbn estimate, offline, against common and breached passwords and the account's own
data, on sign-up and password change."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, text

from geo.auth.accounts import MIN_PASSWORD_SCORE, check_password
from geo.errors import InvalidQuery
from geo.settings import Settings
from tests.accounts_util import PASSWORD, make_cast
from tests.dbutil import client_on
from tests.problem_util import problem


@pytest.mark.parametrize("password", ["aaaaaaaaaa", "password12", "qwertyuiop", "1234567890", "iloveyou12",
                                      "dolbom2026!"])
def test_signup_refuses_guessable_passwords(settings: Settings, conn: Connection, password: str) -> None:
    client = client_on(settings, conn)
    body = problem(client.post("/auth/signup", json={"email": "weak@example.kr", "password": password}), 422)
    assert body["param"] == "password" and body["strength"] < MIN_PASSWORD_SCORE
    assert "too easy to guess" in body["detail"]
    assert conn.execute(text("SELECT count(*) FROM users WHERE email = 'weak@example.kr'")).scalar_one() == 0


def test_the_accounts_own_data_is_not_a_password(settings: Settings, conn: Connection) -> None:
    client = client_on(settings, conn)
    email = "kimminjung1987@example.kr"
    assert problem(client.post("/auth/signup", json={"email": email, "password": email}), 422)["param"] == "password"
    assert problem(client.post("/auth/signup", json={"email": email, "password": "kimminjung1987"}),
                   422)["param"] == "password"
    resp = client.post("/auth/signup", json={"email": email, "password": PASSWORD})
    assert resp.status_code < 300, resp.text


def test_strong_passwords_pass() -> None:
    for password in (PASSWORD, "ckdrnehfqhaqt2", "Tr0ub4dor&3x-plain"):
        check_password(password, user_inputs=("mom@example.kr",))
    with pytest.raises(InvalidQuery):
        check_password("mom@example.kr!", user_inputs=("mom@example.kr",))


def test_password_change_checks_the_new_password(settings: Settings, conn: Connection) -> None:
    cast = make_cast(conn, settings)
    client = client_on(settings, conn)
    for weak in ("password12", "parent@example.kr"):
        body = problem(client.post("/auth/password", json={"current_password": PASSWORD, "new_password": weak},
                                   headers=cast.headers["parent"]), 422)
        assert body["param"] == "new_password", body
    resp = client.post("/auth/password", json={"current_password": PASSWORD, "new_password": "a much longer secret"},
                       headers=cast.headers["parent"])
    assert resp.status_code == 200, resp.text
