"""``GET /facilities/{id}``: one centre in full for the map's detail panel, against the OA-20300 row it came from
(read here with the csv module) and the database row; unknown ids are 404 problem+json, bad ids 422."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text

from geo.domain import CHILDREN_PER_CLASS
from geo.settings import Settings
from tests.dbutil import client_on, rolled_back

PROBLEM = "application/problem+json"


@pytest.fixture()
def seoul_client(settings: Settings, seoul_engine: Engine) -> Iterator[tuple[TestClient, Connection]]:
    with rolled_back(seoul_engine) as conn, client_on(settings, conn) as client:
        yield client, conn


def _source_rows(shared_data: Path) -> dict[str, dict[str, str]]:
    path = shared_data / "childcare" / "seoul_childcare_OA-20300_20260721_full.csv"
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return {row["어린이집코드"]: row for row in csv.DictReader(fh)}


def test_detail_matches_the_source_row(seoul_client, shared_data: Path) -> None:
    client, conn = seoul_client
    source = _source_rows(shared_data)
    ids = conn.execute(text("SELECT id FROM facilities WHERE status = 'active' AND staff_count > 0 "
                            "ORDER BY code LIMIT 5")).scalars().all()
    assert len(ids) == 5
    for facility_id in ids:
        response = client.get(f"/facilities/{facility_id}")
        assert response.status_code == 200
        body = response.json()
        row = source[body["code"]]
        assert body["name"] == row["어린이집명"].strip()
        assert body["staff_by_role"]["total"] == int(row["교직원현황-총계"])
        assert body["cctv_count"] == int(row["CCTV총설치수"] or 0)
        assert body["classes_by_age"]["2"] == int(row["반수-만2세"])
        assert body["enrolled_by_age"]["3"] == int(row["아동수-만3세"])
        assert body["places_by_age"]["1"] == int(row["반수-만1세"]) * CHILDREN_PER_CLASS["1"]
        assert body["vacancy_reported_at"] == "2026-07-21"
        assert body["opening_hours"]["mon"]
        assert 37 < body["lat"] < 38 and 126 < body["lon"] < 128


def test_unknown_and_bad_ids(seoul_client) -> None:
    client, conn = seoul_client
    missing = conn.execute(text("SELECT coalesce(max(id), 0) + 1 FROM facilities")).scalar_one()
    response = client.get(f"/facilities/{missing}")
    assert response.status_code == 404 and response.headers["content-type"].startswith(PROBLEM)
    assert str(missing) in response.json()["detail"]
    for bad in ("0", "-3", "abc", str(2**40)):
        response = client.get(f"/facilities/{bad}")
        assert response.status_code == 422 and response.headers["content-type"].startswith(PROBLEM), bad
    # The search routes are not shadowed by the id route.
    assert client.get("/facilities/radius?lat=37.5665&lon=126.978&radius_m=300").status_code == 200
