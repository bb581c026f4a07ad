"""The only place mapping domain errors to HTTP: RFC 9457 ``application/problem+json`` bodies."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from geo.errors import (
    Conflict,
    DolbomError,
    Forbidden,
    ImportFailed,
    InvalidQuery,
    NotFound,
    ProvisioningError,
    RoutingUnavailable,
    SyncFailed,
    TooManyAttempts,
    Unauthenticated,
)

PROBLEM_JSON = "application/problem+json"

STATUS_BY_ERROR: dict[type[DolbomError], int] = {
    InvalidQuery: 422,
    NotFound: 404,
    ImportFailed: 422,
    RoutingUnavailable: 409,
    ProvisioningError: 503,
    Unauthenticated: 401,
    Forbidden: 403,
    TooManyAttempts: 429,
    Conflict: 409,
    SyncFailed: 502,
}


def problem(status: int, title: str, detail: str, *, instance: str | None = None,
            type_: str = "about:blank", **extra: Any) -> JSONResponse:
    """An RFC 9457 problem response."""
    body: dict[str, Any] = {"type": type_, "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def _status_for(exc: DolbomError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]  # type: ignore[index]
    return 400


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DolbomError)
    return problem(_status_for(exc), exc.title, exc.detail, instance=str(request.url.path), **exc.extra)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
    return problem(422, "Invalid request", detail, instance=str(request.url.path), errors=errors)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return problem(exc.status_code, "HTTP error", str(exc.detail), instance=str(request.url.path))


def install_error_handlers(app: FastAPI) -> None:
    """Register the problem+json handlers on ``app``."""
    app.add_exception_handler(DolbomError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
