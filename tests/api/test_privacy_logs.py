"""Personal data stays out of the server log: a database error during a request logs its class, SQLSTATE and
constraint, never the statement's parameters nor the server's message (which quotes the value)."""

from __future__ import annotations

import logging
from datetime import date

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from api.routers import waitlist as waitlist_router
from geo.settings import Settings
from tests.accounts_util import make_cast
from tests.api.privacy_util import writing_client

CHILD = "홍길순"


def test_engine_errors_hide_parameters(engine: Engine) -> None:
    with engine.connect() as c, pytest.raises(DBAPIError) as caught:
        c.execute(text("SELECT CAST(:name AS text), 1 / 0"), {"name": CHILD})
    assert "division by zero" in str(caught.value)
    assert CHILD not in str(caught.value)


def test_database_error_in_a_request_logs_no_child_name(settings: Settings, conn: Connection,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    cast = make_cast(conn, settings)
    conn.execute(text("UPDATE users SET verified_at = now() WHERE id = :u"), {"u": cast.ids["parent"]})
    client = writing_client(settings, conn)

    def failing_register_child(c: Connection, *, name: str, **_: object) -> dict:
        # A statement the server refuses with the request's value in both its message and its parameters.
        c.execute(text("SELECT CAST(:name AS integer)"), {"name": name})
        raise AssertionError("unreachable")

    monkeypatch.setattr(waitlist_router.wl, "register_child", failing_register_child)
    with caplog.at_level(logging.DEBUG):
        resp = client.post("/waitlist/children", headers=cast.headers["parent"],
                           json={"name": CHILD, "birth_date": date(2024, 6, 1).isoformat()})
    assert resp.status_code == 500
    assert CHILD not in resp.text
    assert "database error on /waitlist/children" in caplog.text
    assert "sqlstate=22P02" in caplog.text  # still useful: what kind of error, where
    assert CHILD not in caplog.text
