"""The portal's waitlist pages for a centre's staff: the queue of each class age (rank, the child as staff may see
it, points and band, the claims with their evidence state, those waiting for a check first to the eye), checking a
claim (verified or rejected, with the ranks it moved), offering a free place (who gets it, who is skipped and why)
and the centre's offers with their deadlines and outcomes.

The same ``geo.admission`` functions and the same authorisation (``Action.manage_waitlist``) as the API's
``/waitlist/centres/{code}/applicants``, ``/claims`` and ``/offers``. A post answers with a redirect to the queue
(what happened is in its query, looked up again on the page), or the queue with the error inline."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from api.deps import PageLang, PageUser, SessionDep, WriteRoute, WriteTx
from api.portal.i18n import Translator
from api.portal.messages import error_message
from api.portal.ranks import band_text
from api.portal.render import PORTAL, login_redirect, page, see_other
from api.portal.vocab import CATEGORY_LABELS, STATUS_LABELS
from api.routers.portal_account import Text
from api.security import authorize
from geo.admission import waitlist as wl
from geo.admission.common import SEOUL
from geo.admission.parent_view import centre_summary
from geo.admission.rules import Priority, childcare_year
from geo.auth.accounts import Principal
from geo.auth.policy import Action
from geo.errors import Conflict, DolbomError, IllegalTransition, InvalidQuery, NotFound

router = APIRouter(prefix=f"{PORTAL}/staff", include_in_schema=False, route_class=WriteRoute)
CentreCode = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z_-]+$")]
AGES = range(6)
CHILD = re.compile(r"^[0-9a-f]{1,32}$")
CATEGORY = re.compile(r"^[a-z0-9_]{1,60}$")
# What staff may set on the page (a linked public record, ``verified_record``, is not theirs to claim).
STAFF_EVIDENCE = ("verified_centre", "rejected", "claimed")
# The query a post leaves for the page: "entry.from.to" moves, "entry.reason" skips (both comma-separated).
MOVE = re.compile(r"^([0-9a-f]{1,32})\.(\d{1,6})\.(\d{1,6})$")
SKIP = re.compile(r"^([0-9a-f]{1,32})\.(unverified|other)$")
Listing = Annotated[str, Query(max_length=4000)]
T = TypeVar("T")


def _(message: str) -> str:
    """Mark a message for extraction (translated when shown)."""
    return message


EVIDENCE_LABELS: dict[str, str] = {
    "claimed": _("waiting for an evidence check"),
    "verified_centre": _("verified by the centre"),
    "verified_record": _("verified by a public record"),
    "rejected": _("rejected"),
}
OFFER_LABELS: dict[str, str] = {
    "open": _("open"), "accepted": _("accepted"), "declined": _("declined"), "expired": _("expired"),
}


def _year() -> int:
    return childcare_year(datetime.now(UTC).astimezone(SEOUL).date())


def _facility(user: Principal, conn: Connection, code: str) -> Any:
    """The centre, if ``user`` manages its waitlist (as the API's ``/claims`` and ``/offers``)."""
    facility = wl.facility_by_code(conn, code)
    authorize(user, Action.manage_waitlist, facility_id=facility.id, district_code=facility.district_code)
    return facility


def _order(conn: Connection, facility_id: int, age: int) -> dict[str, int]:
    """Entry public id -> rank in the age class's queue now."""
    return {q.ranked.public_id: i for i, q in
            enumerate(wl.queue(conn, facility_id, year=_year(), age_class=age), start=1)}


def queue_error(t: Translator, exc: DolbomError) -> str:
    """A refused check or offer in the reader's language."""
    param = exc.extra.get("param")
    if isinstance(exc, Conflict) and param == "age_class":
        return t("No free place in this class: report a free place on the vacancy page first (open offers hold "
                 "theirs).")
    if isinstance(exc, NotFound) and param == "child":
        return t("This child is no longer on this centre's waitlist.")
    if isinstance(exc, NotFound) and param == "category":
        return t("This child has no such claim.")
    if isinstance(exc, IllegalTransition) and exc.extra.get("target"):
        return t("The claim is {state}: it cannot become {target}.",
                 state=t(EVIDENCE_LABELS.get(str(exc.extra.get("state")), str(exc.extra.get("state")))),
                 target=t(EVIDENCE_LABELS.get(str(exc.extra["target"]), str(exc.extra["target"]))))
    if isinstance(exc, InvalidQuery) and param in ("child", "category", "evidence", "age_class"):
        return t("This form was changed: reload the page and try again.")
    return error_message(t, exc)


def _attempt(tx: Session, t: Translator, fn: Callable[[], T]) -> tuple[T | None, str]:
    """``fn()`` in a savepoint: its result, or (None, the refusal in the reader's language) with its writes
    undone."""
    try:
        with tx.begin_nested():
            return fn(), ""
    except DolbomError as exc:
        return None, queue_error(t, exc)


def _default_age(sizes: dict[int, int], classes: dict[str, Any]) -> int:
    """The first class age with someone waiting, else the first the centre has classes for, else 0."""
    if sizes:
        return min(sizes)
    with_classes = [a for a in AGES if int(classes.get(str(a)) or 0) > 0]
    return with_classes[0] if with_classes else 0


def _queue_page(request: Request, t: Translator, user: Principal, conn: Connection, facility: Any, code: str,
                age: int | None, *, errors: dict[str, str], notices: list[str] | None = None,
                status: int = 200) -> HTMLResponse:
    year = _year()
    summary = centre_summary(conn, code)
    classes = summary.get("classes_by_age") or {}
    sizes = wl.queue_sizes(conn, facility.id, year=year)
    if age is None:
        age = _default_age(sizes, classes)
    ages = [a for a in AGES if a in sizes or int(classes.get(str(a)) or 0) > 0 or a == age]
    rows = wl.staff_queue(conn, facility.id, year=year, age_class=age)
    for row in rows:
        row["band"] = band_text(t, Priority(row["tier"], row["points"], ()).band)
        row["pending"] = [c for c in row["claims"] if c["evidence"] == "claimed"]
        row["applied_on"] = row["applied_at"].astimezone(SEOUL).date().isoformat()
    offers = wl.centre_offers(conn, facility.id)
    for offer in offers:
        offer["deadline_text"] = _kst(offer["deadline"])
        offer["answered_text"] = _kst(offer["answered_at"]) if offer["answered_at"] else ""
    return page(request, "staff_queue.html", t, user=user, nav="staff", status=status, errors=errors,
                notices=notices or [], centre=summary, code=code, year=year, age=age, ages=ages, sizes=sizes,
                rows=rows, free=wl.free_places(conn, facility.id, age), offers=offers,
                pending=sum(len(r["pending"]) for r in rows), category_labels=CATEGORY_LABELS,
                evidence_labels=EVIDENCE_LABELS, offer_labels=OFFER_LABELS, status_labels=STATUS_LABELS)


def _kst(moment: datetime) -> str:
    return moment.astimezone(SEOUL).strftime("%Y-%m-%d %H:%M") + " KST"


def _notices(t: Translator, conn: Connection, facility: Any, age: int, *, checked: str, moves: str, offer: str,
             skipped: str) -> list[str]:
    """What the last post did, said again from the query it left (names looked up now; unknown parts ignored)."""
    out: list[str] = []
    rows = wl.staff_queue(conn, facility.id, year=_year(), age_class=age)
    names = {r["entry"]: r["name"] for r in rows}
    children = {r["child"]: r["name"] for r in rows}
    offers = {str(o["id"]): o for o in wl.centre_offers(conn, facility.id)}
    for o in offers.values():
        names.setdefault(o["entry"], o["name"])
    child, category, state = (checked.split(".") + ["", "", ""])[:3]
    if child in children and CATEGORY.match(category) and state in EVIDENCE_LABELS:
        out.append(t("The claim “{category}” of {name} is now {state}.", name=children[child],
                     category=t(CATEGORY_LABELS.get(category, category)), state=t(EVIDENCE_LABELS[state])))
        moved = [m.groups() for m in (MOVE.match(p) for p in moves.split(",")) if m and m[1] in names]
        out += [t("{name}: rank {before} → {after}", name=names[e], before=b, after=a) for e, b, a in moved]
        if not moved:
            out.append(t("No rank in this class changed."))
    if offer == "none":
        out.append(t("No waiting entry could be offered the place."))
    elif offer in offers:
        made = offers[offer]
        out.append(t("The place is offered to {name} until {deadline}.", name=made["name"],
                     deadline=_kst(made["deadline"])))
    if offer:
        for m in (SKIP.match(p) for p in skipped.split(",")):
            if m is None:
                continue
            name = names.get(m[1], m[1][:8])
            out.append(t("{name} skipped: a priority claim that counts is not checked yet.", name=name)
                       if m[2] == "unverified" else
                       t("{name} skipped: the child holds an offer elsewhere or is admitted elsewhere.", name=name))
    return out


@router.get("/centres/{code}/queue", response_model=None)
def queue_page(request: Request, code: CentreCode, t: PageLang, user: PageUser, session: SessionDep,
               age: Annotated[int | None, Query(ge=0, le=5)] = None, checked: Listing = "", moves: Listing = "",
               offer: Listing = "", skipped: Listing = "") -> HTMLResponse | RedirectResponse:
    """A class age's queue with the claims to check, the offer form and the centre's offers."""
    if user is None:
        return login_redirect(request)
    conn = session.connection()
    facility = _facility(user, conn, code)
    notices = _notices(t, conn, facility, age if age is not None else 0, checked=checked, moves=moves, offer=offer,
                       skipped=skipped) if (checked or offer) and age is not None else []
    return _queue_page(request, t, user, conn, facility, code, age, errors={}, notices=notices)


def _age(value: str) -> int:
    if not value.isdigit() or int(value) not in AGES:
        raise InvalidQuery(f"age_class {value!r} is not 0-5", param="age_class")
    return int(value)


@router.post("/centres/{code}/claims", response_model=None)
def check_claim(request: Request, code: CentreCode, t: PageLang, user: PageUser, tx: WriteTx, child: Text = "",
                category: Text = "", evidence: Text = "", age_class: Text = "") -> HTMLResponse | RedirectResponse:
    """Record a claim's checked state (``set_evidence``, as the API's ``/claims``); the queue then says which ranks
    it moved."""
    if user is None:
        return login_redirect(request)
    conn = tx.connection()
    facility = _facility(user, conn, code)
    age = int(age_class) if age_class.isdigit() and int(age_class) in AGES else None

    def run() -> list[tuple[str, int, int]]:
        if age is None:
            raise InvalidQuery("age_class is not 0-5", param="age_class")
        if not CHILD.match(child) or not CATEGORY.match(category):
            raise InvalidQuery("not a child's claim", param="child")
        if evidence not in STAFF_EVIDENCE:
            raise InvalidQuery(f"evidence {evidence!r} is not one staff record", param="evidence")
        before = _order(conn, facility.id, age)
        wl.set_evidence(conn, facility_id=facility.id, child_public_id=child, category=category, evidence=evidence,
                        actor_user_id=user.user_id)
        after = _order(conn, facility.id, age)
        return sorted(((e, before[e], a) for e, a in after.items() if e in before and before[e] != a),
                      key=lambda m: m[2])

    moved, error = _attempt(tx, t, run)
    if error or moved is None:
        return _queue_page(request, t, user, conn, facility, code, age, errors={"_": error}, status=409)
    moves = ",".join(f"{e}.{b}.{a}" for e, b, a in moved)
    return see_other(f"{PORTAL}/staff/centres/{code}/queue?age={age}&checked={child}.{category}.{evidence}"
                     f"&moves={moves}")


@router.post("/centres/{code}/offers", response_model=None)
def make_offer(request: Request, code: CentreCode, t: PageLang, user: PageUser, tx: WriteTx,
               age_class: Text = "") -> HTMLResponse | RedirectResponse:
    """Offer a free place of a class age to the first eligible waiting entry (``offer_next``, as the API's
    ``/offers``): entries whose counting claims are unchecked are skipped, and the page says so."""
    if user is None:
        return login_redirect(request)
    conn = tx.connection()
    facility = _facility(user, conn, code)

    def run() -> dict[str, Any]:
        return wl.offer_next(conn, facility_id=facility.id, age_class=_age(age_class), actor_user_id=user.user_id)

    done, error = _attempt(tx, t, run)
    age = int(age_class) if age_class.isdigit() and int(age_class) in AGES else None
    if error or done is None:
        return _queue_page(request, t, user, conn, facility, code, age, errors={"_": error}, status=409)
    skipped = ",".join(f"{s['entry']}.{'unverified' if 'not verified' in s['reason'] else 'other'}"
                       for s in done["skipped"])
    made = str(done["offer"]["id"]) if done["offer"] else "none"
    return see_other(f"{PORTAL}/staff/centres/{code}/queue?age={age}&offer={made}&skipped={skipped}")
