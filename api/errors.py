"""The only place mapping errors to HTTP: RFC 9457 ``application/problem+json`` bodies.

Domain errors map through ``STATUS_BY_ERROR``; a database that cannot be reached (down, restarting, pool
exhausted) is 503 with ``Retry-After``; anything unexpected is a 500 problem without internals.
"""

from __future__ import annotations

import logging
import math
import traceback
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from psycopg_pool import PoolTimeout
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.exc import TimeoutError as EnginePoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.portal.render import error_page
from geo.errors import (
    Conflict,
    DolbomError,
    Forbidden,
    IllegalTransition,
    ImportFailed,
    ImportRunning,
    InvalidQuery,
    NotFound,
    ProvisioningError,
    RateLimited,
    RoutingUnavailable,
    SyncFailed,
    TooManyAttempts,
    Unauthenticated,
)

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PORTAL_PREFIX = "/portal/"
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
    RateLimited: 429,
    Conflict: 409,
    IllegalTransition: 409,
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


def status_for(exc: DolbomError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]  # type: ignore[index]
    return 400


_status_for = status_for  # the name tests of other modules import


def domain_problem(exc: DolbomError, *, instance: str | None = None, status: int | None = None) -> JSONResponse:
    """The problem response of a domain error, for a handler that answers an error without raising it (its
    ``WriteTx`` then commits what it wrote, e.g. a failed login that counts towards the lockout); ``status``
    overrides the mapped one (the OGC routes answer 400 where the rest of the API answers 422)."""
    status = status or status_for(exc)
    headers = None
    if status in (429, 503):
        # Every "try again later" says when (RFC 9110 Retry-After, whole seconds).
        retry_after_s = exc.extra.get("retry_after_s") or RETRY_AFTER_S
        headers = {"Retry-After": str(max(1, math.ceil(float(retry_after_s))))}
    return problem(status, exc.title, exc.detail, instance=instance, headers=headers, **exc.extra)


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DolbomError)
    if request.url.path.startswith(PORTAL_PREFIX):
        # A page's request: the message in the user's language on a page (api/portal/render.py), not a problem.
        return error_page(request, exc, status_for(exc))
    return domain_problem(exc, instance=str(request.url.path))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return validation_problem(exc, instance=str(request.url.path))


def validation_problem(exc: RequestValidationError, *, instance: str, status: int = 422) -> JSONResponse:
    """The problem response of a request that failed FastAPI's validation (``status``: 400 on the OGC routes)."""
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
    return problem(status, "Invalid request", detail, instance=instance, **extra)


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


def describe_database_error(exc: BaseException) -> str:
    """What a log may say about a database error: its class, SQLSTATE, and the constraint, table and column it
    names, never the server's message or detail (``invalid input syntax for type integer: "홍길순"``, ``Key
    (email)=(...)``, ``Failing row contains (...)``) nor the statement's parameters, which hold personal data."""
    orig = getattr(exc, "orig", None) or exc
    parts = [type(orig).__name__]
    if isinstance(orig, psycopg.Error):
        diag = orig.diag
        parts += [f"{name}={value}" for name, value in (
            ("sqlstate", orig.sqlstate), ("constraint", diag.constraint_name), ("table", diag.table_name),
            ("column", diag.column_name)) if value]
    return " ".join(parts)


def _frames(exc: BaseException) -> str:
    """The traceback's frames without any exception message (file, line and code only)."""
    return "".join(traceback.format_tb(exc.__traceback__)).rstrip()


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """The 503 problem of a database that does not answer (logged without its message)."""
    log.warning("database unavailable on %s: %s", request.url.path, describe_database_error(exc))
    return _unavailable(request)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)
    if exc.connection_invalidated or isinstance(exc.orig, psycopg.OperationalError):
        log.warning("database unavailable on %s: %s", request.url.path, describe_database_error(exc))
        return _unavailable(request)
    log.error("database error on %s: %s\n%s", request.url.path, describe_database_error(exc), _frames(exc))
    return problem(500, "Internal error", "the request failed on the server", instance=str(request.url.path))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, (psycopg.Error, StatementError)):
        log.error("database error on %s: %s\n%s", request.url.path, describe_database_error(exc), _frames(exc))
    else:
        log.exception("unexpected error on %s", request.url.path, exc_info=exc)
    return problem(500, "Internal error", "the request failed on the server", instance=str(request.url.path))


def install_error_handlers(app: FastAPI) -> None:
    """Register the problem+json handlers on ``app``."""
    app.add_exception_handler(DolbomError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for error in UNAVAILABLE_ERRORS:
        app.add_exception_handler(error, database_unavailable)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(Exception, _unexpected)
