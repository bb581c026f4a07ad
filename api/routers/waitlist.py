"""The admission waitlist over HTTP: thin handlers over ``geo.admission.waitlist``; who may do what is decided by
``geo.auth.policy`` (through ``api.security.authorize``), ownership of children and entries by the domain."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Path, Query, Response

from api.deps import (
    CurrentUser,
    IdempotencyKeyDep,
    LogPublisherDep,
    ReadSessionDep,
    SessionDep,
    SettingsDep,
    WriteRoute,
    WriteTx,
)
from api.schemas.waitlist import ApplyIn, ChildIn, CorrectionIn, EvidenceIn, OfferIn
from api.security import authorize
from geo.admission import child_records, offer_flow, tlog_store
from geo.admission import waitlist as wl
from geo.admission.events import openings
from geo.admission.rules import childcare_year
from geo.auth.policy import Action
from geo.validation import MAX_ID, MAX_OFFSET

PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A body that is not JSON (problem+json, RFC 9457)"},
    401: {"description": "Not authenticated (problem+json, RFC 9457)"},
    403: {"description": "The role or the identity verification does not allow this (problem+json, RFC 9457)"},
    404: {"description": "No such centre, child, entry or offer of yours (problem+json, RFC 9457)"},
    409: {"description": "Conflicts with the waitlist's state or limits (problem+json, RFC 9457)"},
}
router = APIRouter(prefix="/waitlist", tags=["waitlist"], responses=PROBLEMS, route_class=WriteRoute)
Code = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z_-]+$")]
EntryId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[0-9a-f]+$")]
OfferId = Annotated[int, Path(ge=1, le=MAX_OFFSET)]
AgeClass = Annotated[int, Query(ge=0, le=5)]
Year = Annotated[int | None, Query(ge=2000, le=2100)]


def _year(year: int | None) -> int:
    return year if year is not None else childcare_year(datetime.now(UTC).date())


@router.post("/children", status_code=201, summary="Register a child (identity-verified parents)")
def register_child(body: ChildIn, user: CurrentUser, tx: WriteTx, _key: IdempotencyKeyDep) -> dict[str, Any]:
    """Birth date and claimed priority categories (evidence ``claimed`` until checked)."""
    authorize(user, Action.apply_waitlist)
    return wl.register_child(tx.connection(), parent_user_id=user.user_id, name=body.name,
                             birth_date=body.birth_date, claims=body.claims,
                             claim_details=body.claim_details, enrolled=body.enrolled)


@router.get("/children", summary="My children (with or without applications)")
def my_children(user: CurrentUser, session: SessionDep) -> list[dict[str, Any]]:
    """Name, birth date, claims and entry counts by status of each child I registered."""
    authorize(user, Action.apply_waitlist)
    return child_records.list_children(session.connection(), parent_user_id=user.user_id)


@router.delete("/children/{child_id}", status_code=204, summary="Remove one of my children")
def remove_child(child_id: Annotated[int, Path(ge=1, le=MAX_ID)], user: CurrentUser,
                 tx: WriteTx) -> Response:
    """Only without live (waiting or offered) entries: 409 otherwise. The child, its claims and finished entries
    are deleted; the centres' chains keep their pseudonymous events."""
    authorize(user, Action.apply_waitlist)
    child_records.remove_child(tx.connection(), parent_user_id=user.user_id, child_id=child_id)
    return Response(status_code=204)


@router.post("/entries", status_code=201, summary="Apply for a child to a centre")
def apply(body: ApplyIn, user: CurrentUser, tx: WriteTx, _key: IdempotencyKeyDep, settings: SettingsDep,
          publish: LogPublisherDep, background: BackgroundTasks) -> dict[str, Any]:
    """Up to the year's ``max_applications`` centres per child, one active entry per centre. ``receipt`` is the
    log's signed promise (entry, centre, chain seq, time, leaf hash); once committed the application is
    integrated into the public log, and ``GET /waitlist/log/mine`` proves it is there."""
    authorize(user, Action.apply_waitlist)
    conn = tx.connection()
    entry = wl.apply(conn, parent_user_id=user.user_id, child_id=body.child_id, facility_code=body.centre)
    if not settings.log.on_write:
        return entry
    background.add_task(publish)
    return {**entry, "receipt": tlog_store.receipt(conn, settings, entry=entry["entry"])}


@router.get("/me", summary="My entries: rank, score band, the reasons for every change since I last looked, and "
                           "when an offer is likely")
def my_ranks(user: CurrentUser, tx: WriteTx) -> list[dict[str, Any]]:
    """Live ranks; the view is remembered so the next call explains what changed since. Each waiting entry has a
    ``forecast``: the dates by which an offer is 50 % and 90 % likely (``by: null``: not within
    ``horizon_months``), the data it rests on (``basis``) and the same in plain words (``words.ko``,
    ``words.en``); see docs/waitlist-forecast.md."""
    authorize(user, Action.apply_waitlist)
    return offer_flow.my_ranks_with_forecasts(tx.connection(), parent_user_id=user.user_id)


@router.get("/me/proofs", summary="Inclusion proofs of my entries' events in the centres' chains")
def my_proofs(user: CurrentUser, session: SessionDep) -> list[dict[str, Any]]:
    """Each proof leads from one of my events to the chain's head without showing anyone else's events."""
    authorize(user, Action.apply_waitlist)
    return wl.inclusion_proofs(session.connection(), parent_user_id=user.user_id)


@router.get("/me/openings", summary="The openings of my entries' commitments in the centres' public logs")
def my_openings(user: CurrentUser, session: SessionDep) -> list[dict[str, Any]]:
    """Per entry: the centre, my child's pseudonym there and, per committed claim, the category and its salt
    (SHA-256(salt || category) is the commitment in the log). Only I see them; they open nobody else's events."""
    authorize(user, Action.apply_waitlist)
    return openings(session.connection(), parent_user_id=user.user_id)


@router.get("/me/notices", summary="My notices (offers, entries dropped at year end)")
def my_notices(user: CurrentUser, session: SessionDep) -> list[dict[str, Any]]:
    """Newest first."""
    authorize(user, Action.apply_waitlist)
    return wl.notices(session.connection(), parent_user_id=user.user_id)


@router.post("/entries/{entry}/withdraw", summary="Withdraw one of my entries")
def withdraw(entry: EntryId, user: CurrentUser, tx: WriteTx) -> dict[str, Any]:
    """An open offer on it is declined."""
    authorize(user, Action.apply_waitlist)
    return wl.withdraw(tx.connection(), parent_user_id=user.user_id, entry_public_id=entry)


@router.post("/entries/{entry}/keep", summary="Keep an entry after my child's admission elsewhere")
def keep(entry: EntryId, user: CurrentUser, tx: WriteTx) -> dict[str, Any]:
    """Otherwise it lapses after the year's ``keep_other_entries_days``."""
    authorize(user, Action.apply_waitlist)
    return wl.keep_entries(tx.connection(), parent_user_id=user.user_id, entry_public_id=entry)


@router.post("/entries/{entry}/renew", summary="Renew an entry for the next 보육연도")
def renew(entry: EntryId, user: CurrentUser, tx: WriteTx) -> dict[str, Any]:
    """Entries not renewed are dropped at the start of the year, with a notice."""
    authorize(user, Action.apply_waitlist)
    return wl.renew(tx.connection(), parent_user_id=user.user_id, entry_public_id=entry)


@router.post("/offers/{offer_id}/accept", summary="Accept an offer before its deadline")
def accept(offer_id: OfferId, user: CurrentUser, tx: WriteTx) -> dict[str, Any]:
    """Once: a second acceptance is a 409."""
    authorize(user, Action.apply_waitlist)
    return wl.accept(tx.connection(), parent_user_id=user.user_id, offer_id=offer_id)


@router.post("/offers/{offer_id}/decline", summary="Decline an offer (the place moves on)")
def decline(offer_id: OfferId, user: CurrentUser, tx: WriteTx) -> dict[str, Any]:
    """The entry is withdrawn and the next eligible entry gets the offer."""
    authorize(user, Action.apply_waitlist)
    return wl.decline(tx.connection(), parent_user_id=user.user_id, offer_id=offer_id)


@router.get("/centres/{code}/queue", summary="A centre's queue, anonymised (rank, score band, application date)")
def public_queue(code: Code, session: ReadSessionDep, age_class: AgeClass, year: Year = None) -> list[dict[str, Any]]:
    """Public: no names, no ids."""
    return wl.public_queue(session.connection(), code, year=_year(year), age_class=age_class)


@router.get("/centres/{code}/applicants", summary="A centre's queue with names and claims (its staff, its 구)")
def applicants(code: Code, user: CurrentUser, session: SessionDep, age_class: AgeClass,
               year: Year = None) -> list[dict[str, Any]]:
    """What staff need to check claims and make offers."""
    facility = wl.facility_by_code(session.connection(), code)
    authorize(user, Action.read_waitlist, facility_id=facility.id, district_code=facility.district_code)
    return wl.staff_queue(session.connection(), facility.id, year=_year(year), age_class=age_class)


@router.post("/centres/{code}/claims", summary="Record the checked state of a child's claim (staff)")
def set_evidence(code: Code, body: EvidenceIn, user: CurrentUser, tx: WriteTx) -> dict[str, Any]:
    """Logged on the chains of the child's centres; their queues are re-ranked."""
    conn = tx.connection()
    facility = wl.facility_by_code(conn, code)
    authorize(user, Action.manage_waitlist, facility_id=facility.id, district_code=facility.district_code)
    return wl.set_evidence(conn, facility_id=facility.id, child_public_id=body.child, category=body.category,
                           evidence=body.evidence, actor_user_id=user.user_id)


@router.post("/centres/{code}/offers", status_code=201, summary="Offer a free place to the first eligible entry")
def offer(code: Code, body: OfferIn, user: CurrentUser, tx: WriteTx,
          _key: IdempotencyKeyDep) -> dict[str, Any]:
    """Entries skipped are listed with their reason; 409 when no place is free."""
    conn = tx.connection()
    facility = wl.facility_by_code(conn, code)
    authorize(user, Action.manage_waitlist, facility_id=facility.id, district_code=facility.district_code)
    return wl.offer_next(conn, facility_id=facility.id, age_class=body.age_class, actor_user_id=user.user_id)


@router.post("/entries/{entry}/correction", summary="Correct an entry's status with a reason (city admins)")
def correct(entry: EntryId, body: CorrectionIn, user: CurrentUser, tx: WriteTx) -> dict[str, Any]:
    """Logged on the centre's chain with the reason."""
    authorize(user, Action.correct_waitlist)
    return wl.correct(tx.connection(), entry_public_id=entry, status=body.status, reason=body.reason,
                      actor_user_id=user.user_id)


@router.get("/centres/{code}/chain", summary="A centre's hash chain, its daily heads and its verification")
def chain(code: Code, session: SessionDep,
          after: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
          limit: Annotated[int, Query(ge=1, le=1000)] = 1000) -> dict[str, Any]:
    """Public: events hold only pseudonymous ids and nonces. ``problems`` names edited or removed rows."""
    conn = session.connection()
    facility = wl.facility_by_code(conn, code)
    rows = wl.chain_rows(conn, facility.id)
    problems = wl.verify_centre(conn, facility.id)
    return {"centre": code, "ok": not problems,
            "problems": [{"seq": p.seq, "reason": p.reason} for p in problems],
            "heads": wl.daily_heads(conn, facility.id),
            "links": [{"seq": r.seq, "event": r.event, "digest": r.digest, "hash": r.hash}
                      for r in rows if r.seq > after][:limit]}
