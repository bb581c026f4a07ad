"""The only place mapping errors to HTTP: RFC 9457 ``application/problem+json`` bodies.

Domain errors map through ``STATUS_BY_ERROR``; a database that cannot be reached (down, restarting, pool
exhausted) is 503 with ``Retry-After``; anything unexpected is a 500 problem without internals.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as EnginePoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from geo.errors import (
    Conflict,
    DolbomError,
    Forbidden,
    ImportFailed,
    ImportRunning,
    InvalidQuery,
    NotFound,
    ProvisioningError,
    RoutingUnavailable,
    SyncFailed,
    TooManyAttempts,
    Unauthenticated,
)

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_S = 5

STATUS_BY_ERROR: dict[type[DolbomError], int] = {
    InvalidQuery: 422,
    NotFound: 404,
    ImportFailed: 422,
    ImportRunning: 409,
    RoutingUnavailable: 409,
    ProvisioningError: 503,
    Unauthenticated: 401,
    Forbidden: 403,
    TooManyAttempts: 429,
    Conflict: 409,
    SyncFailed: 502,
}

# Errors that mean "the database is not answering", not "this request is wrong".
# A pool with no free connection within its timeout (psycopg's or SQLAlchemy's) is the server being overloaded
# or unreachable: 503 with Retry-After, not a 500.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (psycopg.OperationalError, PoolTimeout, EnginePoolTimeout)


def problem(status: int, title: str, detail: str, *, instance: str | None = None,
            type_: str = "about:blank", headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    """An RFC 9457 problem response."""
    body: dict[str, Any] = {"type": type_, "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _status_for(exc: DolbomError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]  # type: ignore[index]
    return 400


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DolbomError)
    status = _status_for(exc)
    headers = None
    if status in (429, 503):
        # Every "try again later" says when (RFC 9110 Retry-After, whole seconds).
        retry_after_s = exc.extra.get("retry_after_s") or RETRY_AFTER_S
        headers = {"Retry-After": str(max(1, math.ceil(float(retry_after_s))))}
    return problem(status, exc.title, exc.detail, instance=str(request.url.path), headers=headers, **exc.extra)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
    # Name the parameters at fault like domain errors do (``param``): the name after the location
    # (``["query", "service", 0]`` is the parameter ``service``).
    extra: dict[str, Any] = {"errors": errors}
    if params := ",".join(dict.fromkeys(str(e["loc"][1] if len(e["loc"]) > 1 else e["loc"][0])
                                        for e in errors if e["loc"])):
        extra["param"] = params
    return problem(422, "Invalid request", detail, instance=str(request.url.path), **extra)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code in (429, 503) and not any(name.lower() == "retry-after" for name in headers):
        headers["Retry-After"] = str(RETRY_AFTER_S)
    return problem(exc.status_code, "HTTP error", str(exc.detail), instance=str(request.url.path),
                   headers=headers or None)


def _unavailable(request: Request) -> JSONResponse:
    return problem(503, "Database unavailable",
                   "the database is not answering; the service reconnects by itself, try again shortly",
                   instance=str(request.url.path), headers={"Retry-After": str(RETRY_AFTER_S)})


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable on %s: %s", request.url.path, exc)
    return _unavailable(request)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)
    if exc.connection_invalidated or isinstance(exc.orig, psycopg.OperationalError):
        log.warning("database unavailable on %s: %s", request.url.path, exc.orig)
        return _unavailable(request)
    log.exception("database error on %s", request.url.path)
    return problem(500, "Internal error", "the request failed on the server", instance=str(request.url.path))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s", request.url.path, exc_info=exc)
    return problem(500, "Internal error", "the request failed on the server", instance=str(request.url.path))


def install_error_handlers(app: FastAPI) -> None:
    """Register the problem+json handlers on ``app``."""
    app.add_exception_handler(DolbomError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for error in UNAVAILABLE_ERRORS:
        app.add_exception_handler(error, _database_unavailable)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(Exception, _unexpected)
