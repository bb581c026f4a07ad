"""Sanctions and disclosures over HTTP on hand-made centres (a rolled-back transaction): the officer's page records
a sanction against a centre of their 구 and publishes it (another 구's centre is refused), the public centre page
and the facility detail show the violation while it is published and not after (the app's clock moved by the
test-only DOLBOM_CLOCK_OFFSET_DAYS); a withdrawal removes it; the disclosures collection (OGC API Features) lists
only centres with a published violation and its tiles' ETag changes when one starts or is withdrawn; evaluation
grades show on the detail and the centre page and filter the search and the facilities layer."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text

from api.app import create_app
from geo.auth.accounts import create_user
from geo.disclosure.rules import seoul_day
from geo.settings import Settings, SettingsError
from tests.dbutil import client_on
from tests.search_data import DISTRICT_CODE, insert_search_fixture

PASSWORD = "correct horse battery staple"


def _csrf(html: str) -> str:
    field = BeautifulSoup(html, "html.parser").find("input", attrs={"name": "csrf_token"})
    assert field is not None
    return str(field["value"])


def _codes(conn: Connection) -> dict[str, str]:
    ids = insert_search_fixture(conn)
    return {k: conn.execute(text("SELECT code FROM facilities WHERE id = :i"), {"i": i}).scalar_one()
            for k, i in ids.items()}


def _officer_client(settings: Settings, conn: Connection, district: str, lang: str = "en"):  # type: ignore[no-untyped-def]
    email = f"officer-{district}-{lang}@example.go.kr"
    create_user(conn, email=email, password=PASSWORD, role="district_officer", district_code=district)
    client = client_on(settings, conn)
    client.headers["Accept-Language"] = lang
    assert client.post("/portal/login", data={"email": email, "password": PASSWORD}).status_code in (200, 303)
    return client


def _sanction_form(csrf: str, code: str, **kw: str) -> dict[str, str]:
    today = seoul_day(Settings().now())
    return {"csrf_token": csrf, "code": code, "kind": "subsidy_recovery", "violation": "아동 허위 등록 보조금 부정수급",
            "disposition": "보조금 반환명령 5,400,000원", "legal_basis": "영유아보육법 제40조",
            "authority": "가상구청", "decided_at": (today - timedelta(days=40)).isoformat(),
            "final_at": (today - timedelta(days=5)).isoformat(), "representative_name": "이대표",
            "director_name": "이원장", "amount_won": "5,400,000", "finding_ref": "INS-2026-0042", **kw}


def test_officer_publishes_and_the_public_sees_it_until_it_ends(settings: Settings, connection: Connection) -> None:
    codes = _codes(connection)
    code = codes["A"]
    officer = _officer_client(settings, connection, DISTRICT_CODE)
    listing = officer.get("/portal/officer/sanctions")
    assert listing.status_code == 200 and "No sanction recorded." in listing.text
    csrf = _csrf(listing.text)
    facility_id = connection.execute(text("SELECT id FROM facilities WHERE code = :c"), {"c": code}).scalar_one()
    public = client_on(settings, connection).__enter__()

    # A bad date comes back inline, nothing written.
    bad = officer.post("/portal/officer/sanctions", data=_sanction_form(csrf, code, decided_at="어제"))
    assert bad.status_code == 422
    assert BeautifulSoup(bad.text, "html.parser").find(id="decided_at")["aria-invalid"] == "true"
    assert connection.execute(text("SELECT count(*) FROM sanctions")).scalar_one() == 0
    # The officer of another 구: refused.
    stranger = _officer_client(settings, connection, "99902")
    refused = stranger.post("/portal/officer/sanctions",
                            data=_sanction_form(_csrf(stranger.get("/portal/officer/sanctions").text), code))
    assert refused.status_code == 422 and "You may not do this." in refused.text

    done = officer.post("/portal/officer/sanctions", data=_sanction_form(csrf, code, publish="1"),
                        follow_redirects=False)
    assert done.status_code == 303 and "published=" in done.headers["location"]
    listing = officer.get(done.headers["location"])
    assert "The sanction is recorded and its violation is published." in listing.text
    period = connection.execute(text("SELECT published_from, published_until FROM disclosures")).one()
    assert period.published_from == seoul_day(Settings().now())

    page = public.get(f"/portal/centres/{code}", headers={"Accept-Language": "ko"})
    section = BeautifulSoup(page.text, "html.parser").find(id="disclosures")
    assert section is not None and "아동 허위 등록" in section.get_text() and "보조금 반환명령" in section.get_text()
    assert period.published_until.isoformat() in section.get_text()
    detail = public.get(f"/facilities/{facility_id}").json()
    assert [d["violation"] for d in detail["disclosures"]] == ["아동 허위 등록 보조금 부정수급"]
    assert detail["disclosures"][0]["published_until"] == period.published_until.isoformat()

    # The same data with the clock after the period: nothing shown.
    later = settings.updated(DOLBOM_CLOCK_OFFSET_DAYS=str((period.published_until - date.today()).days + 2))
    after = client_on(later, connection).__enter__()
    assert after.get(f"/facilities/{facility_id}").json()["disclosures"] == []
    assert BeautifulSoup(after.get(f"/portal/centres/{code}").text, "html.parser").find(id="disclosures") is None

    # Withdrawn: gone from the detail.
    sanction_id = connection.execute(text("SELECT id FROM sanctions")).scalar_one()
    gone = officer.post(f"/portal/officer/sanctions/{sanction_id}/withdraw",
                        data={"csrf_token": csrf, "reason": "행정심판 인용"}, follow_redirects=False)
    assert gone.status_code == 303
    assert public.get(f"/facilities/{facility_id}").json()["disclosures"] == []
    assert "withdrawn" in officer.get("/portal/officer/sanctions").text


def test_evaluation_grades_show_and_filter(settings: Settings, connection: Connection, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from geo.disclosure.files import import_evaluations

    codes = _codes(connection)
    path = tmp_path / "grades.csv"
    path.write_text(f"어린이집코드,평가등급,평가일\n{codes['A']},A,2025-06-30\n{codes['A']},B,2022-01-10\n"
                    f"{codes['B']},C,2024-03-01\n", encoding="utf-8")
    import_evaluations(connection, path)
    client = client_on(settings, connection).__enter__()
    facility_id = connection.execute(text("SELECT id FROM facilities WHERE code = :c"), {"c": codes["A"]}).scalar_one()
    detail = client.get(f"/facilities/{facility_id}").json()
    assert (detail["evaluation_grade"], detail["evaluation_date"]) == ("A", "2025-06-30")
    assert [e["grade"] for e in detail["evaluations"]] == ["A", "B"]
    page = client.get(f"/portal/centres/{codes['A']}", headers={"Accept-Language": "en"})
    assert "Grade A (2025-06-30)" in BeautifulSoup(page.text, "html.parser").find(id="evaluation").get_text()
    found = client.get("/facilities/area", params={"district": DISTRICT_CODE, "evaluation_grade": "a,C",
                                                   "status": "all", "limit": 100}).json()
    assert sorted(f["properties"]["code"] for f in found["features"]) == sorted([codes["A"], codes["B"]])
    assert {f["properties"]["evaluation_grade"] for f in found["features"]} == {"A", "C"}
    bad = client.get("/facilities/area", params={"district": DISTRICT_CODE, "evaluation_grade": "E"})
    assert bad.status_code == 422 and bad.json()["param"] == "evaluation_grade"


def test_the_clock_offset_is_refused_in_production() -> None:
    with pytest.raises((SettingsError, ValueError), match="DOLBOM_CLOCK_OFFSET_DAYS"):
        Settings(DOLBOM_ENV="production", DOLBOM_CLOCK_OFFSET_DAYS="3", DOLBOM_IDENTITY_PROVIDER="oidc",
                 DOLBOM_CI_HASH_KEY="k" * 40, DOLBOM_IDEMPOTENCY_HASH_KEY="i" * 40, DOLBOM_LOG_KEY_FILE="/tmp/x")


def test_the_collection_and_its_tiles_follow_publication_and_withdrawal(make_database: Any, settings: Settings,
                                                                        tmp_path: Path) -> None:
    """Committed data (the OGC routes read through the app's own pool): the disclosures collection lists the
    centre while its violation is published, a tile's ETag changes when it starts and when it is withdrawn, and
    the facilities collection filters on the evaluation grade."""
    from geo.disclosure import records
    from geo.disclosure.files import import_evaluations

    engine = make_database("disclosure_api")
    with engine.begin() as conn:
        codes = _codes(conn)
        path = tmp_path / "grades.csv"
        path.write_text(f"어린이집코드,평가등급,평가일\n{codes['A']},A,2025-06-30\n", encoding="utf-8")
        import_evaluations(conn, path)
        lon, lat = conn.execute(text("SELECT ST_X(geom_4326), ST_Y(geom_4326) FROM facilities WHERE code = :c"),
                                {"c": codes["A"]}).one()
    z = 14
    x = int((lon + 180) / 360 * 2**z)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2**z)
    tile = f"/ogc/collections/disclosures/tiles/WebMercatorQuad/{z}/{y}/{x}"
    items = "/ogc/collections/disclosures/items"
    with TestClient(create_app(settings.updated(DATABASE_URL=engine.url.render_as_string(hide_password=False))),
                    base_url="http://localhost") as client:
        assert client.get(items).json()["features"] == []
        empty = client.get(tile)
        assert empty.status_code in (200, 204)
        now = Settings().now()
        with engine.begin() as conn:
            made = records.record_sanction(conn, facility_code=codes["A"], kind="closure", legal_basis="제45조",
                                           violation="아동학대", disposition="어린이집 폐쇄", authority="가상구청",
                                           decided_at=date(2026, 1, 5), final_at=date(2026, 2, 5),
                                           actor_user_id=None)
            disclosure = records.publish(conn, made["id"], now=now, actor_user_id=None)
        features = _eventually(lambda: client.get(items).json()["features"], lambda f: len(f) == 1)
        assert features[0]["properties"]["code"] == codes["A"]
        assert features[0]["properties"]["published_until"] == disclosure["published_until"].isoformat()
        shown = _eventually(lambda: client.get(tile), lambda r: r.headers.get("etag") != empty.headers.get("etag"))
        assert shown.status_code == 200
        decoded = mapbox_vector_tile.decode(shown.content)
        assert decoded["disclosures"]["features"][0]["properties"]["code"] == codes["A"]
        with engine.begin() as conn:
            records.withdraw(conn, disclosure["id"], reason="취소", now=now, actor_user_id=None)
        assert _eventually(lambda: client.get(items).json()["features"], lambda f: f == []) == []
        _eventually(lambda: client.get(tile), lambda r: r.headers.get("etag") != shown.headers.get("etag"))
        graded = client.get("/ogc/collections/facilities/items",
                            params={"filter": "evaluation_grade = 'A'", "filter-lang": "cql2-text"}).json()
        assert [f["properties"]["code"] for f in graded["features"]] == [codes["A"]]


def _eventually(get: Callable[[], Any], ok: Callable[[Any], bool], seconds: float = 15.0) -> Any:
    """``get()`` once ``ok`` holds (tile versions follow the change feed within moments)."""
    deadline = time.monotonic() + seconds
    while True:
        value = get()
        if ok(value) or time.monotonic() > deadline:
            assert ok(value), value
            return value
        time.sleep(0.2)
