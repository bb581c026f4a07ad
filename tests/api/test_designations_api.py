"""The designations register over HTTP on the real data: the 구's officer designates 다문화 to a centre of their
구 (not of another 구), the public register and the service filter show it at once, the officer ends it; staff
declare their languages and families search by language; bad input is a problem response."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text

from geo.designations.register import today_in_seoul
from geo.settings import Settings
from tests.booking_util import bearer, make_user
from tests.dbutil import client_on
from tests.problem_util import problem


@pytest.fixture()
def client(settings: Settings, seoul_engine: Any, connection: Connection) -> Iterator[TestClient]:
    with client_on(settings, connection) as http:
        yield http


def centre_in(conn: Connection, district: str) -> Any:
    return conn.execute(text("SELECT id, code FROM facilities WHERE district_code = :d AND status = 'active' "
                             "ORDER BY code LIMIT 1"), {"d": district}).one()


def officer_of(conn: Connection, settings: Settings, district: str) -> dict[str, str]:
    user = conn.execute(text("INSERT INTO users (email, password_hash, role, district_code) "
                             "VALUES (:e, 'x', 'district_officer', :d) RETURNING id"),
                        {"e": f"officer{district}@example.go.kr", "d": district}).scalar_one()
    return bearer(conn, settings, int(user))


def multicultural_codes(client: TestClient) -> set[str]:
    body = client.get("/facilities/area", params={"district": "마포구", "service": "다문화", "limit": 500}).json()
    return {f["properties"]["code"] for f in body["features"]}


def test_an_officer_designates_and_ends_a_multicultural_centre(client: TestClient, connection: Connection,
                                                              settings: Settings) -> None:
    mapo, gangnam = centre_in(connection, "11440"), centre_in(connection, "11680")
    officer = officer_of(connection, settings, "11440")
    assert multicultural_codes(client) == set()
    today = today_in_seoul()
    made = client.post(f"/centres/{mapo.code}/designations", headers=officer,
                       json={"service": "multicultural", "authority": "마포구청", "valid_from": today.isoformat(),
                             "note": "중국어·베트남어 통역 지원"})
    assert made.status_code == 201, made.text
    assert made.json()["active"] and not made.json()["in_official_data"]
    assert multicultural_codes(client) == {mapo.code}
    public = client.get("/designations", params={"district": "11440"}).json()["designations"]
    assert [d["centre"] for d in public] == [mapo.code]
    assert [d["id"] for d in client.get("/designations/conflicts").json()["designations"]] == [made.json()["id"]]
    problem(client.post(f"/centres/{gangnam.code}/designations", headers=officer,
                        json={"service": "multicultural", "authority": "마포구청",
                              "valid_from": today.isoformat()}), 403)
    problem(client.post(f"/centres/{mapo.code}/designations", headers=officer,
                        json={"service": "multicultural", "authority": "마포구청",
                              "valid_from": today.isoformat()}), 409)
    ended = client.post(f"/designations/{made.json()['id']}/end", headers=officer,
                        json={"valid_to": today.isoformat()})
    assert ended.status_code == 200 and ended.json()["valid_to"] == today.isoformat()


@pytest.mark.parametrize(("body", "status", "param"), [
    ({"service": "swimming", "authority": "마포구청", "valid_from": "2026-12-01"}, 422, "service"),
    ({"service": "holiday", "authority": " ", "valid_from": "2026-12-01"}, 422, "authority"),
    ({"service": "holiday", "authority": "마포구청", "valid_from": "2026-12-01", "valid_to": "2026-11-01"}, 422,
     "valid_to"),
    ({"service": "holiday", "authority": "마포구청", "valid_from": "not a date"}, 422, "valid_from"),
])
def test_bad_designations_are_refused(client: TestClient, connection: Connection, settings: Settings,
                                      body: dict[str, str], status: int, param: str) -> None:
    mapo = centre_in(connection, "11440")
    response = client.post(f"/centres/{mapo.code}/designations", headers=officer_of(connection, settings, "11440"),
                           json=body)
    assert param in str(problem(response, status))


def test_a_parent_may_not_designate(client: TestClient, connection: Connection, settings: Settings) -> None:
    mapo = centre_in(connection, "11440")
    parent = bearer(connection, settings, make_user(connection, "mum@example.kr", "parent"))
    problem(client.post(f"/centres/{mapo.code}/designations", headers=parent,
                        json={"service": "holiday", "authority": "나", "valid_from": date.today().isoformat()}), 403)


def test_staff_declare_languages_and_families_find_them(client: TestClient, connection: Connection,
                                                        settings: Settings) -> None:
    mapo = centre_in(connection, "11440")
    staff = bearer(connection, settings, make_user(connection, "staff@example.kr", "centre_staff", (mapo.id,)))
    declared = client.put(f"/centres/{mapo.code}/languages", headers=staff, json={"languages": ["VI", "zh"]})
    assert declared.status_code == 200 and declared.json()["languages"] == ["vi", "zh"]
    found = client.get("/facilities/area", params={"district": "마포구", "language": "vi", "limit": 500}).json()
    assert [f["properties"]["code"] for f in found["features"]] == [mapo.code]
    assert found["features"][0]["properties"]["staff_languages"] == ["vi", "zh"]
    problem(client.get("/facilities/area", params={"district": "마포구", "language": "vietnamese"}), 422)
    problem(client.put(f"/centres/{mapo.code}/languages", headers=staff, json={"languages": ["xx1"]}), 422)
    other = centre_in(connection, "11680")
    problem(client.put(f"/centres/{other.code}/languages", headers=staff, json={"languages": ["en"]}), 403)
