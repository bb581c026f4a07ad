"""Who is calling, and may they: the one FastAPI entry point to ``geo.auth.policy``.

- ``Authorization: Bearer <token>`` for API clients (no CSRF: browsers never attach it by themselves);
- the ``dolbom_session`` cookie (HttpOnly, SameSite=Lax) for the web page; unsafe methods (POST, PUT, PATCH,
  DELETE) on a cookie session need ``X-CSRF-Token`` equal to the session's synchronizer token (returned at
  login and also set in the readable ``dolbom_csrf`` cookie); only its SHA-256 is stored.

``CurrentUser`` requires a login; ``require_role(...)`` a role; ``authorize(...)`` a policy action on a resource.
Everything refused is a ``geo.errors`` error rendered as problem+json by ``api/errors.py`` (401 / 403).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from api.deps import SessionDep
from api.private import mark_private
from geo.auth.accounts import Principal, resolve_token, sha256_hex
from geo.auth.policy import Action, Resource, Role
from geo.auth.policy import authorize as policy_authorize
from geo.errors import Forbidden, Unauthenticated

SESSION_COOKIE = "dolbom_session"
CSRF_COOKIE = "dolbom_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _principal(request: Request, session: SessionDep) -> Principal | None:
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, secret = auth.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthenticated("Authorization must be 'Bearer <token>'")
        return _resolve(session, secret.strip(), kind="bearer")
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    principal = _resolve(session, cookie, kind="session")
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not principal.csrf_hash or not hmac.compare_digest(sha256_hex(sent), principal.csrf_hash):
            raise Forbidden(f"missing or wrong {CSRF_HEADER} for a cookie session", reason="csrf")
    return principal


def _resolve(session: Session, secret: str, *, kind: str) -> Principal:
    """``resolve_token`` on the request's read session, whose connection goes back to the pool at once: the
    handler then checks out its own (a writing handler's ``TxSessionDep``), and a request never holds two pool
    connections. Holding this one until the response had let 20 concurrent rank checks each keep one
    connection of the 20 while waiting for a second: the pool deadlocked until its timeout (found by
    benchmarks/bench_load.py at 64 users on one worker)."""
    try:
        return resolve_token(session.connection(), secret, kind=kind)
    finally:
        session.close()


def optional_user(request: Request, session: SessionDep) -> Principal | None:
    """The caller when authenticated, else None (a bad token is still a 401)."""
    if request.headers.get("authorization") or request.cookies.get(SESSION_COOKIE):
        mark_private(request.scope)
    return _principal(request, session)


def current_user(request: Request, session: SessionDep) -> Principal:
    """The authenticated caller; 401 otherwise."""
    mark_private(request.scope)
    principal = _principal(request, session)
    if principal is None:
        raise Unauthenticated("log in (session cookie) or send a bearer token")
    return principal


CurrentUser = Annotated[Principal, Depends(current_user)]
OptionalUser = Annotated[Principal | None, Depends(optional_user)]


def require_role(*roles: Role) -> Callable[..., Principal]:
    """Dependency: the caller, who must have one of ``roles`` (403 problem+json otherwise)."""
    allowed = frozenset(roles)

    def dependency(user: CurrentUser) -> Principal:
        if user.role not in allowed:
            raise Forbidden(f"role {user.role.value} may not do this (needs {', '.join(sorted(allowed))})")
        return user

    return dependency


def authorize(user: Principal, action: Action, *, facility_id: int | None = None,
              district_code: str | None = None) -> None:
    """Apply the policy to ``user`` for ``action`` on a centre or a 구 (403 problem+json when refused)."""
    policy_authorize(user.subject, action, Resource(facility_id=facility_id, district_code=district_code))


AdminUser = Annotated[Principal, Depends(require_role(Role.city_admin))]
