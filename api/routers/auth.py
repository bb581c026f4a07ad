"""Sign-up, login (web session or API token), logout, tokens, and 본인인증 (identity verification)."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from api.deps import SessionDep, SettingsDep, TxSessionDep
from api.idempotency import AnonymousIdempotencyKeyDep, IdempotentRoute
from api.schemas.accounts import (
    IdentityStartOut,
    LocalIdentityIn,
    LoginIn,
    NewTokenIn,
    SessionOut,
    SignupIn,
    TokenLoginIn,
    TokenOut,
    UserOut,
)
from api.security import CSRF_COOKIE, SESSION_COOKIE, CurrentUser
from geo.auth.accounts import create_user, get_user, issue_token, list_tokens, login, revoke_token, revoke_user_token
from geo.auth.identity import LocalTestProvider, provider_from_settings, store_identity
from geo.auth.policy import Role
from geo.errors import InvalidQuery, Unauthenticated
from geo.validation import MAX_ID

router = APIRouter(prefix="/auth", tags=["auth"], route_class=IdempotentRoute)
# Documented as problem+json by api.openapi (401/403 of authenticated operations are added there).
LOGIN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Wrong e-mail or password"},
    429: {"description": "Too many failed logins for this account or address; retry later"}}
IDENTITY_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"description": "This person is already verified on another account"}}
IDV_COOKIE = "dolbom_idv"


def _client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.post("/signup", status_code=201, response_model=UserOut, summary="A parent creates an account",
             responses={409: {"description": "E-mail already registered"}})
def signup(body: SignupIn, session: TxSessionDep, _key: AnonymousIdempotencyKeyDep) -> dict[str, Any]:
    """Parents sign up themselves; every other role is created by a city admin."""
    conn = session.connection()
    user_id = create_user(conn, email=body.email, password=body.password, role=Role.parent,
                          display_name=body.display_name)
    user = get_user(conn, user_id)
    return user


def _login_or_record(session: SessionDep, fn: Any) -> Any:
    """Run a login; failed attempts are committed too, so that they count towards the lockout."""
    try:
        result = fn()
    except (Unauthenticated, InvalidQuery):
        session.commit()
        raise
    session.commit()
    return result


@router.post("/login", response_model=SessionOut, summary="Open a web session (cookies)", responses=LOGIN_ERRORS)
def login_session(body: LoginIn, request: Request, response: Response, session: SessionDep,
                  settings: SettingsDep) -> dict[str, Any]:
    """Sets the HttpOnly ``dolbom_session`` cookie and the readable ``dolbom_csrf`` cookie; send the CSRF token
    back in ``X-CSRF-Token`` on every POST/PUT/PATCH/DELETE. 401 on wrong credentials, 429 while locked."""
    issued = _login_or_record(session, lambda: login(session.connection(), settings, email=body.email,
                                                      password=body.password, kind="session",
                                                      client_ip=_client_ip(request)))
    max_age = int(settings.session_ttl_hours * 3600)
    response.set_cookie(SESSION_COOKIE, issued.secret, max_age=max_age, httponly=True, samesite="lax",
                        secure=settings.cookie_secure, path="/")
    response.set_cookie(CSRF_COOKIE, issued.csrf, max_age=max_age, httponly=False, samesite="strict",
                        secure=settings.cookie_secure, path="/")
    return {"csrf_token": issued.csrf, "expires_at": issued.expires_at}


@router.post("/token", response_model=TokenOut, summary="Get an API bearer token", responses=LOGIN_ERRORS)
def login_token(body: TokenLoginIn, request: Request, session: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    """A bearer token for API clients (shown once; only its hash is stored)."""
    issued = _login_or_record(session, lambda: login(session.connection(), settings, email=body.email,
                                                      password=body.password, kind="bearer",
                                                      client_ip=_client_ip(request), label=body.label))
    return {"id": issued.token_id, "access_token": issued.secret, "expires_at": issued.expires_at}


@router.post("/logout", status_code=204, summary="End this session or revoke this token")
def logout(user: CurrentUser, response: Response, session: SessionDep) -> Response:
    """Revokes the session or bearer token the request came with and clears the cookies."""
    assert user.token_id is not None
    revoke_token(session.connection(), token_id=user.token_id, actor_user_id=user.user_id)
    session.commit()
    response.status_code = 204
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.get("/me", response_model=UserOut, summary="The logged-in account")
def me(user: CurrentUser, session: SessionDep) -> dict[str, Any]:
    """Account fields (verified identity included, never hashes)."""
    return get_user(session.connection(), user.user_id)


@router.get("/tokens", summary="My sessions and tokens (no secrets)")
def tokens(user: CurrentUser, session: SessionDep) -> list[dict[str, Any]]:
    """Every session and token of the caller, revoked ones included."""
    return list_tokens(session.connection(), user_id=user.user_id)


@router.post("/tokens", status_code=201, response_model=TokenOut, summary="Create an API token")
def new_token(body: NewTokenIn, user: CurrentUser, session: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    """A new bearer token for the caller (e.g. from the web page)."""
    issued = issue_token(session.connection(), settings, user_id=user.user_id, kind="bearer", label=body.label)
    session.commit()
    return {"id": issued.token_id, "access_token": issued.secret, "expires_at": issued.expires_at}


@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke one of my tokens")
def delete_token(token_id: Annotated[int, Path(ge=1, le=MAX_ID)], user: CurrentUser, session: SessionDep) -> Response:
    """Revoke a token or session of the caller (404 for anyone else's)."""
    revoke_user_token(session.connection(), user_id=user.user_id, token_id=token_id)
    session.commit()
    return Response(status_code=204)


@router.post("/identity/start", response_model=IdentityStartOut, summary="Start 본인인증")
def identity_start(user: CurrentUser, response: Response, settings: SettingsDep) -> dict[str, Any]:
    """Where to verify (the configured provider); state and nonce are kept in an HttpOnly cookie."""
    provider = provider_from_settings(settings)
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    url = provider.authorization_url(state=state, nonce=nonce)
    response.set_cookie(IDV_COOKIE, f"{state}.{nonce}", max_age=600, httponly=True, samesite="lax",
                        secure=settings.cookie_secure, path="/auth/identity")
    return {"provider": provider.name, "url": url, "state": state}


def _check_state(request: Request, state: str) -> str:
    expected_state, _, nonce = request.cookies.get(IDV_COOKIE, "").partition(".")
    if not expected_state or not secrets.compare_digest(expected_state, state):
        raise Unauthenticated("identity verification state does not match; start again")
    return nonce


def _finish(session: SessionDep, settings: SettingsDep, user_id: int, complete: Any, response: Response) -> Any:
    identity = complete()
    store_identity(session.connection(), settings, user_id=user_id, identity=identity)
    user = get_user(session.connection(), user_id)
    session.commit()
    response.delete_cookie(IDV_COOKIE, path="/auth/identity")
    return user


@router.post("/identity/local", response_model=UserOut, summary="Complete 본인인증 with the local test provider",
             responses=IDENTITY_ERRORS)
def identity_local(body: LocalIdentityIn, user: CurrentUser, request: Request, response: Response,
                   session: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    """Development only (``DOLBOM_IDENTITY_PROVIDER=local``): the submitted name/birth date/phone are taken as
    verified. No 주민등록번호 is asked for, and one is refused if sent in any field."""
    if settings.identity_provider != "local":
        raise InvalidQuery("the local identity provider is disabled")
    nonce = _check_state(request, body.state)
    provider = LocalTestProvider()
    return _finish(session, settings, user.user_id, lambda: provider.complete(
        {"name": body.name, "birth_date": body.birth_date, "phone": body.phone or ""}, nonce=nonce), response)


@router.get("/identity/callback", response_model=UserOut, summary="OpenID Connect 본인인증 callback",
            responses=IDENTITY_ERRORS)
def identity_callback(request: Request, user: CurrentUser, response: Response, session: SessionDep,
                      settings: SettingsDep) -> dict[str, Any]:
    """The provider redirects here with ``code`` and ``state``."""
    params = dict(request.query_params)
    nonce = _check_state(request, params.get("state", ""))
    provider = provider_from_settings(settings)
    return _finish(session, settings, user.user_id, lambda: provider.complete(params, nonce=nonce), response)
