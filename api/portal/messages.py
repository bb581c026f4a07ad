"""A domain error as a sentence in the user's language: the pages show it inline next to the form (the API's
problem bodies stay English). Known errors are looked up by their ``reason``, then by their ``param``; any other
keeps its English detail after a translated title, so nothing is hidden."""

from __future__ import annotations

from typing import Protocol

from geo.errors import (
    Conflict,
    DolbomError,
    Forbidden,
    IllegalTransition,
    InvalidQuery,
    NotFound,
    RateLimited,
    TooManyAttempts,
    Unauthenticated,
)


class Gettext(Protocol):
    """``api.portal.i18n.Translator``."""

    def __call__(self, message: str, **params: object) -> str: ...


def _(message: str) -> str:
    """Mark a message for extraction (translated when shown)."""
    return message


BY_REASON: dict[str, str] = {
    "csrf": _("This form has expired. Reload the page and try again."),
    "email_not_confirmed": _("Confirm your e-mail address first, with the code in the mail we sent you."),
    "identity_not_verified": _("Verify your identity (본인인증) before registering a child or applying."),
    "identity_taken": _("This person is already verified on another account."),
    "identity_mismatch": _("This account is already verified as another person."),
    "wrong_password": _("The password is wrong."),
    "identity_incomplete": _("The verification did not complete. Start again."),
}
BY_PARAM: dict[tuple[type[DolbomError], str], str] = {
    (InvalidQuery, "password"): _("Choose a longer, harder to guess password (at least 10 characters)."),
    (InvalidQuery, "email"): _("Enter a valid e-mail address."),
    (InvalidQuery, "token"): _("This code is invalid, expired or already used."),
    (InvalidQuery, "name"): _("Enter a name."),
    (InvalidQuery, "birth_date"): _("Enter a valid birth date (not in the future)."),
    (InvalidQuery, "phone"): _("Enter a valid phone number."),
    (InvalidQuery, "claims"): _("Choose only the priority categories listed."),
    (InvalidQuery, "claim_details"): _("A sibling's centre must be a known centre code."),
    (InvalidQuery, "child_id"): _("This child has no class at a daycare centre this year (ages 0-5)."),
    (Conflict, "code"): _("This child already applied to this centre, or the centre is not operating."),
    (NotFound, "code"): _("No such centre."),
}
BY_TYPE: list[tuple[type[DolbomError], str]] = [
    (TooManyAttempts, _("Too many failed attempts. Try again later.")),
    (RateLimited, _("Too many requests. Try again later.")),
    (Unauthenticated, _("Wrong e-mail or password.")),
    (Forbidden, _("You may not do this.")),
    (IllegalTransition, _("This is not possible in the entry's current state.")),
    (Conflict, _("This conflicts with the current state.")),
    (NotFound, _("Not found.")),
    (InvalidQuery, _("Check this field.")),
]


def error_message(t: Gettext, exc: DolbomError) -> str:
    """What the page says about ``exc``."""
    reason = exc.extra.get("reason")
    if isinstance(reason, str) and reason in BY_REASON:
        return t(BY_REASON[reason])
    if isinstance(exc, Conflict) and exc.extra.get("limit") is not None:
        return t("At most {limit} applications per child.", limit=exc.extra["limit"])
    if exc.extra.get("state") == "expired":
        return t("This offer has expired.")
    param = exc.extra.get("param")
    for cls in type(exc).__mro__:
        if isinstance(param, str) and (cls, param) in BY_PARAM:
            return t(BY_PARAM[(cls, param)])  # type: ignore[index]
    for cls, message in BY_TYPE:
        if isinstance(exc, cls):
            return f"{t(message)} ({exc.detail})"
    return exc.detail
