"""Inspections over HTTP and in the portal's pages, on the real Seoul data: the 구's officer reads the risk list,
plans a visit, records it with a violation (a finding), orders a correction; the centre's staff answer; the officer
closes the finding and the inspection. Other 구, other centres and other roles get 403; a transition the table
refuses is a 409; all refusals are RFC 9457 problem bodies."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text

from geo.auth.accounts import create_user
from geo.designations.register import today_in_seoul
from geo.inspections.checklist import checklist
from geo.settings import Settings
from tests.accounts_util import PASSWORD, Cast, make_cast
from tests.dbutil import client_on
from tests.problem_util import problem


@pytest.fixture()
def client(settings: Settings, seoul_engine: Any, connection: Connection) -> Iterator[TestClient]:
    with client_on(settings, connection) as http:
        yield http


@pytest.fixture()
def cast(connection: Connection, settings: Settings) -> Cast:
    return make_cast(connection, settings)


def test_checklist_is_public_with_legal_basis(client: TestClient) -> None:
    body = client.get("/inspections/checklist").json()
    assert [i["code"] for i in body["items"]] == list(checklist().codes)
    assert {"capacity", "teacher_ratio", "cctv", "meals_hygiene", "safety_check", "vehicles", "subsidies"} == {
        i["code"] for i in body["items"]}
    assert all("영유아보육법" in i["basis"] and i["ko"] and i["en"] for i in body["items"])
    assert len(body["sha256"]) == 64


def test_officer_to_staff_to_closed(client: TestClient, cast: Cast) -> None:
    h, own, other = cast.headers, cast.own, cast.other
    district = own.district_code
    risk = client.get("/inspections/risk", params={"district": district}, headers=h["officer"])
    assert risk.status_code == 200, risk.text
    first = risk.json()["centres"][0]
    assert first["rank"] == 1 and first["score"] == sum(c["points"] for c in first["components"])
    today = today_in_seoul()
    planned = client.post(f"/centres/{own.code}/inspections", headers=h["officer"],
                          json={"planned_for": today.isoformat(), "reason": "민원 2건"})
    assert planned.status_code == 201, planned.text
    iid = planned.json()["id"]
    assert planned.json()["status"] == "planned"
    # Staff read it but may not record the visit; a finding cannot be added before the visit (409).
    assert client.get(f"/inspections/{iid}", headers=h["staff"]).status_code == 200
    problem(client.post(f"/inspections/{iid}/visit", headers=h["staff"], json={"results": {}}), 403)
    problem(client.post(f"/inspections/{iid}/findings", headers=h["officer"],
                        json={"item": "cctv", "description": "x"}), 409)
    # A violation without a note is refused (422, nothing written); with a note it opens a finding.
    problem(client.post(f"/inspections/{iid}/visit", headers=h["officer"],
                        json={"results": {"cctv": {"result": "violation"}}}), 422)
    visited = client.post(f"/inspections/{iid}/visit", headers=h["officer"],
                          json={"results": {"cctv": {"result": "violation", "note": "보육실 CCTV 영상 30일만 보관"},
                                            "capacity": {"result": "compliant"}}})
    assert visited.status_code == 200, visited.text
    finding = visited.json()["findings"][0]
    fid = finding["id"]
    assert finding["status"] == "open" and finding["item_code"] == "cctv"
    problem(client.post(f"/inspections/{iid}/visit", headers=h["officer"], json={"results": {}}), 409)
    problem(client.post(f"/findings/{fid}/answer", headers=h["staff"], json={"answer_text": "이미 고침"}), 409)
    ordered = client.post(f"/findings/{fid}/order", headers=h["officer"],
                          json={"order_text": "60일 보관으로 설정 후 보고", "deadline": (today + timedelta(days=14)).isoformat()})
    assert ordered.json()["status"] == "ordered"
    body = problem(client.post(f"/inspections/{iid}/close", headers=h["officer"]), 409)
    assert "not closed" in body["detail"]
    # Only the centre's own staff answer; the officer does not.
    problem(client.post(f"/findings/{fid}/answer", headers=h["officer"], json={"answer_text": "x"}), 403)
    answered = client.post(f"/findings/{fid}/answer", headers=h["staff"],
                           json={"answer_text": "설정 변경 완료\n설정 화면 사진 첨부"})
    assert answered.status_code == 200 and answered.json()["status"] == "answered"
    assert client.get(f"/centres/{own.code}/findings", headers=h["staff"]).json()["findings"][0]["id"] == fid
    closed = client.post(f"/findings/{fid}/close", headers=h["officer"], json={"note": "확인"})
    assert closed.json()["status"] == "closed"
    done = client.post(f"/inspections/{iid}/close", headers=h["officer"])
    assert done.status_code == 200 and done.json()["status"] == "closed"
    problem(client.post(f"/inspections/{iid}/cancel", headers=h["officer"]), 409)
    # Another 구's centre, another 구's list, and other roles.
    problem(client.post(f"/centres/{other.code}/inspections", headers=h["officer"],
                        json={"planned_for": today.isoformat()}), 403)
    problem(client.get("/inspections/risk", params={"district": other.district_code}, headers=h["officer"]), 403)
    problem(client.get("/inspections/risk", params={"district": district}, headers=h["parent"]), 403)
    problem(client.get("/inspections/risk", params={"district": district}, headers=h["staff"]), 403)
    problem(client.get("/inspections/risk", params={"district": district}), 401)
    problem(client.get(f"/centres/{other.code}/findings", headers=h["staff"]), 403)
    problem(client.get("/inspections/999999", headers=h["officer"]), 404)


def test_complaints_raise_the_centre_and_are_the_officers(client: TestClient, cast: Cast) -> None:
    h, own = cast.headers, cast.own
    made = client.post(f"/centres/{own.code}/complaints", headers=h["officer"],
                       json={"received_at": "2026-12-01T10:00:00+09:00", "summary": "차량에 보호자 미동승",
                             "source": "phone"})
    assert made.status_code == 201, made.text
    problem(client.post(f"/centres/{own.code}/complaints", headers=h["staff"],
                        json={"received_at": "2026-12-01T10:00:00+09:00", "summary": "x", "source": "phone"}), 403)
    entry = next(c for c in client.get("/inspections/risk", params={"district": own.district_code},
                                       headers=h["officer"]).json()["centres"] if c["code"] == own.code)
    assert {"code": "complaints", "points": 10, "facts": {"count": 1, "days": 365}} in entry["components"]


def _csrf(html: str) -> str:
    field = BeautifulSoup(html, "html.parser").find("input", attrs={"name": "csrf_token"})
    assert field is not None
    return str(field["value"])


def test_pages_officer_and_staff(settings: Settings, connection: Connection, seoul_engine: Any) -> None:
    cast = make_cast(connection, settings)
    own = cast.own
    officer = client_on(settings, connection)
    officer.headers["Accept-Language"] = "en"
    create_user(connection, email="page-officer@example.go.kr", password=PASSWORD, role="district_officer",
                district_code=own.district_code)
    officer.post("/portal/login", data={"email": "page-officer@example.go.kr", "password": PASSWORD})
    listing = officer.get("/portal/officer/inspections")
    assert listing.status_code == 200 and "Centres by risk" in listing.text and "Never inspected" in listing.text
    csrf = _csrf(listing.text)
    # A day in the past is refused next to its field.
    past = (today_in_seoul() - timedelta(days=1)).isoformat()
    refused = officer.post("/portal/officer/inspections", data={"csrf_token": csrf, "code": own.code,
                                                                 "planned_for": past})
    assert refused.status_code == 422
    soup = BeautifulSoup(refused.text, "html.parser")
    assert soup.find(id=f"planned_for_{own.code}")["aria-invalid"] == "true"
    planned = officer.post("/portal/officer/inspections", data={"csrf_token": csrf, "code": own.code,
                                                                 "planned_for": today_in_seoul().isoformat()},
                           follow_redirects=False)
    assert planned.status_code == 303
    page_url = planned.headers["location"]
    iid = int(page_url.rsplit("/", 1)[1])
    # A violation without a note: refused at the note.
    form = {"csrf_token": csrf, **{f"result_{c}": "compliant" for c in checklist().codes}}
    bad = officer.post(f"{page_url}/visit", data={**form, "result_vehicles": "violation"})
    assert bad.status_code == 422
    assert BeautifulSoup(bad.text, "html.parser").find(id="note_vehicles")["aria-invalid"] == "true"
    ok = officer.post(f"{page_url}/visit", data={**form, "result_vehicles": "violation",
                                                 "note_vehicles": "동승보호자 없이 운행"}, follow_redirects=False)
    assert ok.status_code == 303
    fid = connection.execute(text("SELECT id FROM findings WHERE inspection_id = :i"), {"i": iid}).scalar_one()
    deadline = (today_in_seoul() + timedelta(days=10)).isoformat()
    assert officer.post(f"/portal/officer/findings/{fid}/order",
                        data={"csrf_token": csrf, "order_text": "동승보호자 배치", "deadline": deadline},
                        follow_redirects=False).status_code == 303
    # The staff see the order and answer it.
    staff = client_on(settings, connection)
    staff.headers["Accept-Language"] = "ko"
    create_user(connection, email="page-staff@example.kr", password=PASSWORD, role="centre_staff",
                facility_codes=[own.code])
    staff.post("/portal/login", data={"email": "page-staff@example.kr", "password": PASSWORD})
    mine = staff.get(f"/portal/staff/centres/{own.code}/inspections")
    assert mine.status_code == 200 and "동승보호자 배치" in mine.text and "시정명령" in mine.text
    empty = staff.post(f"/portal/staff/centres/{own.code}/findings/{fid}/answer",
                       data={"csrf_token": _csrf(mine.text), "answer_text": " "})
    assert empty.status_code == 422
    answered = staff.post(f"/portal/staff/centres/{own.code}/findings/{fid}/answer",
                          data={"csrf_token": _csrf(mine.text), "answer_text": "보호자 2명 배치, 운행일지 첨부"},
                          follow_redirects=False)
    assert answered.status_code == 303
    assert staff.get("/portal/officer/inspections").status_code == 403
    # The officer closes the finding, then the inspection.
    assert officer.post(f"/portal/officer/findings/{fid}/close", data={"csrf_token": csrf},
                        follow_redirects=False).status_code == 303
    assert officer.post(f"{page_url}/close", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    assert connection.execute(text("SELECT status FROM inspections WHERE id = :i"), {"i": iid}).scalar_one() == "closed"
    # Closing again: refused in the page, 409.
    again = officer.post(f"{page_url}/close", data={"csrf_token": csrf})
    assert again.status_code == 409 and "not possible in the current state" in again.text
    # Without the CSRF token nothing is written.
    assert officer.post(f"{page_url}/cancel", data={}).status_code == 403
