"""The OpenAPI document as the API really answers: every error as RFC 9457 ``application/problem+json``.

FastAPI documents its own ``HTTPValidationError`` body for 422; ``api/errors.py`` answers problem+json instead,
for malformed values and for domain errors alike. ``install_openapi`` post-processes the generated document once:
each operation's 422 (and 404/409/503 where they happen) points at the ``Problem`` schema, and the bounds that come
from settings (``max_page_limit``, ``max_radius_m``) are written into the parameters they bound. The security
schemes (bearer token; session cookie with its CSRF header for unsafe methods) are declared, and every operation
that identifies the caller names them, so that Swagger UI's *Authorize* and client generators know how to log in.

The document is OpenAPI 3.1 (FastAPI's JSON Schema 2020-12). ``openapi_30`` rewrites a copy as OpenAPI 3.0.3 for
the OGC API's service description (``/ogc/api``), whose ``oas30`` conformance class promises 3.0.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from api.deps import current_user, optional_user
from api.errors import PROBLEM_JSON
from api.idempotency import IDEMPOTENCY_HEADER
from api.schemas.facilities import Problem
from api.security import CSRF_HEADER, SAFE_METHODS, SESSION_COOKIE
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
    "413": "Request body too large (problem+json, RFC 9457; `max_body_bytes` says the cap): refused before it "
           "is read",
}
OGC_400 = ("Invalid request: an invalid or unknown query parameter, a malformed bbox, datetime or CQL2 filter, or "
           "an unsupported CRS (problem+json, RFC 9457)")


# Security schemes: how a client logs in (api/security.py).
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "bearerToken": {"type": "http", "scheme": "bearer",
                    "description": "An API token (POST /auth/token or POST /auth/tokens): "
                                   "`Authorization: Bearer <token>`"},
    "sessionCookie": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE,
                      "description": "The browser session set by POST /auth/login (HttpOnly, SameSite=Lax)"},
    "csrfToken": {"type": "apiKey", "in": "header", "name": CSRF_HEADER,
                  "description": "With a cookie session, unsafe methods (POST, PUT, PATCH, DELETE) send the "
                                 "session's synchronizer token (`csrf_token` of the login answer, also the "
                                 "`dolbom_csrf` cookie)"},
}


def _security(method: str, *, optional: bool) -> list[dict[str, list[str]]]:
    """An operation's security requirements: a bearer token, or the session cookie (plus the CSRF header when
    the method is unsafe); ``{}`` (anonymous) too when the login is optional."""
    session: dict[str, list[str]] = {"sessionCookie": []}
    if method.upper() not in SAFE_METHODS:
        session["csrfToken"] = []
    return [{"bearerToken": []}, session, *([{}] if optional else [])]


# Parameters named like a settings-bounded one whose handler applies its own fixed bound instead (the settings'
# bound written into them documented the chain's default of 1000 above a maximum of 500).
OWN_BOUNDS = frozenset({
    ("/waitlist/centres/{code}/chain", "limit"),  # a slice of the chain, at most 1000 links
    ("/admin/audit", "limit"),  # SQL LIMIT, at most 1000 rows
    ("/vacancy/centres/{code}/reports", "limit"),  # at most 1000 reports
})


def _settings_bounds(settings: Settings) -> dict[str, tuple[str, float]]:
    """Parameter name -> (JSON Schema keyword, bound) for bounds that are settings."""
    return {
        "limit": ("maximum", settings.search.max_page_limit),
        "k": ("maximum", settings.search.max_page_limit),
        "radius_m": ("maximum", settings.search.max_radius_m),
        "max_distance_m": ("maximum", settings.search.max_radius_m),
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


def _authenticated_operations(app: FastAPI, checks: frozenset[Any] = frozenset({current_user, optional_user})
                              ) -> set[tuple[str, str]]:
    """(path, method) of the operations that identify the caller (a login required, or optional but checked)."""

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
    spec["components"]["securitySchemes"] = {name: dict(scheme) for name, scheme in SECURITY_SCHEMES.items()}
    authenticated = _authenticated_operations(app)
    login_required = _authenticated_operations(app, frozenset({current_user}))
    for path, methods in spec.get("paths", {}).items():
        for method, operation in methods.items():
            responses = operation.setdefault("responses", {})
            if (path, method) in authenticated:
                operation["security"] = _security(method, optional=(path, method) not in login_required)
                for status in ("401", "403"):
                    responses.setdefault(status, {"description": DESCRIPTIONS[status]})
            if operation.get("requestBody"):
                responses.setdefault("400", {"description": DESCRIPTIONS["400"]})
                responses.setdefault("413", {"description": DESCRIPTIONS["413"]})
            if any(p.get("name") == IDEMPOTENCY_HEADER for p in operation.get("parameters", [])):
                responses.setdefault("409", {"description": "A request with this Idempotency-Key is still running "
                                                            "(problem+json, RFC 9457)"})
            for status, response in list(responses.items()):
                if status.startswith(("4", "5")):
                    responses[status] = _problem_response(
                        response.get("description") if status != "422" else DESCRIPTIONS["422"],
                        retry_after=status in ("429", "503"))
            if operation.get("parameters") or operation.get("requestBody"):
                responses.setdefault("422", _problem_response(DESCRIPTIONS["422"]))
            if path.startswith("/ogc"):
                # OGC API - Features Part 1: an invalid or unknown query parameter is a 400 (api.routers.features).
                responses.pop("422", None)
                responses["400"] = _problem_response(OGC_400)
            # A path names something (a layer, a feature) that may not exist.
            if any(p.get("in") == "path" for p in operation.get("parameters", [])):
                responses.setdefault("404", _problem_response(DESCRIPTIONS["404"]))
            # Every documented operation reads the database (the map page and static files are not documented).
            responses.setdefault("503", _problem_response(DESCRIPTIONS["503"], retry_after=True))
            for parameter in operation.get("parameters", []):
                if parameter.get("name") in bounds and (path, parameter["name"]) not in OWN_BOUNDS:
                    _tighten(parameter, *bounds[parameter["name"]])
    return spec


def install_openapi(app: FastAPI, settings: Settings) -> None:
    """Serve ``problem_openapi`` at ``/openapi.json`` (built once, on first use)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problem_openapi(app, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _schema_30(schema: Any) -> Any:
    """A JSON Schema 2020-12 schema (OpenAPI 3.1) as an OpenAPI 3.0 schema object: ``type: "null"`` becomes
    ``nullable: true``, ``const`` a one-value ``enum``, ``examples`` one ``example``, numeric
    ``exclusiveMinimum``/``exclusiveMaximum`` the boolean form, ``prefixItems`` ``items``, ``patternProperties``
    ``additionalProperties``; ``propertyNames`` (no 3.0 equivalent) is dropped."""
    if isinstance(schema, list):
        return [_schema_30(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {name: _schema_30(s) for name, s in value.items()}
        elif key in ("items", "additionalProperties", "not", "anyOf", "oneOf", "allOf"):
            out[key] = _schema_30(value)
        elif key == "const":
            out["enum"] = [value]
        elif key == "examples" and isinstance(value, list):
            if value:
                out["example"] = value[0]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        elif key == "prefixItems":
            tuple_members = [_schema_30(s) for s in value]
            out.setdefault("items", tuple_members[0] if all(m == tuple_members[0] for m in tuple_members) else {})
        elif key == "patternProperties" and isinstance(value, dict) and value:
            # 3.0 has no patternProperties: the values' schema becomes additionalProperties (the key pattern is
            # lost, as with propertyNames).
            if "additionalProperties" not in schema:
                out["additionalProperties"] = _schema_30(next(iter(value.values())))
        elif key in ("propertyNames", "$schema", "$id", "contentMediaType", "contentEncoding"):
            continue
        elif key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            if len(types) < len(value):
                out["nullable"] = True
            if len(types) == 1:
                out["type"] = types[0]
            elif types:
                out["anyOf"] = [{"type": t} for t in types]
        elif key == "type" and value == "null":
            out["nullable"] = True
        else:
            out[key] = value
    for key in ("anyOf", "oneOf"):
        found = out.get(key)
        if not isinstance(found, list) or not any(m == {"nullable": True} for m in found):
            continue
        members: list[Any] = found
        rest = [m for m in members if m != {"nullable": True}]
        del out[key]
        out["nullable"] = True
        if len(rest) == 1 and "$ref" in rest[0]:
            out["allOf"] = rest  # 3.0 ignores a $ref's siblings: wrap it so that nullable counts
        elif len(rest) == 1:
            out = {**rest[0], **out}
        elif rest:
            out[key] = rest
    return out


def openapi_30(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy of an OpenAPI 3.1 document (as FastAPI writes it) rewritten as valid OpenAPI 3.0.3: schemas by
    ``_schema_30``, ``info.summary`` (3.1 only) folded into ``info.description``."""
    doc = orjson.loads(orjson.dumps(doc))
    doc["openapi"] = "3.0.3"
    info = doc.setdefault("info", {})
    summary = info.pop("summary", None)
    if summary:
        info["description"] = summary + ("\n\n" + info["description"] if info.get("description") else "")
    components = doc.get("components", {})
    if "schemas" in components:
        components["schemas"] = {name: _schema_30(s) for name, s in components["schemas"].items()}
    for item in doc.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if "schema" in parameter:
                    parameter["schema"] = _schema_30(parameter["schema"])
            bodies = [operation.get("requestBody", {})] + list(operation.get("responses", {}).values())
            for body in bodies:
                for media in body.get("content", {}).values():
                    if "schema" in media:
                        media["schema"] = _schema_30(media["schema"])
                for header in body.get("headers", {}).values():
                    if "schema" in header:
                        header["schema"] = _schema_30(header["schema"])
    return doc


def keep_referenced_schemas(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with only the component schemas its paths reach (through ``$ref``, transitively), and only the
    security schemes its operations name."""
    schemas = doc.get("components", {}).get("schemas", {})
    prefix = "#/components/schemas/"

    def refs(node: Any) -> set[str]:
        if isinstance(node, dict):
            found = {node["$ref"].removeprefix(prefix)} if str(node.get("$ref", "")).startswith(prefix) else set()
            return found.union(*(refs(v) for v in node.values()))
        if isinstance(node, list):
            return set().union(*(refs(v) for v in node))
        return set()

    reached: set[str] = set()
    todo = refs(doc.get("paths", {}))
    while todo:
        name = todo.pop()
        if name not in reached and name in schemas:
            reached.add(name)
            todo |= refs(schemas[name])
    components = doc.setdefault("components", {})
    components["schemas"] = {name: schema for name, schema in schemas.items() if name in reached}
    used = {name for item in doc.get("paths", {}).values() for op in item.values() if isinstance(op, dict)
            for requirement in op.get("security", []) for name in requirement}
    if "securitySchemes" in components:
        components["securitySchemes"] = {k: v for k, v in components["securitySchemes"].items() if k in used}
        if not components["securitySchemes"]:
            del components["securitySchemes"]
    return doc
