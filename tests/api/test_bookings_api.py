"""Booking over HTTP: every role rule (403/401 as problem+json), publishing patterns, the public slot search as
GeoJSON, booking into the waiting list, staff confirmation and listing, emergency requests."""

from __future__ import annotations

from datetime import date, timedelta

import holidays
from sqlalchemy import Connection, text

from geo.settings import Settings
from tests.booking_util import ORIGIN_LAT, ORIGIN_LON, bearer, make_centre, make_slot, make_user
from tests.dbutil import client_on
from tests.problem_util import problem as _problem


def _cast(conn: Connection, settings: Settings) -> tuple[dict[str, int], dict[str, dict[str, str]]]:
    own = make_centre(conn, "T-API-1", lon=ORIGIN_LON + 0.003, lat=ORIGIN_LAT)
    other = make_centre(conn, "T-API-2", lon=ORIGIN_LON - 0.003, lat=ORIGIN_LAT)
    ids = {
        "own": own, "other": other,
        "parent": make_user(conn, "parent@example.kr", "parent"),
        "parent2": make_user(conn, "parent2@example.kr", "parent"),
        "staff": make_user(conn, "staff@example.kr", "centre_staff", (own,)),
        "staff_other": make_user(conn, "staff2@example.kr", "centre_staff", (other,)),
        "admin": make_user(conn, "admin@example.kr", "city_admin"),
    }
    headers = {k: bearer(conn, settings, v) for k, v in ids.items() if k not in ("own", "other")}
    return ids, headers


def test_role_rules(settings: Settings, connection: Connection) -> None:
    ids, h = _cast(connection, settings)
    client = client_on(settings, connection)
    slot_body = {"service": "holiday", "date": "2026-12-25", "start": "08:00", "end": "20:00",
                 "places_by_age": {"2": 1}}
    _problem(client.post("/bookings/centres/T-API-1/slots", json=slot_body), 401)
    for who in ("parent", "staff_other"):
        _problem(client.post("/bookings/centres/T-API-1/slots", json=slot_body, headers=h[who]), 403)
        _problem(client.get("/bookings/centres/T-API-1", headers=h[who]), 403)
    assert client.post("/bookings/centres/T-API-1/slots", json=slot_body, headers=h["staff"]).status_code == 201
    slot = make_slot(connection, ids["own"], places_by_age={"2": 2})
    booking = {"slot_id": slot, "child_age": 2, "phone": "010-1234-5678"}
    # Parents book, not centre staff.
    for who in ("staff", "staff_other"):
        _problem(client.post("/bookings", json=booking, headers=h[who]), 403)
        _problem(client.get("/bookings/mine", headers=h[who]), 403)
    _problem(client.post("/bookings", json=booking), 401)
    made = client.post("/bookings", json=booking, headers=h["parent"])
    assert made.status_code == 201, made.text
    booking_id = made.json()["id"]
    # Confirm: staff of that centre and admins only.
    for who in ("parent", "staff_other"):
        _problem(client.post(f"/bookings/{booking_id}/confirm", headers=h[who]), 403)
    # Cancel: the parent who booked, or the centre; not another parent or another centre.
    _problem(client.post(f"/bookings/{booking_id}/cancel", headers=h["parent2"]), 403)
    _problem(client.post(f"/bookings/{booking_id}/cancel", headers=h["staff_other"]), 403)
    assert client.post(f"/bookings/{booking_id}/confirm", headers=h["staff"]).json()["status"] == "confirmed"
    listed = client.get("/bookings/centres/T-API-1", headers=h["staff"]).json()
    assert [b["id"] for b in listed] == [booking_id] and listed[0]["status"] == "confirmed"
    assert client.get("/bookings/centres/T-API-1", headers=h["admin"]).status_code == 200
    # Emergency: parents ask, staff of a nearby centre accept; nobody else.
    emergency = {"lat": ORIGIN_LAT, "lon": ORIGIN_LON, "child_age": 2, "phone": "010-1234-5678", "radius_m": 1000}
    _problem(client.post("/bookings/emergency", json=emergency, headers=h["staff"]), 403)
    request_id = client.post("/bookings/emergency", json=emergency, headers=h["parent"]).json()["id"]
    _problem(client.post(f"/bookings/emergency/{request_id}/accept", json={"centre": "T-API-1"},
                         headers=h["staff_other"]), 403)
    _problem(client.post(f"/bookings/emergency/{request_id}/accept", json={"centre": "T-API-1"},
                         headers=h["parent"]), 403)
    assert client.post(f"/bookings/emergency/{request_id}/accept", json={"centre": "T-API-1"},
                       headers=h["staff"]).json()["status"] == "accepted"
    assert _problem(client.post(f"/bookings/emergency/{request_id}/accept", json={"centre": "T-API-2"},
                                headers=h["staff_other"]), 409)["reason"] == "taken"
    # Every change is in the audit trail with its actor.
    actions = connection.execute(text("SELECT action, actor_user_id FROM audit_log WHERE action LIKE 'booking.%' "
                                      "OR action LIKE 'emergency.%' ORDER BY id")).all()
    assert [(a.action, a.actor_user_id) for a in actions] == [
        ("booking.create", ids["parent"]), ("booking.confirm", ids["staff"]),
        ("emergency.create", ids["parent"]), ("emergency.accept", ids["staff"])]


def test_pattern_search_waitlist_flow(settings: Settings, connection: Connection) -> None:
    ids, h = _cast(connection, settings)
    client = client_on(settings, connection)
    today = date.today()
    start, end = today + timedelta(days=1), today + timedelta(days=90)
    resp = client.post("/bookings/centres/T-API-1/patterns", headers=h["staff"], json={
        "service": "holiday", "on_holidays": True, "start": "08:00", "end": "20:00", "places_by_age": {"2": 1},
        "valid_from": start.isoformat(), "valid_until": end.isoformat()})
    assert resp.status_code == 201, resp.text
    kr = holidays.country_holidays("KR", years=range(start.year, end.year + 1))
    expected = sorted(d for d in kr if start <= d <= end)
    assert resp.json()["dates"] == [d.isoformat() for d in expected]
    sunday = client.post("/bookings/centres/T-API-1/patterns", headers=h["staff"], json={
        "service": "holiday", "weekday": 6, "start": "08:00", "end": "20:00", "places_by_age": {"2": 1},
        "valid_from": start.isoformat(), "valid_until": end.isoformat()}).json()
    first_sunday = date.fromisoformat(sunday["dates"][0])
    # Bad input: 422 problems naming the field.
    assert _problem(client.post("/bookings/centres/T-API-1/patterns", headers=h["staff"], json={
        "service": "hourly", "weekday": 6, "start": "08:00", "end": "20:00", "places_by_age": {"2": 1},
        "valid_from": start.isoformat(), "valid_until": end.isoformat()}), 422)["param"] == "service"
    _problem(client.post("/bookings/centres/NOPE/slots", headers=h["staff"], json={
        "service": "holiday", "date": "2026-12-25", "start": "08:00", "end": "20:00", "places_by_age": {"2": 1}}), 404)
    # The public search: GeoJSON at the centre's point, for the day and the age.
    params = {"lat": ORIGIN_LAT, "lon": ORIGIN_LON, "age": 2, "radius_m": 1000, "on": first_sunday.isoformat()}
    found = client.get("/bookings/slots", params=params).json()
    assert found["type"] == "FeatureCollection"
    feature = next(f for f in found["features"] if f["properties"]["facility_code"] == "T-API-1")
    assert feature["geometry"]["coordinates"] == [ORIGIN_LON + 0.003, ORIGIN_LAT]
    assert feature["properties"]["free_places"] == 1 and feature["properties"]["starts_at"].startswith(
        first_sunday.isoformat())
    assert client.get("/bookings/slots", params={**params, "age": 3}).json()["features"] == []
    slot_id = feature["properties"]["slot_id"]
    assert client.post("/bookings", headers=h["parent"], json={
        "slot_id": slot_id, "child_age": 2, "phone": "010-1111-2222"}).json()["status"] == "booked"
    assert _problem(client.post("/bookings", headers=h["parent2"], json={
        "slot_id": slot_id, "child_age": 2, "phone": "010-3333-4444"}), 409)["reason"] == "full"
    waiting = client.post("/bookings", headers=h["parent2"], json={
        "slot_id": slot_id, "child_age": 2, "phone": "010-3333-4444", "join_waitlist": True, "lang": "en"}).json()
    assert waiting["status"] == "waiting" and waiting["waiting_position"] == 1
    # Full slots drop out of the search unless asked for (to join their waiting list).
    assert all(f["properties"]["slot_id"] != slot_id
               for f in client.get("/bookings/slots", params=params).json()["features"])
    full = client.get("/bookings/slots", params={**params, "include_full": "true"}).json()["features"]
    row = next(f["properties"] for f in full if f["properties"]["slot_id"] == slot_id)
    assert (row["free_places"], row["waiting"]) == (0, 1)
    mine = client.get("/bookings/mine", headers=h["parent2"]).json()
    assert [(b["id"], b["status"], b["waiting_position"]) for b in mine] == [(waiting["id"], "waiting", 1)]
    _problem(client.get("/bookings/slots", params={**params, "radius_m": 1e9}), 422)
    _problem(client.get("/bookings/slots", params={**params, "age": 9}), 422)
    _problem(client.get("/bookings/slots", params={**params, "walk_minutes": 10}), 422)
