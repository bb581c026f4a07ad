"""Vacancy reports over HTTP: each contradiction is a 422 naming the field, accepted reports update the
facility row and the history, and staleness follows the configured number of days."""

from __future__ import annotations

from sqlalchemy import Connection, text

from geo.domain import CHILDREN_PER_CLASS
from geo.settings import Settings
from tests.accounts_util import make_cast, valid_report
from tests.dbutil import client_on


def _post(client, cast, body):
    return client.post(f"/vacancy/centres/{cast.own.code}/reports", json=body, headers=cast.headers["staff"])


def test_contradicting_reports_name_the_field(settings: Settings, conn: Connection) -> None:
    cast = make_cast(conn, settings)
    client = client_on(settings, conn)
    classes = {k: int(v or 0) for k, v in cast.own.classes_by_age.items()}
    cap = cast.own.capacity
    over_class = classes["2"] * CHILDREN_PER_CLASS["2"] + 1
    room0 = classes["0"] * 3 + classes.get("mixed_infant", 0) * CHILDREN_PER_CLASS["mixed_infant"]
    cases = [
        ({"enrolled_by_age": {"2": over_class}, "free_by_age": {}}, "enrolled_by_age.2"),
        ({"enrolled_by_age": {"0": 0}, "free_by_age": {"0": room0 + 1}}, "free_by_age.0"),
        ({"enrolled_by_age": {"7": 1}, "free_by_age": {}}, "enrolled_by_age.7"),
        ({"enrolled_by_age": {"1": -1}, "free_by_age": {}}, "enrolled_by_age.1"),
        ({"enrolled_by_age": {}, "free_by_age": {"mixed_infant": 1}}, "free_by_age.mixed_infant"),
        # More children than 정원 (classes given explicitly so that only capacity is broken).
        ({"enrolled_by_age": {"5": cap + 1}, "free_by_age": {},
          "classes_by_age": {"5": cap // 20 + 1}}, "enrolled_by_age"),
        # Free places of one age beyond 정원 − 현원 although its classes have room.
        ({"enrolled_by_age": {"5": cap - 1}, "free_by_age": {"4": 2},
          "classes_by_age": {"4": 1, "5": cap // 20 + 1}}, "free_by_age.4"),
    ]
    for body, field in cases:
        resp = _post(client, cast, body)
        assert resp.status_code == 422, (field, resp.text)
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert resp.json()["param"] == field, resp.json()
    assert conn.execute(text("SELECT count(*) FROM vacancy_reports")).scalar_one() == 0


def test_report_updates_facility_history_and_staleness(settings: Settings, conn: Connection) -> None:
    weekly = settings.updated(DOLBOM_VACANCY_STALE_DAYS=7.0)
    cast = make_cast(conn, weekly)
    client = client_on(weekly, conn)
    status = client.get(f"/vacancy/centres/{cast.own.code}").json()
    assert status["last_reported_at"] is None and status["stale"] is True
    body = valid_report(cast.own)
    resp = _post(client, cast, body)
    assert resp.status_code == 201, resp.text
    event = resp.json()
    enrolled = sum(body["enrolled_by_age"].values())
    row = conn.execute(text("SELECT enrolled, enrolled_by_age, free_by_age, capacity FROM facilities WHERE id = :id"),
                       {"id": cast.own.id}).one()
    assert row.enrolled == enrolled
    assert {k: v for k, v in row.enrolled_by_age.items() if v} == body["enrolled_by_age"]
    assert row.free_by_age == {"0": 1, "1": 0, "2": 0, "3": 0, "4": 0, "5": 0, "total": row.capacity - enrolled}
    assert event["free_by_age"] == row.free_by_age and event["code"] == cast.own.code
    assert conn.execute(text("SELECT count(*) FROM vacancy_events WHERE seq = :s"), {"s": event["seq"]}).scalar_one()
    history = client.get(f"/vacancy/centres/{cast.own.code}/reports", headers=cast.headers["officer"]).json()
    assert [h["author_email"] for h in history] == ["staff@example.kr"]
    status = client.get(f"/vacancy/centres/{cast.own.code}").json()
    assert status["stale"] is False and status["last_reported_at"] == history[0]["reported_at"]
    # Eight days later the report is stale; the 구 listing agrees.
    conn.execute(text("UPDATE vacancy_reports SET reported_at = reported_at - interval '8 days'"))
    assert client.get(f"/vacancy/centres/{cast.own.code}").json()["stale"] is True
    listing = client.get(f"/vacancy/districts/{cast.own.district_code}", headers=cast.headers["officer"]).json()
    expected = conn.execute(text("SELECT count(*) FROM facilities WHERE district_code = :d "
                                 "AND status IN ('active', 'reopened')"), {"d": cast.own.district_code}).scalar_one()
    assert len(listing) == expected and all(c["stale"] for c in listing)
    assert next(c for c in listing if c["code"] == cast.own.code)["last_reported_at"] is not None


def test_unknown_centre_and_bad_stream_parameters(settings: Settings, conn: Connection) -> None:
    cast = make_cast(conn, settings)
    with client_on(settings, conn) as client:  # the stream's hub is the lifespan's
        assert client.post("/vacancy/centres/nope/reports", json=valid_report(cast.own),
                           headers=cast.headers["staff"]).status_code == 404
        assert client.get("/vacancy/centres/nope").status_code == 404
        assert client.get("/vacancy/stream", params={"bbox": "1,2,3"}).status_code == 422
        assert client.get("/vacancy/stream", headers={"Last-Event-ID": "abc"}).status_code == 422


def test_a_stream_ends_after_its_configured_duration(settings: Settings, conn: Connection) -> None:
    """``DOLBOM_VACANCY_STREAM_MAX_S`` bounds a stream (the client reconnects with Last-Event-ID); an event id
    beyond bigint is a 422 naming the header, not a database error."""
    bounded = settings.updated(DOLBOM_VACANCY_STREAM_MAX_S=0.2)
    with client_on(bounded, conn) as client:
        response = client.get("/vacancy/stream")  # returns only because the stream ends by itself
        assert response.status_code == 200 and response.text.startswith("retry: ")
        assert response.headers["content-type"].startswith("text/event-stream")
        huge = client.get("/vacancy/stream", headers={"Last-Event-ID": str(2**63)})
        assert huge.status_code == 422 and huge.json()["param"] == "Last-Event-ID"
