"""Both OpenAPI documents are valid (``/openapi.json`` as 3.1, the OGC service description ``/ogc/api`` as the
3.0.3 it declares), every parameter's default lies within its own bounds, and the security declared per
operation is the security the API really asks for: an operation that answers 401 without credentials names the
login schemes, a public one names none."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import OpenAPIV30SpecValidator, OpenAPIV31SpecValidator
from sqlalchemy import Engine

from api.app import create_app
from api.openapi import SECURITY_SCHEMES, openapi_30
from geo.layers.registry import LAYERS
from geo.settings import Settings

UNSAFE = {"post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return dict(create_app(Settings()).openapi())


@pytest.fixture()
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in spec["paths"].items() for method, op in item.items()]


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_app_openapi_is_valid_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1.")
    OpenAPIV31SpecValidator(spec).validate()


def test_ogc_service_description_is_valid_3_0_3(client: TestClient) -> None:
    response = client.get("/ogc/api")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"] == "3.0.3"
    OpenAPIV30SpecValidator(doc).validate()
    assert "summary" not in doc["info"]
    assert not [node for node in _walk(doc) if node.get("type") == "null" or isinstance(node.get("type"), list)]
    # Every OGC path of the app is described, relative to /ogc.
    assert set(doc["paths"]) == {p.removeprefix("/ogc").replace("collection_id", "collectionId")
                                 for p in client.app.openapi()["paths"] if p.startswith("/ogc/")}  # type: ignore[attr-defined]


def test_the_whole_app_document_converts_to_valid_3_0(spec: dict[str, Any]) -> None:
    """Every JSON Schema 2020-12 construct the app uses (null types, const, examples, prefixItems, numeric
    exclusive bounds, propertyNames) has a 3.0 form."""
    doc = openapi_30(spec)
    OpenAPIV30SpecValidator(doc).validate()
    found = list(_walk(doc))
    assert not [n for n in found if n.get("type") == "null" or isinstance(n.get("type"), list)]
    assert not [n for n in found if {"const", "prefixItems", "propertyNames"} & set(n)]
    assert any(n.get("nullable") is True for n in found)
    # The original is left as it was.
    assert spec["openapi"].startswith("3.1.")


def test_every_parameter_default_is_within_its_bounds(spec: dict[str, Any]) -> None:
    outside = []
    for path, method, op in _operations(spec):
        for parameter in op.get("parameters", []):
            schema = parameter.get("schema", {})
            default = schema.get("default")
            if not isinstance(default, int | float) or isinstance(default, bool):
                continue
            for member in schema.get("anyOf", [schema]):
                if member.get("type") not in ("integer", "number"):
                    continue
                low, high = member.get("minimum"), member.get("maximum")
                if (low is not None and default < low) or (high is not None and default > high):
                    outside.append((method, path, parameter["name"], default, low, high))
    assert outside == []


def test_the_waitlist_chain_limit_documents_its_own_bound(spec: dict[str, Any]) -> None:
    (limit,) = [p for p in spec["paths"]["/waitlist/centres/{code}/chain"]["get"]["parameters"]
                if p["name"] == "limit"]
    assert limit["schema"]["default"] <= limit["schema"]["maximum"]


def test_security_schemes_are_declared(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert schemes == SECURITY_SCHEMES
    assert schemes["bearerToken"] == {**schemes["bearerToken"], "type": "http", "scheme": "bearer"}
    assert (schemes["sessionCookie"]["in"], schemes["sessionCookie"]["name"]) == ("cookie", "dolbom_session")
    assert (schemes["csrfToken"]["in"], schemes["csrfToken"]["name"]) == ("header", "X-CSRF-Token")


def _concrete(path: str) -> str:
    layer = next(iter(LAYERS))
    return re.sub(r"\{[^}]+\}", lambda m: layer if m.group(0) in ("{collection_id}", "{layer_id}") else "1", path)


def test_operations_declare_the_security_they_enforce(client: TestClient, spec: dict[str, Any]) -> None:
    """Each operation is called without credentials: a 401 must come with declared security (bearer, or the
    session cookie plus the CSRF header on unsafe methods); anything else with none."""
    checked = 0
    for path, method, op in _operations(spec):
        if "text/event-stream" in op["responses"].get("200", {}).get("content", {}):
            assert "security" not in op, path  # the live stream is public (and never ends: not called)
            continue
        response = client.request(method.upper(), _concrete(path))
        checked += 1
        if response.status_code == 401:
            session = {"sessionCookie": [], **({"csrfToken": []} if method in UNSAFE else {})}
            assert op.get("security") == [{"bearerToken": []}, session], (method, path)
            assert "401" in op["responses"], (method, path)
        else:
            # Public, or a login that is optional (the map's own applications): then anonymous ({}) is listed too.
            assert "security" not in op or {} in op["security"], (method, path, response.status_code)
    assert checked > 40
    assert any("security" in op for _, _, op in _operations(spec))
