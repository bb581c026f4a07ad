"""The write-session dependency: a request commits all of its writes or none."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.deps import TxSessionDep
from api.errors import install_error_handlers
from geo.errors import InvalidQuery


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
