"""The application state and the write path: one ``AppState`` built by the lifespan; one write dependency
(``WriteTx``) whose transaction commits in the handler's own thread step (``WriteRoute``), all or nothing; no
``commit()`` anywhere else under api/."""

from __future__ import annotations

import ast
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, text

from api.app import DolbomAPI, create_app
from api.deps import (
    AnonymousIdempotencyKeyDep,
    CurrentUser,
    WriteRoute,
    WriteTx,
    check_write_routes,
    get_app_settings,
    get_engine,
)
from api.errors import install_error_handlers
from api.state import AppState
from geo.db import make_engine
from geo.errors import InvalidQuery
from geo.settings import Settings
from geo.vacancy.hub import VacancyHub
from tests.booking_util import bearer, make_user

API = Path(__file__).resolve().parents[2] / "api"


def _app(engine: Engine) -> FastAPI:
    """A bare app with the problem handlers, write routes and ``engine`` as the app's engine."""
    app = FastAPI()
    app.router.route_class = WriteRoute
    app.dependency_overrides[get_engine] = lambda: engine
    install_error_handlers(app)
    return app


@pytest.fixture()
def scratch(engine: Engine) -> Iterator[str]:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS tx_dep_scratch (v integer)"))
        conn.execute(text("TRUNCATE tx_dep_scratch"))
    yield "tx_dep_scratch"
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE tx_dep_scratch"))


def test_write_session_commits_on_success_and_rolls_back_on_error(engine: Engine, scratch: str) -> None:
    app = _app(engine)

    @app.post("/write/{value}")
    def write(value: int, tx: WriteTx) -> dict[str, int]:
        tx.execute(text("INSERT INTO tx_dep_scratch (v) VALUES (:v)"), {"v": value})
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
    (``WriteTx``) still answers: the caller's token is resolved on a connection given back before the
    handler takes its own. Holding it deadlocked the API's pool under load (20 rank checks each holding one
    connection and waiting for a second) until the pool timeout; such a timeout is now a 503, never a 500."""
    with engine.begin() as conn:
        user_id = make_user(conn, "one-connection@example.test", "parent")
        headers = bearer(conn, settings, user_id)
    tiny = make_engine(settings=settings, pool_size=1, max_overflow=0, pool_timeout=2)
    app = _app(tiny)

    @app.post("/whoami")
    def whoami(user: CurrentUser, tx: WriteTx) -> dict[str, int]:
        backend = tx.execute(text("SELECT pg_backend_pid()")).scalar_one()
        return {"user": user.user_id, "backend": int(backend)}

    @app.post("/two-connections")
    def two(tx: WriteTx) -> dict[str, int]:
        tx.execute(text("SELECT 1"))
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


def test_the_write_transaction_commits_in_the_handlers_thread_before_the_response(engine: Engine,
                                                                                  scratch: str) -> None:
    """Issue #19: a commit left to a later thread-pool step waits for a free worker thread while holding its
    locks; with every thread taken by requests waiting on those locks nothing moved until the pool timed out."""
    app = _app(engine)
    seen: dict[str, int] = {}

    @app.post("/write")
    def write(tx: WriteTx) -> dict[str, int]:
        seen["handler"] = threading.get_ident()
        event.listen(tx, "after_commit", lambda _session: seen.setdefault("commit", threading.get_ident()))
        tx.execute(text("INSERT INTO tx_dep_scratch (v) VALUES (7)"))
        return {"v": 7}

    with TestClient(app) as client:
        assert client.post("/write").status_code == 200
    assert seen["commit"] == seen["handler"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT array_agg(v) FROM tx_dep_scratch")).scalar_one() == [7]


def test_a_keyed_response_is_stored_and_committed_with_the_write_in_the_handlers_thread(
        engine: Engine, settings: Settings, scratch: str) -> None:
    """With an Idempotency-Key the answer is serialised, stored in the same transaction as the handler's writes
    and committed in the handler's own thread step (not in a later one, issue #19); a retry replays it."""
    app = _app(engine)
    app.dependency_overrides[get_app_settings] = lambda: settings
    seen: dict[str, object] = {}

    @app.post("/keyed", status_code=201)
    def keyed(tx: WriteTx, _key: AnonymousIdempotencyKeyDep) -> dict[str, int]:
        seen["handler"] = threading.get_ident()

        def committed(_session: object) -> None:
            seen["commit"] = threading.get_ident()
            with engine.connect() as other:  # committed: visible to another connection at once
                seen["stored"] = other.execute(text("SELECT status FROM idempotency_keys WHERE caller = "
                                                    "'anonymous' AND key = 'deps-key-1'")).scalar_one_or_none()

        event.listen(tx, "after_commit", committed)
        value = int(tx.execute(text("INSERT INTO tx_dep_scratch (v) VALUES (5) RETURNING v")).scalar_one())
        return {"v": value}

    headers = {"Idempotency-Key": "deps-key-1"}
    try:
        with TestClient(app) as client:
            first = client.post("/keyed", json={"a": 1}, headers=headers)
            again = client.post("/keyed", json={"a": 1}, headers=headers)
        assert first.status_code == again.status_code == 201, first.text
        assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
        assert seen["commit"] == seen["handler"] and seen["stored"] == 201
        with engine.connect() as conn:
            assert conn.execute(text("SELECT array_agg(v) FROM tx_dep_scratch")).scalar_one() == [5]
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM idempotency_keys WHERE caller = 'anonymous' AND key = 'deps-key-1'"))


def test_a_keyed_handler_must_be_on_a_write_route_and_sync() -> None:
    app = FastAPI()  # plain APIRoutes

    @app.post("/keyed")
    def keyed(_key: AnonymousIdempotencyKeyDep) -> dict[str, int]:
        return {}

    with pytest.raises(RuntimeError, match="WriteRoute"):
        check_write_routes(app)
    on_write_routes = FastAPI()
    on_write_routes.router.route_class = WriteRoute
    with pytest.raises(RuntimeError, match="sync"):
        @on_write_routes.post("/keyed")
        async def keyed_async(_key: AnonymousIdempotencyKeyDep) -> dict[str, int]:
            return {}


def test_a_writing_handler_must_be_on_a_write_route(engine: Engine) -> None:
    app = FastAPI()  # plain APIRoutes

    @app.post("/write")
    def write(tx: WriteTx) -> dict[str, int]:
        return {}

    with pytest.raises(RuntimeError, match="WriteRoute"):
        check_write_routes(app)


def test_nothing_under_api_commits_but_the_write_dependency() -> None:
    """One write path: ``.commit(`` appears only in ``api/deps.py``'s ``get_write_tx`` and ``_committing``, and no
    module keeps untyped attributes on ``app.state`` (everything is in ``AppState``)."""
    allowed = {("deps.py", "get_write_tx"), ("deps.py", "_committing")}
    commits, app_state = [], []
    for path in sorted(API.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for top in tree.body:  # module-level statements, with everything nested in them
            name = getattr(top, "name", "<module>")
            for node in ast.walk(top):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr == "commit" and (path.name, name) not in allowed):
                    commits.append(f"{path.relative_to(API)}:{node.lineno} in {name}")
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr == "state" and isinstance(node.value, ast.Attribute)
                    and node.value.attr == "app"):
                app_state.append(f"{path.relative_to(API)}:{node.lineno}")
    assert commits == []
    assert app_state == []


def test_the_app_state_is_built_by_the_lifespan_with_the_vacancy_hub(settings: Settings, engine: Engine) -> None:
    app = create_app(settings)
    assert isinstance(app, DolbomAPI) and app.dolbom is None
    with TestClient(app) as client:
        state = app.dolbom
        assert isinstance(state, AppState) and state.settings is settings
        # Before any stream request: the hub exists (it was created lazily by the first stream before).
        assert isinstance(state.vacancy_hub, VacancyHub) and not state.vacancy_hub.subscriptions
        assert client.get("/health").status_code == 200
    assert app.dolbom is None  # closed with the lifespan
    assert vars(app.state).get("_state") == {}  # nothing kept on app.state
