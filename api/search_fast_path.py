"""The three searches answered before routing: ``GET /facilities/radius``, ``/nearest`` and ``/area``.

A pure ASGI middleware, the innermost one (every other layer, gzip included, still wraps its answers). It parses
the query string itself, strictly (the rules of ``api/params.py`` and the routes in ``api/routers/facilities.py``,
narrowed: plain decimal numbers, ``true``/``false``, each scalar parameter at most once, no blank values, only the
parameters the route declares, no ``birth_date``/``open_at``), then calls the route's own handler with the parsed
values and a connection from the read pool, and sends the handler's ``Response``: the same statement, the same
bytes, the same headers. Anything else goes to the app unchanged: another path or method, a parameter it does
not take or cannot parse exactly as FastAPI would, a value out of the declared bounds, read replicas configured
(the read router and ``Dolbom-Read-Source``), dependency overrides (tests), and any exception before the answer
starts (a domain error, an unknown area: the app runs the request again and answers as it always does), except
a database that does not answer, which gets the app's own 503 at once instead of a second wait.

Why: py-spy on the uvicorn process showed a fixed ~1.5-2 ms per search beyond its SQL, a fifth of it FastAPI's
dependency solving and validation of the 11 filter parameters, more in routing and the request/response
machinery (benchmarks/README.md, "Issue 24: the search fast path"). ``DOLBOM_SEARCH_FAST_PATH=false`` turns it
off; ``tests/api/test_search_fast_path.py`` checks that both ways answer the same.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from starlette.datastructures import QueryParams
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import UNAVAILABLE_ERRORS, database_unavailable
from api.params import MAX_LIMIT_PARAM, MAX_RAW_TEXT, Page, facility_filters
from api.routers import facilities
from api.state import state_of
from geo.search.filters import MAX_LIST_VALUES, MAX_MIN_FREE
from geo.validation import MAX_OFFSET

PREFIX = "/facilities/"


class Unsure(Exception):
    """The fast path does not answer this request exactly as the route would: the app does."""


_DECIMAL = re.compile(r"-?[0-9]{1,12}(?:\.[0-9]{1,17})?")
_INT = re.compile(r"0|[1-9][0-9]{0,8}")
_BOOLS = {"true": True, "false": False}

# Every parameter of the three routes, by kind. Scalars: (kind, bounds or choices).
_FILTER_LISTS = ("service", "type", "status", "language", "evaluation_grade")
_FILTER_SCALARS: dict[str, tuple[str, Any]] = {
    "service_match": ("choice", ("all", "any")), "age": ("int", (0, 5)), "min_free": ("int", (0, MAX_MIN_FREE)),
    "has_bus": ("bool", None), "cctv": ("bool", None), "name": ("text", None),
}
_FORMAT = ("choice", ("geojson", "json", "markers"))
_COUNT = ("choice", ("auto", "exact"))
_OFFSET = ("int", (0, MAX_OFFSET))
_LIMIT = ("int", (1, MAX_LIMIT_PARAM))
_ROUTES: dict[str, dict[str, tuple[str, Any]]] = {
    "radius": {"lat": ("float", None), "lon": ("float", None), "radius_m": ("float", None), "limit": _LIMIT,
               "offset": _OFFSET, "count": _COUNT, "f": _FORMAT},
    "nearest": {"lat": ("float", None), "lon": ("float", None), "k": _LIMIT, "max_distance_m": ("float", None),
                "f": _FORMAT, "offset": _OFFSET, "count": _COUNT},
    "area": {"district": ("text", None), "dong": ("text", None), "lat": ("float", None), "lon": ("float", None),
             "limit": _LIMIT, "offset": _OFFSET, "count": _COUNT, "f": _FORMAT},
}
_REQUIRED = {"radius": ("lat", "lon", "radius_m"), "nearest": ("lat", "lon"), "area": ()}


def _scalar(kind: str, rule: Any, raw: str) -> Any:
    """One scalar value as FastAPI's validation would give it, or ``Unsure``."""
    if kind == "float":
        if _DECIMAL.fullmatch(raw) is None:
            raise Unsure
        return float(raw)
    if kind == "int":
        if _INT.fullmatch(raw) is None:
            raise Unsure
        value = int(raw)
        low, high = rule
        if not low <= value <= high:
            raise Unsure
        return value
    if kind == "bool":
        if raw not in _BOOLS:
            raise Unsure
        return _BOOLS[raw]
    if kind == "choice":
        if raw not in rule:
            raise Unsure
        return raw
    if len(raw) > MAX_RAW_TEXT:  # text
        raise Unsure
    return raw


def parse_query(route: str, query_string: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """(filter arguments, route arguments) of a query string, parsed as the route's FastAPI parameters would be;
    ``Unsure`` when that is not certain."""
    scalars = _ROUTES[route]
    filters: dict[str, Any] = {}
    values: dict[str, Any] = {}
    for key, raw in QueryParams(query_string).multi_items():  # Starlette's own decoding (parse_qsl, UTF-8)
        if not raw:
            raise Unsure
        if key in _FILTER_LISTS:
            if len(raw) > MAX_RAW_TEXT:
                raise Unsure
            filters.setdefault(key, []).append(raw)
            continue
        rule = _FILTER_SCALARS.get(key)
        target = filters
        if rule is None:
            rule = scalars.get(key)
            target = values
        if rule is None or key in target:  # unknown, or a scalar given twice (FastAPI takes the last)
            raise Unsure
        target[key] = _scalar(rule[0], rule[1], raw)
    if any(len(v) > MAX_LIST_VALUES for k, v in filters.items() if k in _FILTER_LISTS):
        raise Unsure
    if any(name not in values for name in _REQUIRED[route]):
        raise Unsure
    return filters, values


async def _answer(route: str, request: Request, conn: Any, settings: Any, filter_args: dict[str, Any],
                  args: dict[str, Any]) -> Response:
    """The route handler's own answer to the parsed request."""
    filters = await facility_filters(**filter_args)
    if route == "nearest":
        return await facilities.nearest(request, conn, settings, filters, **args)
    page = Page(limit=args.pop("limit", 50), offset=args.pop("offset", 0), count=args.pop("count", "auto"))
    handler: Callable[..., Awaitable[Response]] = facilities.radius if route == "radius" else facilities.area
    return await handler(request, conn, settings, filters, page, **args)


class SearchFastPath:
    """Answer plain successful searches without routing or dependency solving (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            route = path[len(PREFIX):] if path.startswith(PREFIX) else ""
            if route in _ROUTES:
                response = await self._try(route, scope)
                if response is not None:
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    @staticmethod
    async def _try(route: str, scope: Scope) -> Response | None:
        app = scope.get("app")
        settings = getattr(app, "settings", None)
        state = state_of(scope)
        # Dependency overrides (tests) change what the route would do: the app answers.
        if state is None or state.read_router is not None or settings is None \
                or not settings.server.search_fast_path or getattr(app, "dependency_overrides", None):
            return None
        try:
            filter_args, args = parse_query(route, scope["query_string"])
        except Exception:  # Unsure, or anything the parser did not foresee: the app parses it
            return None
        request = Request(scope)
        try:
            async with state.read_pool.connection() as conn:
                return await _answer(route, request, conn, settings, filter_args, args)
        except UNAVAILABLE_ERRORS as exc:
            # The app's own 503: running the request again would wait for the database a second time.
            return await database_unavailable(request, exc)
        except Exception:  # whatever it is, the app answers it (again), as it would have
            return None
