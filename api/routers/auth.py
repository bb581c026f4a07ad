"""Sign-up, login (web session or API token), logout, tokens, and 본인인증 (identity verification)."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from sqlalchemy.orm import Session

from api.deps import AnonymousIdempotencyKeyDep, ClientIp, CurrentUser, SessionDep, SettingsDep, WriteRoute, WriteTx
from api.errors import domain_problem
from api.headers import secure_cookie
from api.schemas.accounts import (
    AccountDeletedOut,
    AccountDeleteIn,
    ConfirmEmailIn,
    IdentityStartOut,
    LocalIdentityIn,
    LoginIn,
    NewTokenIn,
    PasswordChangeIn,
    PasswordResetConfirmIn,
    PasswordResetIn,
    RevokedOut,
    SessionOut,
    SignupAcceptedOut,
    SignupIn,
    TokenLoginIn,
    TokenOut,
    UserOut,
)
from api.security import CSRF_COOKIE, SESSION_COOKIE
from geo.auth import limits
from geo.auth.accounts import (
    IssuedToken,
    change_password,
    get_user,
    issue_token,
    list_tokens,
    login,
    revoke_all_tokens,
    revoke_token,
    revoke_user_token,
)
from geo.auth.identity import LocalTestProvider, provider_from_settings, store_identity
from geo.auth.mail import (
    confirm_email,
    finish_password_reset,
    start_password_reset,
)
from geo.auth.signup import sign_up
from geo.errors import DolbomError, Forbidden, InvalidQuery, TooManyAttempts, Unauthenticated
from geo.privacy.erasure import delete_account
from geo.settings import Settings
from geo.validation import MAX_ID

router = APIRouter(prefix="/auth", tags=["auth"], route_class=WriteRoute)
# Documented as problem+json by api.openapi (401/403 of authenticated operations are added there).
LOGIN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Wrong e-mail or password"},
    429: {"description": "Too many failed logins for this account or address; retry later"}}
IDENTITY_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"description": "This person is already verified on another account (`reason=identity_taken`), or this "
                        "account is verified as another person (`reason=identity_mismatch`; only a city admin "
                        "resets a verification)"}}
IDV_COOKIE = "dolbom_idv"


def _client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


SIGNUP_ANSWER = {"status": "check_your_mail",
                 "detail": "If this address can be used, a mail is on its way to it: confirm the address with the "
                           "token in it (POST /auth/confirm-email). You can log in meanwhile."}
RESET_ANSWER = {"status": "check_your_mail",
                "detail": "If an account has this address, a mail with a reset token is on its way to it "
                          "(POST /auth/password-reset/confirm)."}
LIMIT_ERRORS: dict[int | str, dict[str, Any]] = {
    429: {"description": "Too many from this address (docs/accounts.md); retry after `Retry-After` seconds"}}


@router.post("/signup", status_code=202, response_model=SignupAcceptedOut, summary="A parent creates an account",
             responses=LIMIT_ERRORS)
def signup(body: SignupIn, tx: WriteTx, settings: SettingsDep, ip: ClientIp,
           _key: AnonymousIdempotencyKeyDep) -> dict[str, Any]:
    """Parents sign up themselves; every other role is created by a city admin. The answer is the same whether
    or not the address has an account (an existing one gets a "someone tried to sign up" mail instead of a
    second account), so sign-up does not tell who is registered. The new account must confirm its address
    (``POST /auth/confirm-email``) before it may act. 422 for a bad address or a weak password; 429 past the
    sign-ups allowed from one address (docs/accounts.md)."""
    sign_up(tx.connection(), settings, email=body.email, password=body.password, display_name=body.display_name,
            client_ip=ip)
    return SIGNUP_ANSWER


@router.post("/confirm-email", summary="Confirm the e-mail address with the token of the sign-up mail")
def confirm_email_address(body: ConfirmEmailIn, tx: WriteTx) -> dict[str, Any]:
    """Single use; 422 ``param=token`` for an invalid, expired (48 h) or used token."""
    user_id = confirm_email(tx.connection(), body.token)
    return {"confirmed": True, "user_id": user_id}


@router.post("/password-reset", status_code=202, response_model=SignupAcceptedOut,
             summary="Ask for a password-reset mail", responses=LIMIT_ERRORS)
def password_reset(body: PasswordResetIn, tx: WriteTx, settings: SettingsDep, ip: ClientIp) -> dict[str, Any]:
    """The same answer whether or not the address has an account; the mail holds a single-use token valid for
    an hour. Mails to one address and requests from one client address are limited (docs/accounts.md)."""
    conn = tx.connection()
    limits.check_signup(conn, settings, client_ip=ip)
    email = body.email.strip().lower()
    if limits.check_account_mail(conn, settings, email=email):
        start_password_reset(conn, email=email)
    return RESET_ANSWER


@router.post("/password-reset/confirm", response_model=RevokedOut, summary="Set a new password with a reset token")
def password_reset_confirm(body: PasswordResetConfirmIn, tx: WriteTx) -> dict[str, Any]:
    """Sets the password, revokes every session and token of the account and clears its login lockout (so that
    nobody can keep an account locked by failing logins on purpose). 422 ``param=token`` for an invalid,
    expired or used token, ``param=new_password`` for a weak password (the token stays usable)."""
    return {"revoked": finish_password_reset(tx.connection(), token=body.token, new_password=body.new_password)}


# Refusals answered as problem responses instead of raised, so that the ``WriteTx`` commits what the refused
# attempt recorded: a failed login, or a wrong password checked by ``confirm_password`` before any other write
# (both count towards the lockout).
LOGIN_REFUSALS: tuple[type[Exception], ...] = (Unauthenticated, InvalidQuery)
REAUTHENTICATION_REFUSALS: tuple[type[Exception], ...] = (Forbidden, TooManyAttempts)


def _answer_refusals(request: Request, fn: Any, refusals: tuple[type[Exception], ...]) -> Any:
    """``fn()``, or the problem response of one of ``refusals`` it raised."""
    try:
        return fn()
    except refusals as exc:
        assert isinstance(exc, DolbomError)
        return domain_problem(exc, instance=request.url.path)


def set_session_cookies(request: Request, response: Response, settings: Settings, issued: IssuedToken) -> None:
    """The web session's cookies (the API's login and the portal's): the HttpOnly session and the readable CSRF
    token."""
    assert issued.csrf is not None, "a session token carries its CSRF token"
    max_age = int(settings.auth.session_ttl_hours * 3600)
    secure = secure_cookie(request.scope, settings.auth.cookie_secure)
    response.set_cookie(SESSION_COOKIE, issued.secret, max_age=max_age, httponly=True, samesite="lax",
                        secure=secure, path="/")
    response.set_cookie(CSRF_COOKIE, issued.csrf, max_age=max_age, httponly=False, samesite="strict",
                        secure=secure, path="/")


def clear_session_cookies(response: Response) -> None:
    """Delete the web session's cookies."""
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")


@router.post("/login", response_model=SessionOut, summary="Open a web session (cookies)", responses=LOGIN_ERRORS)
def login_session(body: LoginIn, request: Request, response: Response, tx: WriteTx,
                  settings: SettingsDep) -> dict[str, Any] | Response:
    """Sets the HttpOnly ``dolbom_session`` cookie and the readable ``dolbom_csrf`` cookie; send the CSRF token
    back in ``X-CSRF-Token`` on every POST/PUT/PATCH/DELETE. 401 on wrong credentials, 429 while locked."""
    issued = _answer_refusals(request, lambda: login(tx.connection(), settings, email=body.email,
                                                     password=body.password, kind="session",
                                                     client_ip=_client_ip(request)), LOGIN_REFUSALS)
    if isinstance(issued, Response):
        return issued
    set_session_cookies(request, response, settings, issued)
    return {"csrf_token": issued.csrf, "expires_at": issued.expires_at}


@router.post("/token", response_model=TokenOut, summary="Get an API bearer token", responses=LOGIN_ERRORS)
def login_token(body: TokenLoginIn, request: Request, tx: WriteTx,
                settings: SettingsDep) -> dict[str, Any] | Response:
    """A bearer token for API clients (shown once; only its hash is stored)."""
    issued = _answer_refusals(request, lambda: login(tx.connection(), settings, email=body.email,
                                                     password=body.password, kind="bearer",
                                                     client_ip=_client_ip(request), label=body.label), LOGIN_REFUSALS)
    if isinstance(issued, Response):
        return issued
    return {"id": issued.token_id, "access_token": issued.secret, "expires_at": issued.expires_at}


@router.post("/logout", status_code=204, summary="End this session or revoke this token")
def logout(user: CurrentUser, response: Response, tx: WriteTx) -> Response:
    """Revokes the session or bearer token the request came with and clears the cookies."""
    assert user.token_id is not None
    revoke_token(tx.connection(), token_id=user.token_id, actor_user_id=user.user_id)
    response.status_code = 204
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.post("/logout-all", status_code=204, summary="Log out everywhere")
def logout_all(user: CurrentUser, response: Response, tx: WriteTx) -> Response:
    """Revokes every session and token of the caller, this one included, and clears the cookies."""
    revoke_all_tokens(tx.connection(), user_id=user.user_id, actor_user_id=user.user_id)
    response.status_code = 204
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.post("/password", response_model=RevokedOut, summary="Change my password",
             responses={403: {"description": "The current password is wrong"},
                        429: {"description": "Locked out after too many wrong passwords (Retry-After)"}})
def password(body: PasswordChangeIn, user: CurrentUser, request: Request, tx: WriteTx, settings: SettingsDep,
             ip: ClientIp) -> dict[str, Any] | Response:
    """Every other session and token is revoked; the one this request came with stays. A wrong current password
    counts towards the login lockout (429 while locked)."""
    outcome = _answer_refusals(request, lambda: change_password(
        tx.connection(), settings, user_id=user.user_id, current_password=body.current_password,
        new_password=body.new_password, keep_token_id=user.token_id, client_ip=ip), REAUTHENTICATION_REFUSALS)
    return outcome if isinstance(outcome, Response) else {"revoked": outcome}


@router.delete("/me", response_model=AccountDeletedOut, summary="Delete my account",
               responses={403: {"description": "The password is wrong"},
                          409: {"description": "The last city admin"},
                          429: {"description": "Locked out after too many wrong passwords (Retry-After)"}})
def delete_me(body: AccountDeleteIn, user: CurrentUser, request: Request, response: Response, tx: WriteTx,
              settings: SettingsDep, ip: ClientIp) -> dict[str, Any] | Response:
    """Live waitlist entries are withdrawn, future bookings cancelled, personal fields of what stays (bookings,
    audit rows) pseudonymised; the public hash chains are never rewritten (they hold only pseudonymous ids).
    See docs/privacy.md."""
    out = _answer_refusals(request, lambda: delete_account(tx.connection(), settings, user_id=user.user_id,
                                                           password=body.password, client_ip=ip),
                           REAUTHENTICATION_REFUSALS)
    if isinstance(out, Response):
        return out
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return out


@router.get("/me", response_model=UserOut, summary="The logged-in account")
def me(user: CurrentUser, session: SessionDep) -> dict[str, Any]:
    """Account fields (verified identity included, never hashes)."""
    return get_user(session.connection(), user.user_id)


@router.get("/tokens", summary="My sessions and tokens (no secrets)")
def tokens(user: CurrentUser, session: SessionDep) -> list[dict[str, Any]]:
    """Every session and token of the caller, revoked ones included."""
    return list_tokens(session.connection(), user_id=user.user_id)


@router.post("/tokens", status_code=201, response_model=TokenOut, summary="Create an API token")
def new_token(body: NewTokenIn, user: CurrentUser, tx: WriteTx, settings: SettingsDep) -> dict[str, Any]:
    """A new bearer token for the caller (e.g. from the web page)."""
    issued = issue_token(tx.connection(), settings, user_id=user.user_id, kind="bearer", label=body.label)
    return {"id": issued.token_id, "access_token": issued.secret, "expires_at": issued.expires_at}


@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke one of my tokens")
def delete_token(token_id: Annotated[int, Path(ge=1, le=MAX_ID)], user: CurrentUser, tx: WriteTx) -> Response:
    """Revoke a token or session of the caller (404 for anyone else's)."""
    revoke_user_token(tx.connection(), user_id=user.user_id, token_id=token_id)
    return Response(status_code=204)


@router.post("/identity/start", response_model=IdentityStartOut, summary="Start 본인인증")
def identity_start(user: CurrentUser, request: Request, response: Response,
                   settings: SettingsDep) -> dict[str, Any]:
    """Where to verify (the configured provider); state and nonce are kept in an HttpOnly cookie."""
    provider = provider_from_settings(settings)
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    url = provider.authorization_url(state=state, nonce=nonce)
    response.set_cookie(IDV_COOKIE, f"{state}.{nonce}", max_age=600, httponly=True, samesite="lax",
                        secure=secure_cookie(request.scope, settings.auth.cookie_secure),
                        path="/auth/identity")
    return {"provider": provider.name, "url": url, "state": state}


def _check_state(request: Request, state: str) -> str:
    expected_state, _, nonce = request.cookies.get(IDV_COOKIE, "").partition(".")
    # As bytes: compare_digest refuses non-ASCII str (a 500 for a Hangul state).
    if not expected_state or not secrets.compare_digest(expected_state.encode(), state.encode()):
        raise Unauthenticated("identity verification state does not match; start again")
    return nonce


def _finish(tx: Session, settings: Settings, user_id: int, complete: Any, response: Response) -> Any:
    identity = complete()
    store_identity(tx.connection(), settings, user_id=user_id, identity=identity)
    user = get_user(tx.connection(), user_id)
    response.delete_cookie(IDV_COOKIE, path="/auth/identity")
    return user


@router.post("/identity/local", response_model=UserOut, summary="Complete 본인인증 with the local test provider",
             responses=IDENTITY_ERRORS)
def identity_local(body: LocalIdentityIn, user: CurrentUser, request: Request, response: Response,
                   tx: WriteTx, settings: SettingsDep) -> dict[str, Any]:
    """Development only (``DOLBOM_IDENTITY_PROVIDER=local``): the submitted name/birth date/phone are taken as
    verified. No 주민등록번호 is asked for, and one is refused if sent in any field."""
    if settings.identity.provider != "local":
        raise InvalidQuery("the local identity provider is disabled")
    nonce = _check_state(request, body.state)
    provider = LocalTestProvider()
    return _finish(tx, settings, user.user_id, lambda: provider.complete(
        {"name": body.name, "birth_date": body.birth_date, "phone": body.phone or ""}, nonce=nonce), response)


@router.get("/identity/callback", response_model=UserOut, summary="OpenID Connect 본인인증 callback",
            responses=IDENTITY_ERRORS)
def identity_callback(request: Request, user: CurrentUser, response: Response, tx: WriteTx,
                      settings: SettingsDep) -> dict[str, Any]:
    """The provider redirects here with ``code`` and ``state``."""
    params = dict(request.query_params)
    nonce = _check_state(request, params.get("state", ""))
    provider = provider_from_settings(settings)
    return _finish(tx, settings, user.user_id, lambda: provider.complete(params, nonce=nonce), response)
