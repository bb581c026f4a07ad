"""The officer's page of sanctions (``/portal/officer/sanctions``): record a sanction against a centre of their 구
(optionally following an inspection finding), publish its disclosure once final (위반사실 공표, 영유아보육법
§49-3; the period follows ``geo.disclosure.rules``) and withdraw one. District officers act on their 구's centres,
city admins on every centre (``Action.manage_sanctions``). Every write goes through ``geo.disclosure.records``
(audit trail; the disclosures map layer and its tile versions follow)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import Connection

from api.deps import PageLang, PageUser, SessionDep, SettingsDep, WriteRoute, WriteTx
from api.portal.disclosure import KIND_LABELS
from api.portal.i18n import Translator
from api.portal.render import PORTAL, login_redirect, page, see_other
from api.routers.portal_account import Text, attempt, form_date
from api.security import authorize
from geo.auth.accounts import Principal
from geo.auth.policy import Action, Role
from geo.disclosure import records
from geo.disclosure.rules import SanctionKind, seoul_day
from geo.errors import InvalidQuery
from geo.settings import Settings
from geo.validation import MAX_OFFSET

router = APIRouter(prefix=f"{PORTAL}/officer/sanctions", include_in_schema=False, route_class=WriteRoute)
SanctionId = Annotated[int, Path(ge=1, le=MAX_OFFSET)]
LongText = Annotated[str, Form(max_length=records.MAX_TEXT)]
FIELDS = ("code", "kind", "legal_basis", "violation", "disposition", "decided_at", "final_at", "authority",
          "representative_name", "director_name", "amount_won", "finding_ref")


def _district(user: Principal) -> str | None:
    """The 구 whose sanctions the officer sees (None: a city admin sees every 구)."""
    return None if user.role is Role.city_admin else user.subject.district_code


def _page(request: Request, t: Translator, user: Principal, conn: Connection, settings: Settings, *,
          errors: dict[str, str], values: dict[str, Any], message: str = "", status: int = 200) -> HTMLResponse:
    authorize(user, Action.manage_sanctions, district_code=_district(user))
    return page(request, "officer_sanctions.html", t, user=user, nav="sanctions", status=status, errors=errors,
                values=values, message=message, kinds=[k.value for k in SanctionKind], kind_labels=KIND_LABELS,
                sanctions=records.register(conn, now=settings.now(), district_code=_district(user)),
                today=seoul_day(settings.now()))


@router.get("", response_model=None)
def sanctions(request: Request, t: PageLang, user: PageUser, session: SessionDep, settings: SettingsDep,
              saved: str = "", published: str = "", withdrawn: str = "") -> HTMLResponse | RedirectResponse:
    """The 구's sanctions with their disclosures, and the form to record one."""
    if user is None:
        return login_redirect(request)
    message = (t("The sanction is recorded and its violation is published.") if published
               else t("The sanction is recorded.") if saved
               else t("The disclosure is withdrawn.") if withdrawn else "")
    return _page(request, t, user, session.connection(), settings, errors={}, values={"kind": "suspension"},
                 message=message)


def _optional_date(value: str, param: str) -> date | None:
    return form_date(value, param=param) if value.strip() else None


@router.post("", response_model=None)
def record(request: Request, t: PageLang, user: PageUser, tx: WriteTx, settings: SettingsDep, code: Text = "",
           kind: Text = "", legal_basis: Text = "", violation: LongText = "", disposition: Text = "",
           decided_at: Text = "", final_at: Text = "", authority: Text = "", representative_name: Text = "",
           director_name: Text = "", amount_won: Text = "", finding_ref: Text = "",
           publish: Text = "") -> HTMLResponse | RedirectResponse:
    """Record a sanction (and publish its disclosure when asked and the sanction is final)."""
    if user is None:
        return login_redirect(request)
    conn = tx.connection()
    values = {"code": code, "kind": kind, "legal_basis": legal_basis, "violation": violation,
              "disposition": disposition, "decided_at": decided_at, "final_at": final_at, "authority": authority,
              "representative_name": representative_name, "director_name": director_name,
              "amount_won": amount_won, "finding_ref": finding_ref, "publish": bool(publish)}

    def do_record() -> dict[str, Any]:
        facility_id, district = records.facility_district(conn, code.strip())
        authorize(user, Action.manage_sanctions, facility_id=facility_id, district_code=district)
        decided = form_date(decided_at, param="decided_at")
        amount = None
        if amount_won.strip():
            digits = amount_won.replace(",", "").strip()
            if not digits.isdigit():
                raise InvalidQuery("amount_won: a whole number of won", param="amount_won")
            amount = int(digits)
        made = records.record_sanction(
            conn, facility_code=code.strip(), kind=kind, legal_basis=legal_basis, violation=violation,
            disposition=disposition, decided_at=decided, final_at=_optional_date(final_at, "final_at"),
            authority=authority, representative_name=representative_name, director_name=director_name,
            amount_won=amount, finding_ref=finding_ref, actor_user_id=user.user_id)
        if publish:
            records.publish(conn, made["id"], now=settings.now(), actor_user_id=user.user_id)
        return made

    made, errors = attempt(tx, t, do_record)
    if errors or made is None:
        return _page(request, t, user, conn, settings, errors=errors, values=values, status=422)
    return see_other(f"{PORTAL}/officer/sanctions?{'published' if publish else 'saved'}={made['id']}")


def _authorize_sanction(user: Principal, conn: Connection, sanction_id: int) -> dict[str, Any]:
    sanction = records.get_sanction(conn, sanction_id)
    facility_id, district = records.facility_district(conn, sanction["centre"])
    authorize(user, Action.manage_sanctions, facility_id=facility_id, district_code=district)
    return sanction


@router.post("/{sanction_id}/publish", response_model=None)
def publish_disclosure(request: Request, sanction_id: SanctionId, t: PageLang, user: PageUser, tx: WriteTx,
                       settings: SettingsDep, final_at: Text = "") -> HTMLResponse | RedirectResponse:
    """Publish the disclosure of a sanction (recording the day it became final, when given here)."""
    if user is None:
        return login_redirect(request)
    conn = tx.connection()

    def do_publish() -> dict[str, Any]:
        sanction = _authorize_sanction(user, conn, sanction_id)
        if final_at.strip() and sanction["final_at"] is None:
            records.set_final(conn, sanction_id, final_at=form_date(final_at, param="final_at"),
                              actor_user_id=user.user_id)
        return records.publish(conn, sanction_id, now=settings.now(), actor_user_id=user.user_id)

    _, errors = attempt(tx, t, do_publish)
    if errors:
        return _page(request, t, user, conn, settings, errors=errors, values={"kind": "suspension"}, status=422)
    return see_other(f"{PORTAL}/officer/sanctions?published={sanction_id}")


@router.post("/{sanction_id}/withdraw", response_model=None)
def withdraw_disclosure(request: Request, sanction_id: SanctionId, t: PageLang, user: PageUser, tx: WriteTx,
                        settings: SettingsDep, reason: Text = "") -> HTMLResponse | RedirectResponse:
    """Withdraw the sanction's disclosure, with a reason (it leaves the centre's page and the map at once)."""
    if user is None:
        return login_redirect(request)
    conn = tx.connection()

    def do_withdraw() -> dict[str, Any]:
        _authorize_sanction(user, conn, sanction_id)
        disclosure_id = records.disclosure_of(conn, sanction_id)
        if disclosure_id is None:
            raise InvalidQuery("this sanction has no disclosure", param="reason")
        return records.withdraw(conn, disclosure_id, reason=reason, now=settings.now(),
                                actor_user_id=user.user_id)

    _, errors = attempt(tx, t, do_withdraw)
    if errors:
        return _page(request, t, user, conn, settings, errors=errors, values={"kind": "suspension"}, status=422)
    return see_other(f"{PORTAL}/officer/sanctions?withdrawn={sanction_id}")
