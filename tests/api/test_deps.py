"""The write-session dependency: a request commits all of its writes or none."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.deps import TxSessionDep
from api.errors import install_error_handlers
from api.security import CurrentUser
from geo.db import make_engine
from geo.errors import InvalidQuery
from geo.settings import Settings
from tests.booking_util import bearer, make_user


@pytest.fixture()
def scratch(engine: Engine) -> Iterator[str]:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS tx_dep_scratch (v integer)"))
        conn.execute(text("TRUNCATE tx_dep_scratch"))
    yield "tx_dep_scratch"
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE tx_dep_scratch"))


def test_write_session_commits_on_success_and_rolls_back_on_error(engine: Engine, scratch: str) -> None:
    app = FastAPI()
    app.state.engine = engine
    install_error_handlers(app)

    @app.post("/write/{value}")
    def write(value: int, session: TxSessionDep) -> dict[str, int]:
        session.execute(text("INSERT INTO tx_dep_scratch (v) VALUES (:v)"), {"v": value})
        if value < 0:
            raise InvalidQuery("negative", param="value")
        return {"v": value}

    with TestClient(app) as client:
        assert client.post("/write/1").status_code == 200
        failed = client.post("/write/-1")
    assert failed.status_code == 422 and failed.headers["content-type"].startswith("application/problem+json")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT array_agg(v) FROM tx_dep_scratch")).scalar_one() == [1]


def test_an_authenticated_writing_request_holds_one_pool_connection_at_a_time(engine: Engine, settings: Settings) -> None:
    """With a pool of one connection, a handler that needs the caller (``CurrentUser``) and a write session
    (``TxSessionDep``) still answers: the caller's token is resolved on a connection given back before the
    handler takes its own. Holding it deadlocked the API's pool under load (20 rank checks each holding one
    connection and waiting for a second) until the pool timeout; such a timeout is now a 503, never a 500."""
    with engine.begin() as conn:
        user_id = make_user(conn, "one-connection@example.test", "parent")
        headers = bearer(conn, settings, user_id)
    tiny = make_engine(settings=settings, pool_size=1, max_overflow=0, pool_timeout=2)
    app = FastAPI()
    app.state.engine = tiny
    install_error_handlers(app)

    @app.post("/whoami")
    def whoami(user: CurrentUser, session: TxSessionDep) -> dict[str, int]:
        backend = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        return {"user": user.user_id, "backend": int(backend)}

    @app.post("/two-connections")
    def two(session: TxSessionDep) -> dict[str, int]:
        session.execute(text("SELECT 1"))
        with tiny.connect() as other:  # a second checkout from the exhausted pool
            other.execute(text("SELECT 1"))
        return {"ok": 1}

    try:
        with TestClient(app) as client:
            for _ in range(3):
                answer = client.post("/whoami", headers=headers)
                assert answer.status_code == 200, answer.text
                assert answer.json()["user"] == user_id
            assert tiny.pool.checkedout() == 0
            timed_out = client.post("/two-connections")
            assert timed_out.status_code == 503
            assert timed_out.headers["content-type"].startswith("application/problem+json")
            assert "Retry-After" in timed_out.headers
    finally:
        tiny.dispose()
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM auth_tokens WHERE user_id = :u"), {"u": user_id})
            conn.execute(text("DELETE FROM users WHERE id = :u"), {"u": user_id})
