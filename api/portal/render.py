"""Rendering the portal's pages: one Jinja2 environment (autoescaped), the layout's context (language, user, CSRF
token, the language switcher's links), and the page for a domain error (``api/errors.py`` calls ``error_page`` for
``/portal/`` requests: the message inline in the user's language instead of a problem+json body)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.portal.i18n import LANG_COOKIE, LANGUAGES, Translator, negotiate
from api.portal.messages import error_message
from api.security import CSRF_COOKIE
from geo.auth.accounts import Principal
from geo.errors import DolbomError

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
PORTAL = "/portal"

environment = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=select_autoescape(["html"]),
                          trim_blocks=True, lstrip_blocks=True)


def local_path(target: str | None, default: str = PORTAL + "/") -> str:
    """``target`` when it is a path on this site (``/portal/...`` or ``/``), else ``default``: redirects never
    leave the site (``//evil.example`` and ``https://...`` are refused)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def page(request: Request, template: str, t: Translator, *, user: Principal | None, status: int = 200,
         **context: Any) -> HTMLResponse:
    """The page ``template`` in ``t``'s language, with the layout's context."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    html = environment.get_template(template).render(
        _=t, lang=t.lang, languages=LANGUAGES, user=user, csrf_token=request.cookies.get(CSRF_COOKIE, ""),
        here=here, lang_links={code: f"{PORTAL}/lang?to={code}&next={quote(here)}" for code in LANGUAGES},
        **context)
    return HTMLResponse(html, status_code=status,
                        headers={"Content-Language": t.lang, "Vary": "Cookie, Accept-Language"})


def see_other(target: str) -> RedirectResponse:
    """A 303 to ``target`` (after a form post: the browser then GETs it)."""
    return RedirectResponse(target, status_code=303)


def login_redirect(request: Request) -> RedirectResponse:
    """To the login page, coming back here afterwards."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return see_other(f"{PORTAL}/login?next={quote(here)}")


def error_page(request: Request, exc: DolbomError, status: int) -> HTMLResponse:
    """A domain error met outside a page's own form handling (a refused CSRF token, a missing centre): a page with
    the message in the request's language."""
    t = Translator(negotiate(cookie=request.cookies.get(LANG_COOKIE),
                             accept_language=request.headers.get("accept-language")))
    return page(request, "error.html", t, user=None, status=status, message=error_message(t, exc))
