"""Live vacancy: staff reports, centre and 구 status with staleness, report history, and the SSE stream."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query
from pydantic import StringConstraints
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from api.deps import (
    CurrentUser,
    EngineDep,
    IdempotencyKeyDep,
    ReadSessionDep,
    SessionDep,
    SettingsDep,
    VacancyHubDep,
    WriteRoute,
    WriteTx,
)
from api.schemas.accounts import (
    CentreVacancyOut,
    ReportHistoryOut,
    VacancyConflictOut,
    VacancyEventOut,
    VacancyReportBody,
)
from api.security import authorize
from api.sse import EventStreamResponse
from geo.auth.policy import Action
from geo.errors import InvalidQuery
from geo.search.filters import MAX_LIST_VALUES
from geo.vacancy.hub import sse_frame_bytes
from geo.vacancy.reports import (
    EventFilter,
    VacancyReportIn,
    centre_status,
    district_status,
    events_after,
    facility_ref,
    parse_bbox,
    report_history,
    submit_report,
    vacancy_conflicts,
)
from geo.validation import reject_control_characters

router = APIRouter(prefix="/vacancy", tags=["vacancy"], route_class=WriteRoute)
CodeValue = Annotated[str, StringConstraints(max_length=50)]
CentreCode = Annotated[str, Path(max_length=50, description="어린이집코드")]
DistrictCode = Annotated[str, Path(max_length=20, description="구 code (5 digits)")]


def _code(code: str, param: str = "code") -> str:
    """A code from the path, free of control characters (PostgreSQL text cannot hold NUL)."""
    reject_control_characters(code, param=param)
    return code
HEARTBEAT_S = 15.0
REPLAY_BATCH = 1000


@router.post("/centres/{code}/reports", status_code=201, response_model=VacancyEventOut,
             summary="Report enrolment and free places by age (staff of the centre)")
def report(code: CentreCode, body: VacancyReportBody, user: CurrentUser, tx: WriteTx, settings: SettingsDep,
           _key: IdempotencyKeyDep) -> dict[str, Any]:
    """Checked against 정원 and the class ratios (422 naming the field); kept in history with its author,
    written to the facility row, audited and pushed to ``/vacancy/stream``."""
    conn = tx.connection()
    facility_id, district = facility_ref(conn, _code(code))
    authorize(user, Action.report_vacancy, facility_id=facility_id, district_code=district)
    report = VacancyReportIn(enrolled_by_age=body.enrolled_by_age, free_by_age=body.free_by_age,
                             classes_by_age=body.classes_by_age)
    event = submit_report(conn, facility_code=code, author_user_id=user.user_id, report=report,
                          public_url=settings.server.public_url)
    return event


@router.get("/centres/{code}", response_model=CentreVacancyOut, summary="A centre's vacancy and staleness")
def centre(code: CentreCode, session: ReadSessionDep, settings: SettingsDep) -> dict[str, Any]:
    """Public: free places by age, when the centre last reported, stale after ``DOLBOM_VACANCY_STALE_DAYS``."""
    return centre_status(session.connection(), _code(code), stale_after_days=settings.vacancy.stale_days)


@router.get("/centres/{code}/reports", response_model=list[ReportHistoryOut],
            summary="A centre's report history (its staff, its 구's officer, admins)")
def history(code: CentreCode, user: CurrentUser, session: SessionDep,
            limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    """Reports newest first, each with its author."""
    conn = session.connection()
    facility_id, district = facility_ref(conn, _code(code))
    authorize(user, Action.read_centre_history, facility_id=facility_id, district_code=district)
    return report_history(conn, code, limit=limit)


@router.get("/centres/{code}/conflicts", response_model=list[VacancyConflictOut],
            summary="Snapshot figures not applied because the centre reported later (its staff, officer, admins)")
def conflicts(code: CentreCode, user: CurrentUser, session: SessionDep,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    """A figure the centre reported after an official snapshot's data date wins over that snapshot; each
    differing figure is kept here with both values, newest first."""
    conn = session.connection()
    facility_id, district = facility_ref(conn, _code(code))
    authorize(user, Action.read_centre_history, facility_id=facility_id, district_code=district)
    return vacancy_conflicts(conn, code, limit=limit)


@router.get("/districts/{district_code}", response_model=list[CentreVacancyOut],
            summary="Every operating centre of a 구 with staleness (its officer, admins)")
def district(district_code: DistrictCode, user: CurrentUser, session: SessionDep,
             settings: SettingsDep) -> list[dict[str, Any]]:
    """Which centres report, and which are stale."""
    authorize(user, Action.read_district, district_code=_code(district_code, "district_code"))
    return district_status(session.connection(), district_code, stale_after_days=settings.vacancy.stale_days)


@router.get("/stream", summary="Server-Sent Events of vacancy changes",
            response_class=EventStreamResponse, responses={200: {"content": {"text/event-stream": {}}}})
async def stream(
    settings: SettingsDep,
    engine: EngineDep,
    hub: VacancyHubDep,
    bbox: Annotated[str | None, Query(description="west,south,east,north in degrees (EPSG:4326)",
                                      max_length=200)] = None,
    district: Annotated[str | None, Query(description="구 code (5 digits)", max_length=20)] = None,
    code: Annotated[list[CodeValue] | None, Query(description="어린이집코드 (repeatable)",
                                                  max_length=MAX_LIST_VALUES)] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> EventStreamResponse:
    """``event: vacancy`` with ``id`` = the event sequence. Reconnect with ``Last-Event-ID`` (browsers do it by
    themselves) to receive what was missed. Works across API worker processes (PostgreSQL LISTEN/NOTIFY).
    A client that reads too slowly gets ``event: reconnect`` and the end of the stream: it reconnects with
    ``Last-Event-ID`` and resumes where it was."""
    for param, value in (("bbox", bbox), ("district", district), ("Last-Event-ID", last_event_id),
                         *(("code", c) for c in code or ())):
        reject_control_characters(value, param=param)
    flt = EventFilter(bbox_4326=parse_bbox(bbox) if bbox else None, district_code=district,
                      facility_codes=frozenset(code or ()))
    after: int | None = None
    if last_event_id:
        try:
            after = int(last_event_id)
        except ValueError as exc:
            raise InvalidQuery(f"Last-Event-ID must be an event id, got {last_event_id!r}",
                               param="Last-Event-ID") from exc
        if not 0 <= after < 2**63:  # event ids are bigint sequence values
            raise InvalidQuery(f"Last-Event-ID must be an event id, got {last_event_id!r}", param="Last-Event-ID")
    sub = await hub.subscribe(flt)
    replay: Callable[[int], Awaitable[list[tuple[int, bytes]]]] | None = None
    first: list[tuple[int, bytes]] = []
    if after is not None:
        # Subscribed first, then replayed: anything pushed meanwhile is both in the buffer and possibly in the
        # replay; the stream skips frames at or below the last sequence it sent.
        recent = hub.events_since(after)
        if recent is not None:
            first = [(seq, frame) for seq, event, frame in recent if flt.matches(event)]
        else:
            async def replay(sent: int) -> list[tuple[int, bytes]]:
                batch = await run_in_threadpool(_replay, engine, sent)
                return [(event["seq"], sse_frame_bytes(event) if flt.matches(event) else b"") for event in batch]
    return EventStreamResponse(hub, sub, after=after, first=first, replay=replay, replay_batch=REPLAY_BATCH,
                               max_s=settings.vacancy.stream_max_s, heartbeat_s=HEARTBEAT_S)


def _replay(engine: Engine, after: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return events_after(conn, after, limit=REPLAY_BATCH)
