"""RFC 9457 problem responses, checked the same way by every API test."""

from __future__ import annotations

from typing import Any

from api.schemas.facilities import Problem

PROBLEM = "application/problem+json"


def problem(response: Any, status: int = 422) -> dict[str, Any]:
    """The body of ``response`` after checking that it is a problem+json of ``status`` with its members."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    Problem.model_validate(body)
    assert body["status"] == status and body["title"] and body["detail"]
    return dict(body)
