"""Idempotency-Key on creating requests: a retry gets the first response (not a second write, not a 409
``duplicate``), another body under the same key is a 422, a key still in progress a 409, a failed request stores
nothing; twins booked without names are two bookings."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text

from api.app import create_app
from geo.admission.rules import childcare_year
from geo.idempotency import KeyedRequest, caller_of, claim
from geo.settings import Settings
from tests.accounts_util import make_cast, valid_report
from tests.booking_util import ORIGIN_LAT, ORIGIN_LON, bearer, make_centre, make_slot, make_user
from tests.dbutil import client_on

PROBLEM = "application/problem+json"


def _problem(resp, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM)
    return resp.json()  # type: ignore[no-any-return]


def _bookings(conn: Connection, slot_id: int) -> int:
    return int(conn.execute(text("SELECT count(*) FROM bookings WHERE slot_id = :s"), {"s": slot_id}).scalar_one())


@pytest.fixture()
def cast(settings: Settings, connection: Connection) -> dict:
    centre = make_centre(connection, "T-IDEM-1")
    parent = make_user(connection, "idem-parent@example.kr", "parent")
    parent2 = make_user(connection, "idem-parent2@example.kr", "parent")
    return {"centre": centre, "parent": parent, "parent2": parent2,
            "h": bearer(connection, settings, parent), "h2": bearer(connection, settings, parent2)}


def test_a_retried_booking_gets_its_first_response(settings: Settings, connection: Connection, cast: dict) -> None:
    client = client_on(settings, connection)
    slot = make_slot(connection, cast["centre"], places_by_age={"2": 3})
    body = {"slot_id": slot, "child_age": 2, "phone": "010-1234-5678"}
    first = client.post("/bookings", json=body, headers={**cast["h"], "Idempotency-Key": "retry-1"})
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    # The client timed out and sends the same request again (its JSON re-serialised in another key order).
    retry = client.post("/bookings", content=f'{{"phone": "010-1234-5678", "child_age": 2, "slot_id": {slot}}}',
                        headers={**cast["h"], "Idempotency-Key": "retry-1", "Content-Type": "application/json"})
    assert retry.status_code == 201, retry.text
    assert retry.json() == first.json() and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.headers["content-type"] == first.headers["content-type"]
    assert _bookings(connection, slot) == 1
    # The same key with another body is another request: 422, and nothing is written.
    other = _problem(client.post("/bookings", json={**body, "child_age": 2, "phone": "010-9999-9999"},
                                 headers={**cast["h"], "Idempotency-Key": "retry-1"}), 422)
    assert other["reason"] == "idempotency_key_reused" and other["param"] == "Idempotency-Key"
    # ... and on another path.
    _problem(client.post("/bookings/emergency", json={"lat": ORIGIN_LAT, "lon": ORIGIN_LON, "child_age": 2,
                                                      "phone": "010-1234-5678", "radius_m": 1000},
                         headers={**cast["h"], "Idempotency-Key": "retry-1"}), 422)
    # Keys belong to their caller: another parent's "retry-1" is a request of its own.
    theirs = client.post("/bookings", json=body, headers={**cast["h2"], "Idempotency-Key": "retry-1"})
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]
    assert "Idempotent-Replayed" not in theirs.headers
    assert _bookings(connection, slot) == 2
    stored = connection.execute(text("SELECT caller, method, path, status FROM idempotency_keys "
                                     "WHERE key = 'retry-1' ORDER BY caller")).all()
    assert sorted(tuple(r) for r in stored) == sorted([(caller_of(cast["parent"]), "POST", "/bookings", 201),
                                                       (caller_of(cast["parent2"]), "POST", "/bookings", 201)])


def test_twins_without_names_are_two_bookings(settings: Settings, connection: Connection, cast: dict) -> None:
    client = client_on(settings, connection)
    slot = make_slot(connection, cast["centre"], places_by_age={"2": 2})
    body = {"slot_id": slot, "child_age": 2, "phone": "010-1234-5678"}
    twins = [client.post("/bookings", json=body, headers={**cast["h"], "Idempotency-Key": f"twin-{i}"})
             for i in (1, 2)]
    assert [t.status_code for t in twins] == [201, 201], [t.text for t in twins]
    assert twins[0].json()["id"] != twins[1].json()["id"]
    assert _bookings(connection, slot) == 2
    # A named child booked twice is still a duplicate.
    named = {**body, "child_name": "서연", "slot_id": make_slot(connection, cast["centre"], places_by_age={"2": 2},
                                                                  starts_in=timedelta(days=3))}
    assert client.post("/bookings", json=named, headers=cast["h"]).status_code == 201
    assert _problem(client.post("/bookings", json=named, headers=cast["h"]), 409)["reason"] == "duplicate"


def test_a_failed_request_stores_nothing(settings: Settings, connection: Connection, cast: dict) -> None:
    client = client_on(settings, connection)
    slot = make_slot(connection, cast["centre"], places_by_age={"2": 1})
    taken = client.post("/bookings", json={"slot_id": slot, "child_age": 2, "phone": "010-2222-2222"},
                        headers=cast["h2"])
    assert taken.status_code == 201
    body = {"slot_id": slot, "child_age": 2, "phone": "010-1234-5678"}
    headers = {**cast["h"], "Idempotency-Key": "full-then-free"}
    assert _problem(client.post("/bookings", json=body, headers=headers), 409)["reason"] == "full"
    assert connection.execute(text("SELECT count(*) FROM idempotency_keys WHERE key = 'full-then-free'")
                              ).scalar_one() == 0
    # The place is freed: the retry with the same key runs for real.
    assert client.post(f"/bookings/{taken.json()['id']}/cancel", headers=cast["h2"]).status_code == 200
    retry = client.post("/bookings", json=body, headers=headers)
    assert retry.status_code == 201 and retry.json()["status"] == "booked"
    assert "Idempotent-Replayed" not in retry.headers


@pytest.fixture()
def other_connection(engine: Engine) -> Iterator[Connection]:
    """A second server session, as a second API worker running the same key."""
    with engine.connect() as conn:
        trans = conn.begin()
        yield conn
        if trans.is_active:
            trans.rollback()


def test_a_key_in_progress_is_a_409(settings: Settings, connection: Connection, cast: dict,
                                    other_connection: Connection) -> None:
    client = client_on(settings, connection)
    slot = make_slot(connection, cast["centre"], places_by_age={"2": 2})
    body = {"slot_id": slot, "child_age": 2, "phone": "010-1234-5678"}
    # Another transaction has claimed the parent's key and not committed yet.
    running = KeyedRequest(caller=caller_of(cast["parent"]), key="slow", method="POST", path="/bookings",
                           request_hash="0" * 64)
    assert claim(other_connection, running, ttl=timedelta(hours=settings.idempotency.ttl_hours)) is None
    busy = _problem(client.post("/bookings", json=body, headers={**cast["h"], "Idempotency-Key": "slow"}), 409)
    assert busy["reason"] == "idempotency_key_in_progress"
    assert _bookings(connection, slot) == 0
    # Other keys of the same caller are not held up.
    assert client.post("/bookings", json=body, headers={**cast["h"], "Idempotency-Key": "fast"}).status_code == 201
    other_connection.rollback()  # the other request failed: the key is free again
    assert client.post("/bookings", json=body, headers={**cast["h"], "Idempotency-Key": "slow"}).status_code == 201


@pytest.mark.parametrize("path", ["/bookings/emergency", "/auth/signup"])
def test_other_creating_routes_replay(settings: Settings, connection: Connection, cast: dict, path: str) -> None:
    client = client_on(settings, connection)
    if path == "/auth/signup":
        body: dict = {"email": "idem-new@example.kr", "password": "correct horse battery"}
        headers = {"Idempotency-Key": "signup-1"}
        count = "SELECT count(*) FROM users WHERE email = 'idem-new@example.kr'"
    else:
        body = {"lat": ORIGIN_LAT, "lon": ORIGIN_LON, "child_age": 2, "phone": "010-1234-5678", "radius_m": 1000}
        headers = {**cast["h"], "Idempotency-Key": "sos-1"}
        count = f"SELECT count(*) FROM emergency_requests WHERE parent_user_id = {int(cast['parent'])}"
    created = 202 if path == "/auth/signup" else 201  # sign-up answers the same whether or not the address is new
    first = client.post(path, json=body, headers=headers)
    assert first.status_code == created, first.text
    again = client.post(path, json=body, headers=headers)
    assert (again.status_code, again.json()) == (created, first.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert connection.execute(text(count)).scalar_one() == 1


def test_a_malformed_key_is_a_422(settings: Settings, connection: Connection, cast: dict) -> None:
    client = client_on(settings, connection)
    slot = make_slot(connection, cast["centre"], places_by_age={"2": 1})
    body = {"slot_id": slot, "child_age": 2, "phone": "010-1234-5678"}
    for key in ("", "with space", "x" * 300):
        _problem(client.post("/bookings", json=body, headers={**cast["h"], "Idempotency-Key": key}), 422)
    assert _bookings(connection, slot) == 0


def test_children_applications_and_vacancy_reports_replay(settings: Settings, seoul_engine: Engine,
                                                          connection: Connection) -> None:
    """The waitlist's creating requests and a vacancy report, on the real Seoul centres: the retry replays, the
    child, the entry and the report exist once."""
    cast = make_cast(connection, settings)
    client = client_on(settings, connection)
    h = cast.headers
    connection.execute(text("UPDATE users SET verified_at = now() WHERE id = :u"), {"u": cast.ids["parent"]})
    born = date(childcare_year(date.today()) - 1, 6, 1)
    child = {"name": "홍길동", "birth_date": born.isoformat(), "claims": []}

    def twice(path: str, body: dict, headers: dict) -> dict:
        first = client.post(path, json=body, headers=headers)
        assert first.status_code == 201, first.text
        again = client.post(path, json=body, headers=headers)
        assert (again.status_code, again.json()) == (201, first.json())
        assert again.headers["Idempotent-Replayed"] == "true"
        return first.json()  # type: ignore[no-any-return]

    kid = twice("/waitlist/children", child, {**h["parent"], "Idempotency-Key": "child-1"})
    assert connection.execute(text("SELECT count(*) FROM children WHERE parent_user_id = :u"),
                              {"u": cast.ids["parent"]}).scalar_one() == 1
    twice("/waitlist/entries", {"child_id": kid["id"], "centre": cast.own.code},
          {**h["parent"], "Idempotency-Key": "apply-1"})
    assert len(client.get("/waitlist/me", headers=h["parent"]).json()) == 1
    reported = twice(f"/vacancy/centres/{cast.own.code}/reports", valid_report(cast.own),
                     {**h["staff"], "Idempotency-Key": "report-1"})
    assert connection.execute(text("SELECT count(*) FROM vacancy_reports WHERE facility_id = :f"),
                              {"f": cast.own.id}).scalar_one() == 1
    assert reported["code"] == cast.own.code


@pytest.fixture(scope="module")
def race_engine(make_database) -> Engine:  # type: ignore[no-untyped-def]
    """A database of its own: concurrent requests need committed rows and real transactions."""
    return make_database("idempotency_race")  # type: ignore[no-any-return]


def test_concurrent_retries_write_once(race_engine: Engine) -> None:
    """Eight copies of one keyed request at once (a client retrying over several connections): one booking;
    every answer is the first 201, its replay, or a 409 while the first is still running."""
    url = race_engine.url.render_as_string(hide_password=False)
    settings = Settings(DATABASE_URL=url)
    with race_engine.begin() as conn:
        slot = make_slot(conn, make_centre(conn, "T-IDEM-RACE"), places_by_age={"2": 20})
        headers = {**bearer(conn, settings, make_user(conn, "racer@example.kr", "parent")),
                   "Idempotency-Key": "same-request"}
    body = {"slot_id": slot, "child_age": 2, "phone": "010-1234-5678"}
    copies = 8
    barrier = threading.Barrier(copies)
    with TestClient(create_app(settings)) as client:
        def send(_: int) -> Any:
            barrier.wait()
            return client.post("/bookings", json=body, headers=headers)

        with ThreadPoolExecutor(copies) as pool:
            answers = list(pool.map(send, range(copies)))
    first = [a for a in answers if a.status_code == 201 and "Idempotent-Replayed" not in a.headers]
    assert len(first) == 1, [(a.status_code, a.text) for a in answers]
    for answer in answers:
        if answer.status_code == 201:
            assert answer.json() == first[0].json()
        else:
            assert _problem(answer, 409)["reason"] == "idempotency_key_in_progress"
    with race_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM bookings WHERE slot_id = :s"), {"s": slot}).scalar_one() == 1


def test_the_key_is_documented_on_every_creating_operation(settings: Settings) -> None:
    spec = create_app(settings).openapi()
    keyed = {(path, method) for path, methods in spec["paths"].items() for method, op in methods.items()
             if any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in op.get("parameters", []))}
    assert {("/bookings", "post"), ("/bookings/emergency", "post"), ("/waitlist/children", "post"),
            ("/waitlist/entries", "post"), ("/vacancy/centres/{code}/reports", "post"),
            ("/auth/signup", "post")} <= keyed
    for path, method in keyed:
        responses = spec["paths"][path][method]["responses"]
        assert {"409", "422"} <= set(responses) and ({"201", "202"} & set(responses)), (path, method)
        assert "application/problem+json" in responses["409"]["content"]
