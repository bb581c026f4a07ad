"""Every FastAPI dependency of the API, and its ``Annotated`` alias.

- ``AppStateDep``: the ``AppState`` the lifespan built (``api/state.py``); ``SettingsDep``, ``EngineDep``.
- ``ReadConnDep``: a psycopg async connection from the read pool (autocommit, one statement per read); the search
  endpoints and the map layers (OGC API - Features, TileJSON) run on it without leaving the event loop, and it
  returns to the pool as soon as the handler returns. Tiles take theirs with ``read_connection`` only when the
  tile cache cannot answer.
  With read replicas it comes from the read router (``geo.ops.replicas``): a replica that has replayed the
  request's write position (``min_lsn_of``), else the primary.
- ``ReadSessionDep``: a SQLAlchemy session for sync handlers that only read public data, routed like
  ``ReadConnDep`` but without waiting (a replica that has not replayed the position yet: the primary).
- ``SessionDep``: a SQLAlchemy session on the primary for handlers that only read (closed, never committed).
- ``WriteTx``: the one write path. A session whose transaction commits when the handler returns, in the
  handler's own worker-thread step (``WriteRoute``), before the response is serialised and sent, and rolls back
  when the handler raises: a request writes all or nothing, and a lock it took is released at once.
- ``IdempotencyKeyDep``, ``AnonymousIdempotencyKeyDep``: the request's ``Idempotency-Key``, claimed in its
  ``WriteTx``; ``WriteRoute`` replays a stored response, or stores the new one in the same transaction before it
  commits (``api/idempotency.py``).
- ``TileCacheDep``, ``VacancyHubDep``: tiles, the vacancy stream.
- ``CurrentUser``, ``OptionalUser``, ``AdminUser``, ``require_role(...)``: who is calling (``api/security.py``
  decides what they may do).
- The portal's pages: ``PageLang`` (the request's ``Translator``), ``PageUser`` (the session cookie's user or None,
  with the CSRF token of a form field or the header on unsafe methods), ``PageForm`` (a posted form's text
  fields). The token a page puts in its forms is the readable ``dolbom_csrf`` cookie (``api/portal/render.py``).
"""

from __future__ import annotations

import functools
import hmac
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.datastructures import DefaultPlaceholder
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import ResponseValidationError
from fastapi.routing import APIRoute
from psycopg import AsyncConnection
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection
from starlette.responses import Response

from api.idempotency import IDEMPOTENCY_HEADER, KeyedWrite, replayed
from api.portal.i18n import LANG_COOKIE, Translator, negotiate
from api.private import mark_private
from api.read_routing import LSN_COOKIE, MIN_LSN_HEADER, READ_PRIMARY
from api.security import CSRF_FIELD, CSRF_HEADER, SAFE_METHODS, SESSION_COOKIE
from api.state import AppState, state_of
from geo.admission import tlog_store
from geo.auth.accounts import Principal, resolve_token, sha256_hex
from geo.auth.policy import Role
from geo.errors import Forbidden, InvalidQuery, Unauthenticated
from geo.idempotency import MAX_KEY_LENGTH, KeyedRequest, caller_of, check_key, claim, request_fingerprint
from geo.ops.replicas import PRIMARY_ONLY_LSN, parse_lsn
from geo.settings import Settings
from geo.vacancy.hub import VacancyHub
from tiles.cache import TileCache

# --- the application state ------------------------------------------------------------------------------------


async def get_app_state(request: Request) -> AppState:
    """The ``AppState`` the lifespan built (``async``, like every dependency that does no I/O: FastAPI runs a sync
    dependency in its thread pool, a hand-off per request that the read path measured at ~15% of the API's time)."""
    state = state_of(request.scope)
    if state is None:
        raise RuntimeError("the application's lifespan is not running (enter the TestClient: with TestClient(app))")
    return state


AppStateDep = Annotated[AppState, Depends(get_app_state)]


async def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with (``create_app(settings)``; known before the lifespan runs)."""
    settings = getattr(request.app, "settings", None)
    if not isinstance(settings, Settings):
        raise RuntimeError("not a dolbom app (api.app.create_app)")
    return settings


async def get_engine(state: AppStateDep) -> Engine:
    """The primary's sync engine."""
    return state.engine


async def get_tile_cache(state: AppStateDep) -> TileCache:
    """The app's tile cache."""
    return state.tile_cache


async def get_vacancy_hub(state: AppStateDep) -> VacancyHub:
    """The process's vacancy hub (created by the lifespan, listening from its first subscriber on)."""
    return state.vacancy_hub


# --- reads ----------------------------------------------------------------------------------------------------


def min_lsn_of(conn: HTTPConnection) -> int | None:
    """The WAL position this request must read at least: the later of the ``Dolbom-Min-LSN`` header (malformed:
    ``InvalidQuery``, a 422) and the ``dolbom_lsn`` cookie (malformed: ignored, it may be an old browser's).
    ``primary`` (the position of a write could not be read) is above any real position: the primary serves."""
    positions: list[int] = []
    if header := conn.headers.get(MIN_LSN_HEADER):
        positions.append(PRIMARY_ONLY_LSN if header.strip() == READ_PRIMARY else parse_lsn(header))
    if cookie := conn.cookies.get(LSN_COOKIE):
        try:
            positions.append(PRIMARY_ONLY_LSN if cookie == READ_PRIMARY else parse_lsn(cookie))
        except InvalidQuery:
            pass
    return max(positions) if positions else None


@asynccontextmanager
async def read_connection(request: HTTPConnection, state: AppState) -> AsyncIterator[AsyncConnection[Any]]:
    """A connection of the read pool (autocommit: one statement, one round trip), or of the read router when there
    are replicas, for as long as the block lasts. Tiles take one only when the cache cannot answer."""
    router = state.read_router
    if router is None:
        async with state.read_pool.connection() as conn:
            yield conn
        return
    async with router.connection(min_lsn_of(request)) as (conn, source):
        request.state.read_source = source
        yield conn


async def get_read_connection(request: Request, state: AppStateDep) -> AsyncIterator[AsyncConnection[Any]]:
    """A read connection from the app's async pool, or from the read router when there are replicas (returned
    when the handler returns: ``ReadConnDep``)."""
    async with read_connection(request, state) as conn:
        yield conn


def get_read_session(request: Request, state: AppStateDep) -> Iterator[Session]:
    """A read-only session on the server the read router chooses now (``ReadSessionDep``); a replica that fails
    its first round trip falls back to the primary."""
    router = state.read_router
    if router is not None:
        server = router.choose(min_lsn_of(request))
        replica_engine = state.replica_engines.get(server.name)
        if replica_engine is not None:
            session = Session(replica_engine)
            try:
                session.connection()
            except DBAPIError:
                session.close()
                router.mark_down(server)
            else:
                request.state.read_source = server.name
                with session:
                    yield session
                return
        request.state.read_source = "primary"
    with Session(state.engine) as primary_session:
        yield primary_session


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    """A read-only session per request, closed afterwards (its transaction is rolled back)."""
    with Session(engine) as session:
        yield session


# --- the write path -------------------------------------------------------------------------------------------


class WriteSession(Session):
    """The session of a request's write transaction (``WriteTx``): ``WriteRoute`` commits it."""


def get_write_tx(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    """A session per writing request: committed when the handler succeeds (by ``WriteRoute`` in the handler's
    own thread step; here, for a handler not on a ``WriteRoute``), rolled back when it raises."""
    session = WriteSession(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()  # nothing left to commit when WriteRoute did
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _committing(endpoint: Callable[..., Any], route: WriteRoute) -> Callable[..., Any]:
    """``endpoint`` followed, in the same call, by the commit of its write transaction. With an
    ``Idempotency-Key`` (a ``KeyedWrite`` argument): a stored response is sent instead of running ``endpoint``;
    else the answer is serialised into its response here, and that response stored in the same transaction before
    the commit."""

    @functools.wraps(endpoint)  # FastAPI reads the parameters and the return type through __wrapped__
    def run(*args: Any, **kwargs: Any) -> Any:
        keyed = next((v for v in kwargs.values() if isinstance(v, KeyedWrite)), None)
        if keyed is not None and keyed.replay is not None:
            return replayed(keyed.replay)
        result = endpoint(*args, **kwargs)
        if keyed is not None:
            result = route.render(result)
            keyed.record(result)
        sessions = [v for v in kwargs.values() if isinstance(v, WriteSession)]
        if keyed is not None and isinstance(keyed.session, WriteSession) and keyed.session not in sessions:
            sessions.append(keyed.session)
        for session in sessions:
            session.commit()
        return result

    return run


class WriteRoute(APIRoute):
    """The route class of every router: a sync handler's ``WriteTx`` commits in the worker-thread step that ran
    the handler, not in a later one.

    FastAPI runs a sync handler in one worker thread, then serialises its answer in another step of the same
    thread pool, and only then closes the dependencies. A transaction committed there holds its locks until a
    worker thread is free. When every thread is taken by requests waiting on those locks (or on a pool
    connection that they hold), nothing moves until the pool times out: 100 parents applying to one centre at
    once stalled a worker for ~90 s, answered 503 to most of them (issue #19).
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if _writes(endpoint):
            if inspect.iscoroutinefunction(endpoint):
                if _writes(endpoint, _KEY_DEPENDENCIES):
                    raise RuntimeError(f"{path}: a handler with an Idempotency-Key dependency must be sync (def)")
            else:
                endpoint = _committing(endpoint, self)
        super().__init__(path, endpoint, **kwargs)

    def render(self, result: Any) -> Response:
        """The response FastAPI would make of a handler's answer (validated by the response model and
        serialised), made here so that it can be stored before the transaction commits."""
        if isinstance(result, Response):
            return result
        status = self.status_code or 200
        field = self.response_field
        options: dict[str, Any] = {
            "include": self.response_model_include, "exclude": self.response_model_exclude,
            "by_alias": self.response_model_by_alias, "exclude_unset": self.response_model_exclude_unset,
            "exclude_defaults": self.response_model_exclude_defaults,
            "exclude_none": self.response_model_exclude_none}
        if field is not None:
            value, errors = field.validate(result, {}, loc=("response",))
            if errors:
                raise ResponseValidationError(errors=errors, body=result)
            if isinstance(self.response_class, DefaultPlaceholder):  # FastAPI's fast path: JSON bytes at once
                return Response(content=field.serialize_json(value, **options), media_type="application/json",
                                status_code=status)
            content = field.serialize(value, **options)
        else:
            content = jsonable_encoder(result)
        response_class = self.response_class
        if isinstance(response_class, DefaultPlaceholder):
            response_class = response_class.value
        response: Response = response_class(content, status_code=status)
        return response


def _writes(endpoint: Callable[..., Any], dependencies: frozenset[Callable[..., Any]] | None = None) -> bool:
    """Whether ``endpoint`` takes a ``WriteTx`` parameter or an ``Idempotency-Key`` dependency (which uses the
    ``WriteTx``), or with ``dependencies`` one of those."""
    wanted = dependencies if dependencies is not None else _WRITE_DEPENDENCIES
    for param in inspect.signature(endpoint, eval_str=True).parameters.values():
        if any(getattr(meta, "dependency", None) in wanted
               for meta in getattr(param.annotation, "__metadata__", ())):
            return True
    return False


def check_write_routes(app: FastAPI) -> None:
    """Refuse an app with a handler that writes (``WriteTx``) on a route that is not a ``WriteRoute``."""
    for route in app.routes:
        if isinstance(route, APIRoute) and not isinstance(route, WriteRoute) and _writes(route.endpoint):
            raise RuntimeError(f"{route.path}: a handler with WriteTx or an Idempotency-Key needs "
                               "APIRouter(route_class=WriteRoute)")


# --- who is calling -------------------------------------------------------------------------------------------


def _principal(request: Request, session: Session) -> Principal | None:
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, secret = auth.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthenticated("Authorization must be 'Bearer <token>'")
        return _confirmed(request, _resolve(session, secret.strip(), kind="bearer"))
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    principal = _resolve(session, cookie, kind="session")
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not principal.csrf_hash or not hmac.compare_digest(sha256_hex(sent), principal.csrf_hash):
            raise Forbidden(f"missing or wrong {CSRF_HEADER} for a cookie session", reason="csrf")
    return _confirmed(request, principal)


def _confirmed(request: Request, principal: Principal) -> Principal:
    """Refuse a write outside ``/auth/`` by an account whose e-mail is not confirmed yet (403
    ``reason=email_not_confirmed``): it may log in, read and manage itself, not act (apply, book, report...)."""
    if (not principal.email_confirmed and request.method not in SAFE_METHODS
            and not request.url.path.startswith("/auth/")):
        raise Forbidden("confirm your e-mail address first (the link in the mail sent at sign-up)",
                        reason="email_not_confirmed")
    return principal


def _resolve(session: Session, secret: str, *, kind: str) -> Principal:
    """``resolve_token`` on the request's read session, whose connection goes back to the pool at once: the
    handler then checks out its own (a writing handler's ``WriteTx``), and a request never holds two pool
    connections. Holding this one until the response had let 20 concurrent rank checks each keep one
    connection of the 20 while waiting for a second: the pool deadlocked until its timeout (found by
    benchmarks/bench_load.py at 64 users on one worker)."""
    try:
        return resolve_token(session.connection(), secret, kind=kind)
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


def optional_user(request: Request, session: SessionDep) -> Principal | None:
    """The caller when authenticated, else None (a bad token is still a 401); an identified caller's answer is
    private (``Cache-Control: no-store``)."""
    if request.headers.get("authorization") or request.cookies.get(SESSION_COOKIE):
        mark_private(request.scope)
    return _principal(request, session)


def current_user(request: Request, session: SessionDep) -> Principal:
    """The authenticated caller; 401 otherwise. Its answer is private (``Cache-Control: no-store``)."""
    mark_private(request.scope)
    principal = _principal(request, session)
    if principal is None:
        raise Unauthenticated("log in (session cookie) or send a bearer token")
    return principal


CurrentUser = Annotated[Principal, Depends(current_user)]


async def client_ip(request: Request) -> str | None:
    """The client's address (what the abuse limits of ``geo.auth.limits`` count per address)."""
    return request.client.host if request.client else None


ClientIp = Annotated[str | None, Depends(client_ip)]
OptionalUser = Annotated[Principal | None, Depends(optional_user)]


def require_role(*roles: Role) -> Callable[..., Principal]:
    """Dependency: the caller, who must have one of ``roles`` (403 problem+json otherwise)."""
    allowed = frozenset(roles)

    def dependency(user: CurrentUser) -> Principal:
        if user.role not in allowed:
            raise Forbidden(f"role {user.role.value} may not do this (needs {', '.join(sorted(allowed))})")
        return user

    return dependency


AdminUser = Annotated[Principal, Depends(require_role(Role.city_admin))]

# --- the portal's pages ---------------------------------------------------------------------------------------

# Pages where a signed-up parent whose e-mail is not confirmed yet may still write (like the API's /auth/).
PAGE_ACCOUNT_PREFIX = "/portal/account/"


async def page_translator(request: Request) -> Translator:
    """The ``Translator`` of the request's language (the ``dolbom_lang`` cookie, then ``Accept-Language``)."""
    return Translator(negotiate(cookie=request.cookies.get(LANG_COOKIE),
                                accept_language=request.headers.get("accept-language")))


async def sent_csrf_token(request: Request) -> str:
    """The CSRF token a page's unsafe request carries: the ``X-CSRF-Token`` header (htmx) or the form's
    ``csrf_token`` field (a plain form post; the form is parsed once, handlers read it again from the cache)."""
    if request.method in SAFE_METHODS:
        return ""
    if header := request.headers.get(CSRF_HEADER):
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


def page_user(request: Request, session: SessionDep,
              sent: Annotated[str, Depends(sent_csrf_token)]) -> Principal | None:
    """The session cookie's user for a page, or None (no cookie, or a session that ended: the page offers the
    login). Unsafe methods need the session's CSRF token (``Forbidden`` ``reason=csrf``), and an account whose
    e-mail is not confirmed may only manage itself (pages under ``/portal/account/``)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    mark_private(request.scope)
    try:
        principal = _resolve(session, cookie, kind="session")
    except Unauthenticated:
        return None
    if request.method not in SAFE_METHODS:
        if not sent or not principal.csrf_hash or not hmac.compare_digest(sha256_hex(sent), principal.csrf_hash):
            raise Forbidden("missing or wrong CSRF token for a cookie session", reason="csrf")
        if not principal.email_confirmed and not request.url.path.startswith(PAGE_ACCOUNT_PREFIX):
            raise Forbidden("confirm your e-mail address first (the link in the mail sent at sign-up)",
                            reason="email_not_confirmed")
    return principal


async def page_form(request: Request) -> dict[str, str]:
    """A page's posted form as text fields (for forms whose fields depend on the data, e.g. one per class)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return {}
    return {key: value for key, value in (await request.form()).items() if isinstance(value, str)}


PageForm = Annotated[dict[str, str], Depends(page_form)]
PageLang = Annotated[Translator, Depends(page_translator)]
PageUser = Annotated[Principal | None, Depends(page_user)]

# --- Idempotency-Key ------------------------------------------------------------------------------------------


async def _fingerprint(request: Request, settings: Annotated[Settings, Depends(get_app_settings)],
                       idempotency_key: Annotated[str | None, Header(
                           alias=IDEMPOTENCY_HEADER, max_length=MAX_KEY_LENGTH + 2,
                           description="A unique key (e.g. a UUID) per intended request: retrying with it returns "
                                       "the first response instead of writing twice")] = None) -> str | None:
    """The body's fingerprint when the request carries a key (read here: a sync dependency cannot await)."""
    if idempotency_key is None:
        return None
    return request_fingerprint(await request.body(), key=settings.idempotency.hash_key)


Fingerprint = Annotated[str | None, Depends(_fingerprint)]


def _keyed(request: Request, tx: Session, settings: Settings, fingerprint: str | None,
           user_id: int | None) -> KeyedWrite | None:
    if fingerprint is None:
        return None
    ttl = timedelta(hours=settings.idempotency.ttl_hours)
    keyed = KeyedRequest(caller=caller_of(user_id), key=check_key(request.headers[IDEMPOTENCY_HEADER]),
                         method=request.method, path=request.url.path, request_hash=fingerprint)
    return KeyedWrite(request=keyed, session=tx, ttl=ttl, replay=claim(tx.connection(), keyed, ttl=ttl))


def user_idempotency_key(request: Request, tx: WriteTx, user: CurrentUser, settings: SettingsDep,
                         fingerprint: Fingerprint) -> KeyedWrite | None:
    """Dependency (``IdempotencyKeyDep``): the caller's ``Idempotency-Key``, claimed in the request's ``WriteTx``
    (None without the header)."""
    return _keyed(request, tx, settings, fingerprint, user.user_id)


def anonymous_idempotency_key(request: Request, tx: WriteTx, settings: SettingsDep,
                              fingerprint: Fingerprint) -> KeyedWrite | None:
    """Dependency (``AnonymousIdempotencyKeyDep``): an ``Idempotency-Key`` of a request without a login."""
    return _keyed(request, tx, settings, fingerprint, None)


_KEY_DEPENDENCIES: frozenset[Callable[..., Any]] = frozenset({user_idempotency_key, anonymous_idempotency_key})
_WRITE_DEPENDENCIES: frozenset[Callable[..., Any]] = frozenset({get_write_tx, *_KEY_DEPENDENCIES})
# scope="function", like the WriteTx they claim the key in.
IdempotencyKeyDep = Annotated[KeyedWrite | None, Depends(user_idempotency_key, scope="function")]
AnonymousIdempotencyKeyDep = Annotated[KeyedWrite | None, Depends(anonymous_idempotency_key, scope="function")]

def get_log_publisher(engine: Annotated[Engine, Depends(get_engine)],
                      settings: Annotated[Settings, Depends(get_app_settings)]) -> Callable[[], None]:
    """What a write's request runs as a background task once its transaction committed: integrate the new chain
    rows into the public transparency log and sign a checkpoint, in a transaction of its own."""
    return functools.partial(tlog_store.publish_after_commit, engine, settings)


# --- aliases ----------------------------------------------------------------------------------------------------

EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
# scope="function": the connection goes back to the pool when the handler returns, not after the response has
# been sent; under load the pool's connections then serve queries instead of waiting on slow clients.
ReadConnDep = Annotated[AsyncConnection[Any], Depends(get_read_connection, scope="function")]
ReadSessionDep = Annotated[Session, Depends(get_read_session)]
# scope="function": a handler not on a WriteRoute still commits before the response is sent, so a failed commit
# is an error response, not a lost write.
WriteTx = Annotated[Session, Depends(get_write_tx, scope="function")]
TileCacheDep = Annotated[TileCache, Depends(get_tile_cache)]
VacancyHubDep = Annotated[VacancyHub, Depends(get_vacancy_hub)]
LogPublisherDep = Annotated[Callable[[], None], Depends(get_log_publisher)]
