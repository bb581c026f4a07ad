"""The portal's account pages: sign-up, e-mail confirmation, login/logout, 본인인증 (the local development provider's
form; OpenID Connect hands over to ``/auth/identity/start``), and the language switch. Forms post back to their page;
a domain error is shown inline in the user's language (``api.portal.messages``), a success redirects (303)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, TypeVar

import httpx
from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from api.deps import ClientIp, PageLang, PageUser, SessionDep, SettingsDep, WriteRoute, WriteTx
from api.headers import secure_cookie
from api.portal.i18n import LANG_COOKIE, LANGUAGES, Translator
from api.portal.messages import error_message
from api.portal.render import PORTAL, local_path, login_redirect, page, see_other
from api.routers.auth import LOGIN_REFUSALS, clear_session_cookies, set_session_cookies
from geo.auth.accounts import get_user, login, revoke_token
from geo.auth.identity import LocalTestProvider, provider_from_settings, store_identity
from geo.auth.mail import confirm_email
from geo.auth.policy import Role
from geo.auth.signup import sign_up
from geo.errors import DolbomError, InvalidQuery, Unauthenticated
from geo.settings import Settings

router = APIRouter(prefix=PORTAL, include_in_schema=False, route_class=WriteRoute)
Text = Annotated[str, Form(max_length=500)]
T = TypeVar("T")
LANG_COOKIE_MAX_AGE_S = 365 * 24 * 3600


def attempt(tx: Session, t: Translator, fn: Callable[[], T]) -> tuple[T | None, dict[str, str]]:
    """``fn()`` in a savepoint: its result, or (None, the form's errors by field) with its writes undone. The
    field is the error's ``param`` (``_`` for the whole form)."""
    try:
        with tx.begin_nested():
            return fn(), {}
    except DolbomError as exc:
        return None, {field_of(exc): error_message(t, exc)}


def form_date(value: str, *, param: str) -> date:
    """A date typed in a text field (birth dates: text, not a date picker, GOV.UK's advice for memorable dates):
    ``2025-05-01``, ``2025.5.1``, ``2025. 5. 1.``, ``2025/05/01`` or ``20250501``. ``InvalidQuery`` otherwise."""
    parts = [p for p in re.split(r"[^0-9]+", value.strip()) if p]
    if len(parts) == 1 and len(parts[0]) == 8:
        parts = [parts[0][:4], parts[0][4:6], parts[0][6:]]
    try:
        if len(parts) != 3 or len(parts[0]) != 4:
            raise ValueError(value)
        return date(int(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError as exc:
        raise InvalidQuery(f"{value!r} is not a date (YYYY-MM-DD)", param=param) from exc


def field_of(exc: DolbomError) -> str:
    """The form field an error is about (``param``), or ``_``."""
    param = exc.extra.get("param")
    return param if isinstance(param, str) and param.isidentifier() else "_"


@router.get("/")
def home(user: PageUser) -> RedirectResponse:
    """Where a user starts: a parent's applications, a centre's staff their centres, an officer or the city
    admin the district dashboard, or the login."""
    if user is None:
        return see_other(f"{PORTAL}/login")
    if user.role in (Role.district_officer, Role.city_admin):
        return see_other(f"{PORTAL}/officer")
    return see_other(f"{PORTAL}/staff" if user.role == Role.centre_staff else f"{PORTAL}/applications")


@router.get("/lang")
def switch_language(request: Request, to: str = "ko", next: str = "/portal/") -> RedirectResponse:
    """Remember the chosen language (the ``dolbom_lang`` cookie, a year) and go back."""
    response = see_other(local_path(next))
    if to in LANGUAGES:
        response.set_cookie(LANG_COOKIE, to, max_age=LANG_COOKIE_MAX_AGE_S, samesite="lax", path="/",
                            secure=secure_cookie(request.scope, request.app.settings.auth.cookie_secure))
    return response


@router.get("/signup")
def signup_form(request: Request, t: PageLang, user: PageUser) -> HTMLResponse:
    """The sign-up form."""
    return page(request, "signup.html", t, user=user, nav="signup", errors={}, values={})


@router.post("/signup")
def signup(request: Request, t: PageLang, user: PageUser, tx: WriteTx, settings: SettingsDep, ip: ClientIp,
           email: Text = "", password: Text = "", display_name: Text = "") -> HTMLResponse:
    """Create the account (the same answer whether or not the address had one), then ask for the mailed code."""
    values = {"email": email, "display_name": display_name}
    _, errors = attempt(tx, t, lambda: sign_up(tx.connection(), settings, email=email, password=password,
                                               display_name=display_name or None, client_ip=ip))
    if errors:
        return page(request, "signup.html", t, user=user, nav="signup", errors=errors, values=values, status=422)
    return page(request, "signed_up.html", t, user=user, errors={}, values={}, dev_outbox=dev_outbox(settings))


def dev_outbox(settings: Settings) -> str:
    """On a development server with the file sink: where the mails land once ``dolbom notify worker`` ran (shown
    on the page, so that a first run reaches the confirmation code without a mail server); else empty."""
    if settings.server.environment != "development" or settings.notify.provider != "file":
        return ""
    return str(settings.notify.file_path or settings.local.data_dir / "sms-outbox.jsonl")


@router.get("/account/confirm-email")
def confirm_form(request: Request, t: PageLang, user: PageUser, settings: SettingsDep,
                 token: str = "") -> HTMLResponse:
    """The form for the mailed confirmation code (``?token=`` fills it in)."""
    return page(request, "signed_up.html", t, user=user, errors={}, values={"token": token[:200]},
                dev_outbox=dev_outbox(settings))


@router.post("/account/confirm-email", response_model=None)
def confirm(request: Request, t: PageLang, user: PageUser, tx: WriteTx, settings: SettingsDep,
            token: Text = "") -> HTMLResponse | RedirectResponse:
    """Spend the code; then log in (or carry on, when already logged in)."""
    _, errors = attempt(tx, t, lambda: confirm_email(tx.connection(), token))
    if errors:
        return page(request, "signed_up.html", t, user=user, errors={"token": next(iter(errors.values()))},
                    values={"token": token}, dev_outbox=dev_outbox(settings), status=422)
    return see_other(f"{PORTAL}/account/identity?confirmed=1" if user else f"{PORTAL}/login?confirmed=1")


@router.get("/login")
def login_form(request: Request, t: PageLang, user: PageUser, next: str = "", confirmed: str = "") -> HTMLResponse:
    """The login form."""
    message = t("Your e-mail address is confirmed. Log in to continue.") if confirmed else ""
    return page(request, "login.html", t, user=user, nav="login", errors={}, values={}, next=local_path(next, ""),
                message=message)


@router.post("/login", response_model=None)
def login_submit(request: Request, t: PageLang, tx: WriteTx, settings: SettingsDep, ip: ClientIp,
                 email: Text = "", password: Text = "", next: Text = "") -> HTMLResponse | RedirectResponse:
    """Open a web session (the API's cookies); a refusal is shown inline and still committed (it counts towards
    the lockout, as in the API)."""
    try:
        issued = login(tx.connection(), settings, email=email, password=password, kind="session", client_ip=ip)
    except LOGIN_REFUSALS as exc:
        assert isinstance(exc, DolbomError)
        return page(request, "login.html", t, user=None, nav="login", errors={"_": error_message(t, exc)},
                    values={"email": email}, next=local_path(next, ""), message="", status=422)
    response = see_other(local_path(next, f"{PORTAL}/"))
    set_session_cookies(request, response, settings, issued)
    return response


@router.post("/account/logout", response_model=None)
def logout(request: Request, user: PageUser, tx: WriteTx) -> Response:
    """End this session and go to the login page."""
    response = see_other(f"{PORTAL}/login")
    if user is not None and user.token_id is not None:
        revoke_token(tx.connection(), token_id=user.token_id, actor_user_id=user.user_id)
    clear_session_cookies(response)
    return response


@router.get("/account/identity", response_model=None)
def identity_form(request: Request, t: PageLang, user: PageUser, session: SessionDep, settings: SettingsDep,
                  confirmed: str = "") -> HTMLResponse | RedirectResponse:
    """본인인증: the local provider's form in development, else the button to the configured provider."""
    if user is None:
        return login_redirect(request)
    account = get_user(session.connection(), user.user_id)
    message = t("Your e-mail address is confirmed.") if confirmed else ""
    return page(request, "identity.html", t, user=user, nav="identity", account=account, errors={}, values={},
                provider=settings.identity.provider, message=message)


@router.post("/account/identity", response_model=None)
def identity_local(request: Request, t: PageLang, user: PageUser, tx: WriteTx, settings: SettingsDep,
                   name: Text = "", birth_date: Text = "", phone: Text = "") -> HTMLResponse | RedirectResponse:
    """The local development provider (``DOLBOM_IDENTITY_PROVIDER=local``): what is entered is taken as verified.
    The form itself is the CSRF-checked post of a logged-in user, so no state round trip is needed here."""
    if user is None:
        return login_redirect(request)
    values = {"name": name, "birth_date": birth_date, "phone": phone}
    errors: dict[str, str] = {}
    if settings.identity.provider != "local":
        errors = {"_": t("The development identity provider is switched off.")}
    else:
        provider = LocalTestProvider()
        _, errors = attempt(tx, t, lambda: store_identity(
            tx.connection(), settings, user_id=user.user_id, identity=provider.complete(
                {"name": name, "birth_date": form_date(birth_date, param="birth_date").isoformat(),
                 "phone": phone}, nonce="")))
    if errors:
        account: dict[str, Any] = get_user(tx.connection(), user.user_id)
        return page(request, "identity.html", t, user=user, nav="identity", account=account, errors=errors,
                    values=values, provider=settings.identity.provider, message="", status=422)
    return see_other(f"{PORTAL}/children?verified=1")



IDV_COOKIE = "dolbom_portal_idv"
IDV_PATH = f"{PORTAL}/account/identity"


@router.post("/account/identity/start", response_model=None)
def identity_start(request: Request, t: PageLang, user: PageUser, session: SessionDep,
                   settings: SettingsDep) -> HTMLResponse | RedirectResponse:
    """본인인증 with the configured OpenID Connect provider: to its page, with state and nonce kept in an HttpOnly
    cookie for the callback. The provider must send the browser back to ``/portal/account/identity/callback``
    (``DOLBOM_OIDC_REDIRECT_URI``)."""
    if user is None:
        return login_redirect(request)
    try:
        provider = provider_from_settings(settings)
        state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        url = provider.authorization_url(state=state, nonce=nonce)
    except (DolbomError, httpx.HTTPError) as exc:
        message = error_message(t, exc) if isinstance(exc, DolbomError) else t(
            "The identity service does not answer. Try again later.")
        return page(request, "identity.html", t, user=user, nav="identity", status=502,
                    account=get_user(session.connection(), user.user_id), errors={"_": message}, values={},
                    provider=settings.identity.provider, message="")
    response = see_other(url)
    response.set_cookie(IDV_COOKIE, f"{state}.{nonce}", max_age=600, httponly=True, samesite="lax", path=IDV_PATH,
                        secure=secure_cookie(request.scope, settings.auth.cookie_secure))
    return response


@router.get("/account/identity/callback", response_model=None)
def identity_callback(request: Request, t: PageLang, user: PageUser, tx: WriteTx,
                      settings: SettingsDep) -> HTMLResponse | RedirectResponse:
    """The provider's redirect (``code``, ``state``): the verified identity is stored, then on to the children."""
    if user is None:
        return login_redirect(request)
    params = dict(request.query_params)
    expected_state, _, nonce = request.cookies.get(IDV_COOKIE, "").partition(".")

    def finish() -> None:
        # As bytes: compare_digest refuses non-ASCII str.
        if not expected_state or not secrets.compare_digest(expected_state.encode(),
                                                            params.get("state", "").encode()):
            raise Unauthenticated("identity verification state does not match; start again",
                                  reason="identity_incomplete")
        try:
            identity = provider_from_settings(settings).complete(params, nonce=nonce)
        except (Unauthenticated, httpx.HTTPError) as exc:
            raise Unauthenticated(f"the provider did not verify: {exc}", reason="identity_incomplete") from exc
        store_identity(tx.connection(), settings, user_id=user.user_id, identity=identity)

    _, errors = attempt(tx, t, finish)
    if errors:
        response: HTMLResponse | RedirectResponse = page(
            request, "identity.html", t, user=user, nav="identity", status=422, errors=errors, values={},
            account=get_user(tx.connection(), user.user_id), provider=settings.identity.provider, message="")
    else:
        response = see_other(f"{PORTAL}/children?verified=1")
    response.delete_cookie(IDV_COOKIE, path=IDV_PATH)
    return response
