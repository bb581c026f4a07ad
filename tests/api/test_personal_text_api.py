"""No 주민등록번호 in any personal text field: a number shaped like one (``900101-1234567``, ``9001011234567``,
inside other text or in full-width digits) is a 422 problem naming the field, and nothing is stored."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from geo.settings import Settings
from tests.booking_util import ORIGIN_LAT, ORIGIN_LON, bearer, make_centre, make_slot, make_user
from tests.dbutil import client_on

PROBLEM = "application/problem+json"
RRNS = ["900101-1234567", "9001011234567", "김엄마 900101 2234567", "９００１０１－１２３４５６７"]


# Rows that a refused request must not have added (or changed: names and verification of every account).
STATE_SQL = """
    SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM bookings), (SELECT count(*) FROM emergency_requests),
           (SELECT count(*) FROM children), (SELECT count(*) FROM audit_log),
           (SELECT string_agg(concat_ws('|', display_name, verified_name, verified_phone, ci_hash), ',' ORDER BY id)
            FROM users)
"""


def test_an_rrn_in_any_personal_text_field_is_a_422_naming_it(settings: Settings, connection: Connection) -> None:
    centre = make_centre(connection, "T-RRN-1", lon=ORIGIN_LON + 0.002, lat=ORIGIN_LAT)
    slot = make_slot(connection, centre, places_by_age={"2": 5})
    parent = make_user(connection, "parent@example.kr", "parent")
    unverified = make_user(connection, "new@example.kr", "parent", verified=False)
    admin = make_user(connection, "admin@example.kr", "city_admin")
    h = {"parent": bearer(connection, settings, parent), "unverified": bearer(connection, settings, unverified),
         "admin": bearer(connection, settings, admin)}
    client = client_on(settings, connection)
    state = client.post("/auth/identity/start", headers=h["unverified"]).json()["state"]
    booking = {"slot_id": slot, "child_age": 2, "phone": "010-1234-5678"}
    emergency = {"lat": ORIGIN_LAT, "lon": ORIGIN_LON, "child_age": 2, "phone": "010-1234-5678", "radius_m": 1000}
    identity = {"state": state, "name": "김엄마", "birth_date": "1990-03-04", "phone": "010-1234-5678"}
    # (path, body, field, headers): every personal text field a request can carry.
    cases: list[tuple[str, dict[str, Any], str, dict[str, str]]] = [
        ("/auth/signup", {"email": "rrn@example.kr", "password": "correct horse battery"}, "display_name", {}),
        ("/admin/users", {"email": "rrn2@example.kr", "password": "correct horse battery", "role": "parent"},
         "display_name", h["admin"]),
        ("/bookings", booking, "child_name", h["parent"]),
        ("/bookings", booking, "phone", h["parent"]),
        ("/bookings/emergency", emergency, "phone", h["parent"]),
        ("/auth/identity/local", identity, "name", h["unverified"]),
        ("/auth/identity/local", identity, "phone", h["unverified"]),
        ("/waitlist/children", {"birth_date": "2025-06-01"}, "name", h["parent"]),
    ]
    before = tuple(connection.execute(text(STATE_SQL)).one())
    for path, body, field, headers in cases:
        for rrn in RRNS:
            resp = client.post(path, json={**body, field: rrn}, headers=headers)
            assert resp.status_code == 422, (path, field, rrn, resp.text)
            assert resp.headers["content-type"].startswith(PROBLEM)
            problem = resp.json()
            assert problem["param"] == field and "주민등록번호" in problem["detail"], (path, field, problem)
            assert rrn not in resp.text
    assert tuple(connection.execute(text(STATE_SQL)).one()) == before
    # The same requests with ordinary values go through (the refusals above were about the number alone).
    ordinary = {"display_name": "김엄마", "child_name": "홍길순", "name": "김엄마", "phone": "010-1234-5678"}
    assert client.post("/auth/signup", json={**cases[0][1], "display_name": ordinary["display_name"]}).status_code == 202
    assert client.post("/bookings", json={**booking, "child_name": "홍길순"}, headers=h["parent"]).status_code == 201
    assert client.post("/bookings/emergency", json=emergency, headers=h["parent"]).status_code == 201
    assert client.post("/auth/identity/local", json=identity, headers=h["unverified"]).status_code == 200
