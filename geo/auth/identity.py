"""본인인증 (identity verification) behind a Protocol: a local test provider and OpenID Connect via authlib.

Whatever a provider returns, only name, birth date, phone and an HMAC of the CI (연계정보) are kept; a
주민등록번호 is never requested, and a provider that sends one (or anything else) has it dropped here.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

import httpx
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from geo.auth.audit import audit
from geo.errors import Conflict, Forbidden, InvalidQuery, NotFound, Unauthenticated
from geo.settings import Settings
from geo.validation import personal_text

_PHONE = re.compile(r"^\+?[0-9][0-9-]{7,15}$")


@dataclass(frozen=True)
class VerifiedIdentity:
    """What dolbom keeps from a verification (the CI only until it is hashed)."""

    provider: str
    name: str
    birth_date: date
    phone: str | None
    ci: str


class IdentityProvider(Protocol):
    """A 본인인증 provider: send the user to ``authorization_url``, then ``complete`` with the callback's
    query parameters."""

    name: str

    def authorization_url(self, *, state: str, nonce: str) -> str:
        """Where to send the user's browser."""
        ...

    def complete(self, params: Mapping[str, str], *, nonce: str) -> VerifiedIdentity:
        """Exchange the callback parameters for a verified identity (``Unauthenticated`` on failure)."""
        ...


def _identity(provider: str, claims: Mapping[str, Any]) -> VerifiedIdentity:
    """Pick name/birth date/phone/CI out of provider claims, refusing anything that looks like a 주민등록번호
    (``geo.validation.personal_text``; the CI is an opaque provider value, hashed and never shown)."""
    name = personal_text(str(claims.get("name") or ""), param="name") or ""
    birth = personal_text(str(claims.get("birthdate") or claims.get("birth_date") or ""), param="birth_date") or ""
    phone = personal_text(str(claims.get("phone_number") or claims.get("phone") or ""), param="phone")
    ci = str(claims.get("ci") or "").strip()
    if not name or not ci:
        raise Unauthenticated(f"{provider}: the provider did not return a name and a CI")
    try:
        birth_date = date.fromisoformat(birth)
    except ValueError as exc:
        raise InvalidQuery(f"birth date {birth!r} is not YYYY-MM-DD", param="birth_date") from exc
    if phone is not None and not _PHONE.match(phone):
        raise InvalidQuery(f"phone {phone!r} is not a phone number", param="phone")
    return VerifiedIdentity(provider=provider, name=name, birth_date=birth_date, phone=phone, ci=ci)


class LocalTestProvider:
    """Development provider: the "verification" is the form the user fills in (name, birth_date, phone);
    the CI is derived from name + birth date so the same person gets the same CI."""

    name = "local"

    def authorization_url(self, *, state: str, nonce: str) -> str:
        """The local verification form."""
        return f"/auth/identity/local?state={state}"

    def complete(self, params: Mapping[str, str], *, nonce: str) -> VerifiedIdentity:
        """Accept the submitted fields as verified."""
        name = personal_text(params.get("name") or "", param="name") or ""
        ci = "LOCAL-" + hashlib.sha256(f"{name}|{params.get('birth_date', '')}".encode()).hexdigest()
        return _identity(self.name, {"name": name, "birthdate": params.get("birth_date"),
                                     "phone_number": params.get("phone"), "ci": ci})


class OIDCProvider:
    """OpenID Connect provider (authorization code flow) through authlib, configured by settings
    (``DOLBOM_OIDC_ISSUER``, ``_CLIENT_ID``, ``_CLIENT_SECRET``, ``_REDIRECT_URI``).

    The ID token is verified against the issuer's JWKS (signature, ``iss``, ``aud``, ``exp``, ``nonce``);
    name, birthdate and phone_number come from the ID token or the userinfo endpoint, the CI from a ``ci``
    claim (Korean 본인인증 gateways expose it under that name).
    """

    name = "oidc"

    def __init__(self, settings: Settings, *, timeout_s: float = 10.0) -> None:
        oidc = settings.identity
        if not (oidc.oidc_issuer and oidc.oidc_client_id and oidc.oidc_client_secret and oidc.oidc_redirect_uri):
            raise InvalidQuery("OIDC provider needs DOLBOM_OIDC_ISSUER, _CLIENT_ID, _CLIENT_SECRET and _REDIRECT_URI")
        self.issuer = oidc.oidc_issuer.rstrip("/")
        self.client_id = oidc.oidc_client_id
        self.client_secret = oidc.oidc_client_secret
        self.redirect_uri = oidc.oidc_redirect_uri
        self.timeout_s = timeout_s
        self._metadata: dict[str, Any] | None = None

    def metadata(self) -> dict[str, Any]:
        """The issuer's discovery document (fetched once)."""
        if self._metadata is None:
            resp = httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=self.timeout_s)
            resp.raise_for_status()
            self._metadata = resp.json()
        return self._metadata

    def _client(self) -> Any:
        from authlib.integrations.httpx_client import OAuth2Client

        return OAuth2Client(client_id=self.client_id, client_secret=self.client_secret,
                            redirect_uri=self.redirect_uri, scope="openid profile phone", timeout=self.timeout_s)

    def authorization_url(self, *, state: str, nonce: str) -> str:
        """The issuer's authorization endpoint with state and nonce."""
        with self._client() as client:
            url, _ = client.create_authorization_url(self.metadata()["authorization_endpoint"], state=state,
                                                     nonce=nonce)
        return str(url)

    def complete(self, params: Mapping[str, str], *, nonce: str) -> VerifiedIdentity:
        """Exchange the code, verify the ID token, read userinfo."""
        from authlib.jose import JsonWebKey, jwt
        from authlib.jose.errors import JoseError

        if "error" in params:
            raise Unauthenticated(f"oidc: {params['error']}")
        meta = self.metadata()
        try:
            with self._client() as client:
                token = client.fetch_token(meta["token_endpoint"], code=params.get("code", ""))
                keys = JsonWebKey.import_key_set(httpx.get(meta["jwks_uri"], timeout=self.timeout_s).json())
                claims = jwt.decode(token["id_token"], keys, claims_options={
                    "iss": {"essential": True, "value": meta.get("issuer", self.issuer)},
                    "aud": {"essential": True, "value": self.client_id},
                    "nonce": {"essential": True, "value": nonce},
                })
                claims.validate()
                merged: dict[str, Any] = dict(claims)
                if meta.get("userinfo_endpoint"):
                    merged.update(client.get(meta["userinfo_endpoint"]).json())
        except (JoseError, httpx.HTTPError, KeyError, ValueError) as exc:
            raise Unauthenticated(f"oidc: verification failed ({exc.__class__.__name__}: {exc})") from exc
        return _identity(self.name, merged)


def provider_from_settings(settings: Settings) -> IdentityProvider:
    """The configured provider (``DOLBOM_IDENTITY_PROVIDER``: ``local`` or ``oidc``)."""
    if settings.identity.provider == "oidc":
        return OIDCProvider(settings)
    return LocalTestProvider()


def ci_hash(settings: Settings, ci: str) -> str:
    """HMAC-SHA256 of the CI under ``DOLBOM_CI_HASH_KEY`` (hex)."""
    return hmac.new(settings.identity.ci_hash_key.encode(), ci.encode(), hashlib.sha256).hexdigest()


# An account's identity, locked: concurrent verifications and resets of one account are ordered by the row lock.
_IDENTITY_FOR_UPDATE = ("SELECT verified_name, verified_birth_date, verified_phone, identity_provider, verified_at, "
                        "ci_hash FROM users WHERE id = :id FOR UPDATE")


def _jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, date | datetime) else v) for k, v in row.items()}


def store_identity(conn: Connection, settings: Settings, *, user_id: int, identity: VerifiedIdentity) -> None:
    """Keep a verified identity on the user (audited).

    An account is one person: verifying it again as the same person (same CI) changes nothing and writes no
    audit row; as another person it is refused until a city admin resets it (``reset_identity``).

    Raises
    ------
    Conflict
        ``reason="identity_mismatch"``: the account is verified as another person; ``reason="identity_taken"``:
        the CI is on another account.
    """
    new_hash = ci_hash(settings, identity.ci)
    # Under the row lock a second concurrent verification of the account sees the first one's CI.
    before = conn.execute(text(_IDENTITY_FOR_UPDATE), {"id": user_id}).mappings().one_or_none()
    if before is None:
        raise NotFound(f"no user {user_id}", param="user_id")
    if before["ci_hash"] is not None:
        if hmac.compare_digest(before["ci_hash"], new_hash):
            return
        raise Conflict("this account is already verified (본인인증) as another person; a city admin must reset "
                       "its verification first", reason="identity_mismatch")
    try:
        with conn.begin_nested():
            conn.execute(text("""
                UPDATE users SET verified_name = :name, verified_birth_date = :birth, verified_phone = :phone,
                    ci_hash = :ci, identity_provider = :provider, verified_at = now()
                WHERE id = :id
            """), {"name": identity.name, "birth": identity.birth_date, "phone": identity.phone,
                   "ci": new_hash, "provider": identity.provider, "id": user_id})
    except IntegrityError as exc:
        raise Conflict("this person is already verified on another account", reason="identity_taken") from exc
    audit(conn, actor_user_id=user_id, action="identity.verify", entity="users", entity_id=user_id,
          before=_jsonable({k: v for k, v in before.items() if k != "ci_hash"}),
          after={"verified_name": identity.name, "verified_birth_date": identity.birth_date.isoformat(),
                 "verified_phone": identity.phone, "identity_provider": identity.provider})


def reset_identity(conn: Connection, *, user_id: int, actor_user_id: int, reason: str) -> None:
    """Clear an account's verification so that its holder verifies anew (possibly as another person).

    Only a city admin does this (``Action.reset_identity``, checked by the caller); the audit row keeps the
    previous name, birth date, phone and provider (never the CI hash) and the reason.

    Raises
    ------
    NotFound
        No such user.
    Conflict
        ``reason="not_verified"``: the account holds no verification.
    InvalidQuery
        An empty reason (or one holding a 주민등록번호).
    """
    reason = personal_text(reason, param="reason", max_length=500) or ""
    if not reason:
        raise InvalidQuery("give the reason for resetting the verification", param="reason")
    before = conn.execute(text(_IDENTITY_FOR_UPDATE), {"id": user_id}).mappings().one_or_none()
    if before is None:
        raise NotFound(f"no user {user_id}", param="user_id")
    if before["ci_hash"] is None and before["verified_at"] is None:
        raise Conflict(f"user {user_id} is not verified; nothing to reset", reason="not_verified")
    conn.execute(text("UPDATE users SET verified_name = NULL, verified_birth_date = NULL, verified_phone = NULL, "
                      "ci_hash = NULL, identity_provider = NULL, verified_at = NULL WHERE id = :id"),
                 {"id": user_id})
    audit(conn, actor_user_id=actor_user_id, action="identity.reset", entity="users", entity_id=user_id,
          before=_jsonable({k: v for k, v in before.items() if k != "ci_hash"}), after={"reason": reason})


def require_verified(conn: Connection, user_id: int, *, action: str) -> None:
    """Refuse an unverified account (``Forbidden`` with ``reason="identity_not_verified"``).

    Booking care and emergency requests need 본인인증 first, as the waitlist does.
    """
    verified_at = conn.execute(text("SELECT verified_at FROM users WHERE id = :id"), {"id": user_id}).scalar()
    if verified_at is None:
        raise Forbidden("verify your identity (본인인증) first", action=action, reason="identity_not_verified")
