"""What a caller may do: the one FastAPI entry point to ``geo.auth.policy``, and the names of the credentials.

- ``Authorization: Bearer <token>`` for API clients (no CSRF: browsers never attach it by themselves);
- the ``dolbom_session`` cookie (HttpOnly, SameSite=Lax) for the web page; unsafe methods (POST, PUT, PATCH,
  DELETE) on a cookie session need ``X-CSRF-Token`` equal to the session's synchronizer token (returned at
  login and also set in the readable ``dolbom_csrf`` cookie); only its SHA-256 is stored.

Who is calling is resolved by the dependencies in ``api/deps.py`` (``CurrentUser``, ``OptionalUser``,
``AdminUser``, ``require_role(...)``); ``authorize(...)`` applies a policy action to a resource. Everything
refused is a ``geo.errors`` error rendered as problem+json by ``api/errors.py`` (401 / 403).
"""

from __future__ import annotations

from geo.auth.accounts import Principal
from geo.auth.policy import Action, Resource
from geo.auth.policy import authorize as policy_authorize

SESSION_COOKIE = "dolbom_session"
CSRF_COOKIE = "dolbom_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"  # the same token in a portal page's form field (a form post cannot send headers)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def authorize(user: Principal, action: Action, *, facility_id: int | None = None,
              district_code: str | None = None) -> None:
    """Apply the policy to ``user`` for ``action`` on a centre or a 구 (403 problem+json when refused)."""
    policy_authorize(user.subject, action, Resource(facility_id=facility_id, district_code=district_code))
