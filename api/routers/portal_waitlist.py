"""The portal's waitlist pages for parents: children (register with the claims the year's rules allow), a centre's
page with its application form, and "my applications" (rank, points and band, the reasons of every rank change,
an open offer with its deadline and a countdown; accept, decline, keep, withdraw, each after a confirmation).
Every page calls the same ``geo.admission`` functions as the API's ``/waitlist`` routes."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Connection

from api.deps import PageLang, PageUser, SessionDep, WriteRoute, WriteTx
from api.portal.disclosure import public_facts
from api.portal.i18n import Translator
from api.portal.ranks import bound
from api.portal.render import PORTAL, environment, local_path, login_redirect, page, see_other
from api.portal.vocab import CATEGORY_LABELS, NOTICE_LABELS, STATUS_LABELS
from api.routers.portal_account import Text, attempt, form_date
from api.security import CSRF_COOKIE, authorize
from geo.admission import child_records, offer_flow, parent_view
from geo.admission import waitlist as wl
from geo.admission.common import SEOUL
from geo.admission.rules import childcare_year, rules_for
from geo.auth.accounts import Principal, get_user
from geo.auth.policy import Action
from geo.errors import InvalidQuery
from geo.validation import MAX_OFFSET

router = APIRouter(prefix=PORTAL, include_in_schema=False, route_class=WriteRoute)
Code = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z_-]+$")]
EntryId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[0-9a-f]+$")]
OfferId = Annotated[int, Path(ge=1, le=MAX_OFFSET)]


def _rules() -> Any:
    return rules_for(childcare_year(datetime.now(UTC).astimezone(SEOUL).date()))


def _verified(conn: Connection, user: Principal) -> bool:
    return get_user(conn, user.user_id)["verified_at"] is not None


def _children_page(request: Request, t: Translator, user: Principal, conn: Connection, *, errors: dict[str, str],
                   values: dict[str, Any], message: str = "", next_page: str = "", status: int = 200) -> HTMLResponse:
    rules = _rules()
    return page(request, "children.html", t, user=user, nav="children", status=status, errors=errors, values=values,
                message=message, next=next_page, verified=_verified(conn, user),
                children=child_records.list_children(conn, parent_user_id=user.user_id),
                categories=rules.categories, category_labels=CATEGORY_LABELS,
                max_if_enrolled=rules.max_applications_if_enrolled)


@router.get("/children", response_model=None)
def children(request: Request, t: PageLang, user: PageUser, session: SessionDep, next: str = "",
             verified: str = "", added: str = "") -> HTMLResponse | RedirectResponse:
    """The parent's children and the form to register one."""
    if user is None:
        return login_redirect(request)
    message = (t("Your identity is verified. You can register a child now.") if verified
               else t("The child is registered.") if added else "")
    return _children_page(request, t, user, session.connection(), errors={}, values={}, message=message,
                          next_page=local_path(next, ""))


@router.post("/children", response_model=None)
def register_child(request: Request, t: PageLang, user: PageUser, tx: WriteTx, name: Text = "",
                   birth_date: Text = "", claims: Annotated[list[str] | None, Form(max_length=40)] = None,
                   claim_details: Text = "", enrolled: Text = "",
                   next: Text = "") -> HTMLResponse | RedirectResponse:
    """Register a child (the API's ``POST /waitlist/children``); then back to the centre that asked, if any."""
    if user is None:
        return login_redirect(request)
    claimed = list(dict.fromkeys(claims or []))
    values = {"name": name, "birth_date": birth_date, "claims": claimed, "claim_details": claim_details,
              "enrolled": bool(enrolled)}
    conn = tx.connection()

    def register() -> dict[str, Any]:
        authorize(user, Action.apply_waitlist)
        born = form_date(birth_date, param="birth_date")
        details = {"sibling_enrolled": claim_details.strip()} if claim_details.strip() else {}
        if details and "sibling_enrolled" not in claimed:
            raise InvalidQuery("a sibling's centre without the sibling category", param="claim_details")
        return wl.register_child(conn, parent_user_id=user.user_id, name=name, birth_date=born, claims=claimed,
                                 claim_details=details, enrolled=bool(enrolled))

    _, errors = attempt(tx, t, register)
    if errors:
        return _children_page(request, t, user, conn, errors=errors, values=values, next_page=local_path(next, ""),
                              status=422)
    return see_other(local_path(next, f"{PORTAL}/children?added=1"))


def _centre_page(request: Request, t: Translator, user: Principal | None, conn: Connection, code: str, *,
                 errors: dict[str, str], status: int = 200) -> HTMLResponse:
    rules = _rules()
    kids = child_records.list_children(conn, parent_user_id=user.user_id) if user else []
    return page(request, "centre.html", t, user=user, status=status, errors=errors,
                centre=parent_view.centre_summary(conn, code), children=kids,
                verified=bool(user) and _verified(conn, user),  # type: ignore[arg-type]
                max_applications=rules.max_applications, max_if_enrolled=rules.max_applications_if_enrolled,
                **public_facts(request, conn, code))


@router.get("/centres/{code}")
def centre(request: Request, code: Code, t: PageLang, user: PageUser, session: SessionDep) -> HTMLResponse:
    """A centre's page: what it is, and the application form for a logged-in, verified parent."""
    return _centre_page(request, t, user, session.connection(), code, errors={})


@router.post("/centres/{code}/apply", response_model=None)
def apply(request: Request, code: Code, t: PageLang, user: PageUser, tx: WriteTx,
          child_id: Text = "") -> HTMLResponse | RedirectResponse:
    """Apply for a child (the API's ``POST /waitlist/entries``), then see the ranks."""
    if user is None:
        return login_redirect(request)
    conn = tx.connection()

    def do_apply() -> dict[str, Any]:
        authorize(user, Action.apply_waitlist)
        if not child_id.isdigit():
            raise InvalidQuery("choose a child", param="child_id")
        return wl.apply(conn, parent_user_id=user.user_id, child_id=int(child_id), facility_code=code)

    _, errors = attempt(tx, t, do_apply)
    if errors:
        return _centre_page(request, t, user, conn, code, errors=errors, status=422)
    return see_other(f"{PORTAL}/applications?applied={code}")


def _list_state(t: Translator, user: Principal, conn: Connection, *, remember: bool) -> dict[str, Any]:
    """What the list of "my applications" shows that can change: ranks (``my_ranks`` remembers this look, as the
    API's ``GET /waitlist/me``, unless ``remember`` is false), offers and lapse dates; and ``version``, a digest of
    them, which the refreshing list sends back so that an unchanged list is not swapped (nor announced) again."""
    entries = wl.my_ranks(conn, parent_user_id=user.user_id, remember=remember)
    offers = parent_view.open_offers(conn, parent_user_id=user.user_id)
    for offer in offers.values():
        offer["deadline_text"] = offer["deadline"].astimezone(SEOUL).strftime("%Y-%m-%d %H:%M") + " KST"
    lapses = parent_view.lapse_dates(conn, parent_user_id=user.user_id)
    shown = [(e["entry"], e["rank"], e["of"], e["status"], e["points"], e["band"]) for e in entries]
    version = hashlib.sha256(repr((shown, sorted((k, o["id"]) for k, o in offers.items()), sorted(lapses),
                                   t.lang)).encode()).hexdigest()[:16]
    return {"entries": entries, "offers": offers, "lapses": lapses, "version": version}


def _list_context(t: Translator, conn: Connection, state: dict[str, Any]) -> dict[str, Any]:
    """The list's template context (``entries_block.html``): its state with the centres' names and the labels."""
    next_year = childcare_year(datetime.now(UTC).astimezone(SEOUL).date()) + 1
    return {**state, "status_labels": STATUS_LABELS, **bound(t), "next_year": next_year,
            "names": parent_view.centre_names(conn, [e["centre"] for e in state["entries"]])}


def _applications_context(t: Translator, user: Principal, conn: Connection, *,
                          remember: bool = True) -> dict[str, Any]:
    """The whole page's context: the list (``_list_state``, ``_list_context``), the children admitted and the
    waitlist's notices."""
    return {**_list_context(t, conn, _list_state(t, user, conn, remember=remember)),
            "admitted": parent_view.admitted(conn, parent_user_id=user.user_id),
            "notices": wl.notices(conn, parent_user_id=user.user_id)[:10], "notice_labels": NOTICE_LABELS,
            "seoul": SEOUL}


def _with_forecasts(conn: Connection, context: dict[str, Any]) -> dict[str, Any]:
    """The context with each waiting entry's wait forecast (``offer_flow.with_forecasts``, as the API's
    ``GET /waitlist/me/forecasts``); computed only for a list that is shown, not for an unchanged poll."""
    return {**context, "entries": offer_flow.with_forecasts(conn, context["entries"])}


@router.get("/applications", response_model=None)
def applications(request: Request, t: PageLang, user: PageUser, tx: WriteTx, applied: str = "",
                 done: str = "") -> HTMLResponse | RedirectResponse:
    """Every active application with its rank (a write: the look is remembered to explain the next changes)."""
    if user is None:
        return login_redirect(request)
    conn = tx.connection()
    messages = {"accept": t("You accepted the place."), "decline": t("You declined the offer."),
                "withdraw": t("The application is withdrawn."), "keep": t("The application is kept."),
                "renew": t("The application is renewed for next year.")}
    message = t("Application sent.") if applied else messages.get(done, "")
    return page(request, "applications.html", t, user=user, nav="applications", message=message, errors={},
                verified=_verified(conn, user), **_with_forecasts(conn, _applications_context(t, user, conn)))


@router.get("/applications/entries", response_model=None)
def applications_entries(request: Request, t: PageLang, user: PageUser, tx: WriteTx,
                         v: Annotated[str, Query(max_length=16)] = "") -> Response:
    """The list part of "my applications", which the open page fetches every few seconds (htmx): 204 while the
    list is the one the page shows (version ``v``), else the new list and a sentence for the page's polite live
    region. The look is not remembered, so the reasons of a change stay until the parent opens the page again.
    An unchanged list costs only what its version needs (ranks, offers, lapse dates): names, forecasts and the
    template are for a list that is sent."""
    if user is None:
        return Response(status_code=204)
    conn = tx.connection()
    state = _list_state(t, user, conn, remember=False)
    if v and v == state["version"]:
        return Response(status_code=204, headers={"Cache-Control": "no-store"})
    html = environment.get_template("entries_block.html").render(
        _=t, lang=t.lang, csrf_token=request.cookies.get(CSRF_COOKIE, ""), news=bool(v),
        **_with_forecasts(conn, _list_context(t, conn, state)))
    return HTMLResponse(html, headers={"Content-Language": t.lang, "Cache-Control": "no-store"})


def _answer(request: Request, t: Translator, user: Principal | None, tx: Any, action: str,
            fn: Any) -> HTMLResponse | RedirectResponse:
    """Run one of the parent's answers; back to the list with what happened, or the list with the error."""
    if user is None:
        return login_redirect(request)

    def run() -> Any:
        authorize(user, Action.apply_waitlist)
        return fn(tx.connection())

    _, errors = attempt(tx, t, run)
    if errors:
        conn = tx.connection()
        return page(request, "applications.html", t, user=user, nav="applications", message="", status=409,
                    errors={"_": next(iter(errors.values()))}, verified=_verified(conn, user),
                    **_applications_context(t, user, conn))
    return see_other(f"{PORTAL}/applications?done={action}")


@router.post("/offers/{offer_id}/accept", response_model=None)
def accept(request: Request, offer_id: OfferId, t: PageLang, user: PageUser,
           tx: WriteTx) -> HTMLResponse | RedirectResponse:
    """Accept an open offer before its deadline."""
    return _answer(request, t, user, tx, "accept",
                   lambda conn: wl.accept(conn, parent_user_id=user.user_id, offer_id=offer_id))  # type: ignore[union-attr]


@router.post("/offers/{offer_id}/decline", response_model=None)
def decline(request: Request, offer_id: OfferId, t: PageLang, user: PageUser,
            tx: WriteTx) -> HTMLResponse | RedirectResponse:
    """Decline an open offer (the place moves on)."""
    return _answer(request, t, user, tx, "decline",
                   lambda conn: wl.decline(conn, parent_user_id=user.user_id, offer_id=offer_id))  # type: ignore[union-attr]


@router.post("/entries/{entry}/withdraw", response_model=None)
def withdraw(request: Request, entry: EntryId, t: PageLang, user: PageUser,
             tx: WriteTx) -> HTMLResponse | RedirectResponse:
    """Withdraw an application."""
    return _answer(request, t, user, tx, "withdraw",
                   lambda conn: wl.withdraw(conn, parent_user_id=user.user_id, entry_public_id=entry))  # type: ignore[union-attr]


@router.post("/entries/{entry}/renew", response_model=None)
def renew(request: Request, entry: EntryId, t: PageLang, user: PageUser,
          tx: WriteTx) -> HTMLResponse | RedirectResponse:
    """Renew a waiting application for the next 보육연도 (its class age moves up; the application time stays)."""
    return _answer(request, t, user, tx, "renew",
                   lambda conn: wl.renew(conn, parent_user_id=user.user_id, entry_public_id=entry))  # type: ignore[union-attr]


@router.post("/entries/{entry}/keep", response_model=None)
def keep(request: Request, entry: EntryId, t: PageLang, user: PageUser,
         tx: WriteTx) -> HTMLResponse | RedirectResponse:
    """Keep an application after the child's admission elsewhere."""
    return _answer(request, t, user, tx, "keep",
                   lambda conn: wl.keep_entries(conn, parent_user_id=user.user_id, entry_public_id=entry))  # type: ignore[union-attr]

