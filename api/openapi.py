"""The OpenAPI document as the API really answers: every error as RFC 9457 ``application/problem+json``.

FastAPI documents its own ``HTTPValidationError`` body for 422; ``api/errors.py`` answers problem+json instead,
for malformed values and for domain errors alike. ``install_openapi`` post-processes the generated document once:
each operation's 422 (and 404/409/503 where they happen) points at the ``Problem`` schema, and the bounds that come
from settings (``max_page_limit``, ``max_radius_m``) are written into the parameters they bound.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from api.errors import PROBLEM_JSON
from api.idempotency import IDEMPOTENCY_HEADER
from api.schemas.facilities import Problem
from api.security import current_user, optional_user
from geo.settings import Settings

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

# Default descriptions of the problem statuses an operation may answer.
DESCRIPTIONS = {
    "400": "The request body is not valid JSON (problem+json, RFC 9457)",
    "401": "Not authenticated: no, an invalid or an expired session or bearer token (problem+json, RFC 9457)",
    "403": "Authenticated but not allowed: role or policy, or a cookie session without its X-CSRF-Token "
           "(problem+json, RFC 9457)",
    "404": "Not found (problem+json, RFC 9457)",
    "409": "Conflict with the loaded data (problem+json, RFC 9457)",
    "422": "Invalid request: a malformed or out-of-bounds parameter, or a query the domain rejects "
           "(problem+json, RFC 9457; `param` names the parameter when one is at fault)",
    "503": "Database unavailable (problem+json, RFC 9457); retry after `Retry-After` seconds",
}


def _settings_bounds(settings: Settings) -> dict[str, tuple[str, float]]:
    """Parameter name -> (JSON Schema keyword, bound) for bounds that are settings."""
    return {
        "limit": ("maximum", settings.max_page_limit),
        "k": ("maximum", settings.max_page_limit),
        "radius_m": ("maximum", settings.max_radius_m),
        "max_distance_m": ("maximum", settings.max_radius_m),
    }


def _problem_response(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}}}
    if retry_after:
        response["headers"] = {"Retry-After": {
            "description": "Seconds to wait before retrying", "schema": {"type": "integer", "minimum": 0}}}
    return response


def _tighten(parameter: dict[str, Any], keyword: str, bound: float) -> None:
    """Lower a parameter's documented maximum to ``bound`` (never raise it)."""
    schema = parameter.get("schema", {})
    targets = [s for s in schema.get("anyOf", [schema]) if s.get("type") in ("integer", "number")]
    for target in targets:
        current = target.get(keyword)
        target[keyword] = bound if current is None else min(current, bound)


def _authenticated_operations(app: FastAPI) -> set[tuple[str, str]]:
    """(path, method) of the operations that identify the caller (a login required, or optional but checked)."""
    checks = {current_user, optional_user}

    def calls(dependant: Dependant) -> set[Any]:
        found = {dependant.call}
        for sub in dependant.dependencies:
            found |= calls(sub)
        return found

    operations: set[tuple[str, str]] = set()
    # Routes of included routers are reached through their route contexts (FastAPI >= 0.165).
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and calls(route.dependant) & checks:
            operations |= {(str(context.path_format), method.lower()) for method in context.methods or ()}
    return operations


def problem_openapi(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """The app's OpenAPI document with problem+json errors and the settings' bounds."""
    spec = get_openapi(title=app.title, version=app.version, summary=app.summary, description=app.description,
                       routes=app.routes, tags=app.openapi_tags, servers=app.servers)
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(problem_schema.pop("$defs", {}))
    components["Problem"] = problem_schema
    bounds = _settings_bounds(settings)
    authenticated = _authenticated_operations(app)
    for path, methods in spec.get("paths", {}).items():
        for method, operation in methods.items():
            responses = operation.setdefault("responses", {})
            if (path, method) in authenticated:
                for status in ("401", "403"):
                    responses.setdefault(status, {"description": DESCRIPTIONS[status]})
            if operation.get("requestBody"):
                responses.setdefault("400", {"description": DESCRIPTIONS["400"]})
            if any(p.get("name") == IDEMPOTENCY_HEADER for p in operation.get("parameters", [])):
                responses.setdefault("409", {"description": "A request with this Idempotency-Key is still running "
                                                            "(problem+json, RFC 9457)"})
            for status, response in list(responses.items()):
                if status.startswith(("4", "5")):
                    responses[status] = _problem_response(
                        response.get("description") if status != "422" else DESCRIPTIONS["422"],
                        retry_after=status == "503")
            if operation.get("parameters") or operation.get("requestBody"):
                responses.setdefault("422", _problem_response(DESCRIPTIONS["422"]))
            # A path names something (a layer, a feature) that may not exist.
            if any(p.get("in") == "path" for p in operation.get("parameters", [])):
                responses.setdefault("404", _problem_response(DESCRIPTIONS["404"]))
            # Every documented operation reads the database (the map page and static files are not documented).
            responses.setdefault("503", _problem_response(DESCRIPTIONS["503"], retry_after=True))
            for parameter in operation.get("parameters", []):
                if parameter.get("name") in bounds:
                    _tighten(parameter, *bounds[parameter["name"]])
    return spec


def install_openapi(app: FastAPI, settings: Settings) -> None:
    """Serve ``problem_openapi`` at ``/openapi.json`` (built once, on first use)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problem_openapi(app, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
