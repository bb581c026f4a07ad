"""Saved searches and their vacancy alerts: a live report that raises a centre's free places for an age sends
exactly one message to every active search whose circle holds the centre, in the report's transaction."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from sqlalchemy import Connection, text

from geo.alerts import searches
from geo.alerts.firing import fire_for_report, quiet_release, raised_ages
from geo.alerts.searches import SavedSearchIn
from geo.domain import SEOUL_TZ
from geo.errors import InvalidQuery, NotFound
from geo.vacancy.reports import VacancyReportIn, submit_report
from tests.booking_util import ORIGIN_LAT, ORIGIN_LON, make_centre, make_user, verified_phone_of

# 0.01° of latitude is about 1.11 km.
NEAR_LAT = ORIGIN_LAT + 0.005  # ~556 m north
FAR_LAT = ORIGIN_LAT + 0.02  # ~2.2 km north


def _search(conn: Connection, owner: int, *, radius_m: int = 1000, age: int = 1, channel: str = "sms",
            lang: str = "ko", quiet: tuple[time, time] | None = None, service: str | None = None) -> int:
    return searches.create_search(conn, owner_user_id=owner, search=SavedSearchIn(
        place_label="우리집", lon=ORIGIN_LON, lat=ORIGIN_LAT, radius_m=radius_m, child_age=age, channel=channel,
        lang=lang, service=service, quiet_from=quiet[0] if quiet else None, quiet_until=quiet[1] if quiet else None,
        opted_in=True))


def _report(conn: Connection, code: str, free_1: int, *, public_url: str = "https://dolbom.example") -> dict:
    return submit_report(conn, facility_code=code, author_user_id=None, public_url=public_url,
                         report=VacancyReportIn(enrolled_by_age={"1": 2}, free_by_age={"1": free_1},
                                                classes_by_age={"1": 1}))


def _messages(conn: Connection, search_id: int) -> list:
    return conn.execute(text("SELECT recipient, body, status, next_attempt_at, template, lang FROM notification_outbox "
                             "WHERE idempotency_key LIKE :p ORDER BY id"), {"p": f"alert:{search_id}:%"}).all()


@pytest.fixture()
def near(connection: Connection) -> str:
    make_centre(connection, "ALERT-NEAR", lat=NEAR_LAT, name="가까운어린이집")
    return "ALERT-NEAR"


def test_a_report_fires_one_message_per_matching_search(connection: Connection, near: str) -> None:
    mother = make_user(connection, "alert-mother@example.kr", "parent")
    father = make_user(connection, "alert-father@example.kr", "parent")
    sms = _search(connection, mother)
    mail = _search(connection, father, channel="email", lang="en", radius_m=2000)
    other_age = _search(connection, father, age=3)
    _report(connection, near, 2)
    [m] = _messages(connection, sms)
    assert m.recipient == verified_phone_of(mother) and m.template == "alert_vacancy" and m.status == "pending"
    assert "가까운어린이집" in m.body and "만 1세" in m.body and "2석" in m.body and "0.6km" in m.body
    assert "https://dolbom.example/portal/alerts/unsubscribe/" in m.body
    [e] = _messages(connection, mail)
    assert e.recipient == "alert-father@example.kr" and e.lang == "en"
    assert "now has 2 free place(s) for age 1" in e.body and "Stop these alerts: https://" in e.body
    assert _messages(connection, other_age) == []


def test_no_message_for_a_centre_outside_the_circle(connection: Connection) -> None:
    make_centre(connection, "ALERT-FAR", lat=FAR_LAT)
    mother = make_user(connection, "alert-far@example.kr", "parent")
    sid = _search(connection, mother, radius_m=1000)
    _report(connection, "ALERT-FAR", 3)
    assert _messages(connection, sid) == []


def test_only_a_rise_fires_and_the_same_report_twice_sends_once(connection: Connection, near: str) -> None:
    mother = make_user(connection, "alert-twice@example.kr", "parent")
    sid = _search(connection, mother)
    first = _report(connection, near, 1)
    _report(connection, near, 1)  # the same figures again: nothing went up
    assert len(_messages(connection, sid)) == 1
    _report(connection, near, 0)  # down: nothing
    assert len(_messages(connection, sid)) == 1
    _report(connection, near, 2)  # up again: a second message
    assert len(_messages(connection, sid)) == 2
    # Running the firing again for one report (a retried hook) queues nothing new: the outbox key is per report.
    report_id = connection.execute(text("SELECT max(id) FROM vacancy_reports")).scalar_one()
    assert fire_for_report(connection, facility_id=first["facility_id"], centre_name="x", report_id=report_id,
                           free_before={"1": 0}, free_after={"1": 2}) == 0
    assert len(_messages(connection, sid)) == 2


def test_no_message_after_unsubscribe(connection: Connection, near: str) -> None:
    mother = make_user(connection, "alert-unsub@example.kr", "parent")
    sid = _search(connection, mother)
    _report(connection, near, 1)
    [m] = _messages(connection, sid)
    token = m.body.rsplit("/", 1)[-1]
    target = searches.unsubscribe_target(connection, token)
    assert target["id"] == sid and target["active"] is True
    searches.unsubscribe(connection, token)
    searches.unsubscribe(connection, token)  # twice: still fine
    _report(connection, near, 0)
    _report(connection, near, 3)
    assert len(_messages(connection, sid)) == 1
    with pytest.raises(NotFound):
        searches.unsubscribe_target(connection, "not-a-token")


def test_pause_stops_and_resume_restarts(connection: Connection, near: str) -> None:
    mother = make_user(connection, "alert-pause@example.kr", "parent")
    sid = _search(connection, mother)
    searches.set_active(connection, owner_user_id=mother, search_id=sid, active=False)
    _report(connection, near, 1)
    assert _messages(connection, sid) == []
    searches.set_active(connection, owner_user_id=mother, search_id=sid, active=True)
    _report(connection, near, 2)
    assert len(_messages(connection, sid)) == 1
    other = make_user(connection, "alert-other@example.kr", "parent")
    with pytest.raises(NotFound):
        searches.set_active(connection, owner_user_id=other, search_id=sid, active=False)
    searches.delete_search(connection, owner_user_id=mother, search_id=sid)
    assert searches.list_searches(connection, owner_user_id=mother) == []


def test_quiet_hours_hold_the_message_until_they_end(connection: Connection, near: str) -> None:
    mother = make_user(connection, "alert-quiet@example.kr", "parent")
    # A quiet window around the present hour in Seoul.
    now_seoul = datetime.now(UTC).astimezone(SEOUL_TZ)
    start = time((now_seoul.hour - 1) % 24, 0)
    end = time((now_seoul.hour + 2) % 24, 0)
    sid = _search(connection, mother, quiet=(start, end))
    loud = _search(connection, make_user(connection, "alert-loud@example.kr", "parent"))
    _report(connection, near, 1)
    [held] = _messages(connection, sid)
    [sent] = _messages(connection, loud)
    assert held.next_attempt_at > sent.next_attempt_at
    assert held.next_attempt_at.astimezone(now_seoul.tzinfo).time() == end


def test_quiet_release_rules() -> None:
    seoul = SEOUL_TZ
    night = (time(22), time(7))
    at_23 = datetime(2026, 12, 6, 23, 30, tzinfo=seoul)
    assert quiet_release(at_23, *night) == datetime(2026, 12, 7, 7, 0, tzinfo=seoul)
    at_6 = datetime(2026, 12, 7, 6, 59, tzinfo=seoul)
    assert quiet_release(at_6, *night) == datetime(2026, 12, 7, 7, 0, tzinfo=seoul)
    assert quiet_release(datetime(2026, 12, 7, 7, 0, tzinfo=seoul), *night) is None
    assert quiet_release(datetime(2026, 12, 7, 12, 0, tzinfo=seoul), *night) is None
    assert quiet_release(datetime(2026, 12, 7, 13, 0, tzinfo=seoul), time(12), time(14)) == \
        datetime(2026, 12, 7, 14, 0, tzinfo=seoul)
    assert quiet_release(at_23, None, None) is None
    # Given in UTC: 14:00 UTC is 23:00 in Seoul.
    assert quiet_release(datetime(2026, 12, 6, 14, 0, tzinfo=UTC), *night) == datetime(2026, 12, 7, 7, tzinfo=seoul)


def test_raised_ages() -> None:
    assert raised_ages(None, {"1": 1}) == [1]
    assert raised_ages({"1": 2, "total": 9}, {"1": 2, "2": 1}) == [2]
    assert raised_ages({"0": 3}, {"0": 1}) == []


def test_creating_needs_opt_in_and_bounds(connection: Connection) -> None:
    unverified = make_user(connection, "alert-unverified@example.kr", "parent", verified=False)
    base = dict(place_label="집", lon=ORIGIN_LON, lat=ORIGIN_LAT, radius_m=1000, child_age=1, channel="email")
    for changes, param in (({"opted_in": False}, "opt_in"), ({"radius_m": 50}, "radius_m"),
                           ({"radius_m": 50_000}, "radius_m"), ({"child_age": 6}, "child_age"),
                           ({"channel": "sms"}, "channel"), ({"service": "spa"}, "service"),
                           ({"quiet_from": time(22)}, "quiet_from")):
        with pytest.raises(InvalidQuery) as info:
            searches.create_search(connection, owner_user_id=unverified,
                                   search=SavedSearchIn(**{"opted_in": True, **base, **changes}))  # type: ignore[arg-type]
        assert info.value.extra["param"] == param
    sid = searches.create_search(connection, owner_user_id=unverified, search=SavedSearchIn(**base, opted_in=True))  # type: ignore[arg-type]
    [row] = searches.list_searches(connection, owner_user_id=unverified)
    assert row["id"] == sid and row["opted_in_at"] is not None and row["active"]


def test_service_filter(connection: Connection) -> None:
    make_centre(connection, "ALERT-SVC", lat=NEAR_LAT, services=("holiday",))
    mother = make_user(connection, "alert-svc@example.kr", "parent")
    wants_24h = _search(connection, mother, service="twenty_four_hour")
    wants_holiday = _search(connection, mother, service="holiday")
    _report(connection, "ALERT-SVC", 1)
    assert _messages(connection, wants_24h) == [] and len(_messages(connection, wants_holiday)) == 1


def test_a_rolled_back_report_sends_nothing(connection: Connection, near: str) -> None:
    mother = make_user(connection, "alert-rollback@example.kr", "parent")
    sid = _search(connection, mother)
    with pytest.raises(RuntimeError):
        with connection.begin_nested():
            _report(connection, near, 3)
            raise RuntimeError("the caller's transaction fails after the report")
    assert _messages(connection, sid) == []
