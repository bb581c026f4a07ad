"""The app factory and /health against the real test database."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from geo.settings import Settings


def test_health_reports_postgis(settings: Settings, engine) -> None:
    with TestClient(create_app(settings)) as client:
        body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["database"]["postgis"].startswith("3.")
    assert isinstance(body["facilities"], int)


def test_health_is_503_when_database_unreachable(tmp_path) -> None:
    bad = Settings(DATABASE_URL=f"postgresql://postgres@/nowhere?host={tmp_path}&port=1")
    with TestClient(create_app(bad)) as client:
        response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


def test_unknown_route_is_problem_json(settings: Settings, engine) -> None:
    with TestClient(create_app(settings)) as client:
        response = client.get("/no-such-thing")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 404
