"""Live vacancy reports and official snapshots: a figure reported after a snapshot's data date wins over that
snapshot, and the import records the conflict (both values) for the centre's staff.

The bug: after a staff report, importing the 07-21 file set the centre's figures back to the snapshot's (while
``/vacancy/centres/{code}`` still said ``last_reported_at`` today, ``stale: false``), and the detail's 여석 기준일
stayed 2026-07-21. Expectations come from the CSV files (``csv`` module), not from ``geo.ingest``.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from geo.auth.accounts import create_user, issue_token
from geo.domain import free_places_by_age
from geo.ingest.childcare import CHILD_COLUMNS, CLASS_COLUMNS, import_seoul_oa20300
from geo.ingest.report import ImportResult
from geo.search.detail import facility_detail
from geo.settings import Settings
from geo.vacancy.reports import VacancyReportIn, centre_status, submit_report
from tests.dbutil import client_on

F0701 = "seoul_childcare_OA-20300_20260701_full.csv"
F0721 = "seoul_childcare_OA-20300_20260721_full.csv"


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return {r["어린이집코드"]: r for r in csv.DictReader(fh)}


def _int(value: str | None) -> int:
    return int(float(value or 0))


def _changed_centres(old: dict, new: dict) -> list[str]:
    """Operating centres in both files whose children by class group changed, with 0-2세 classes."""
    out = []
    for code in sorted(set(old) & set(new)):
        o, n = old[code], new[code]
        if o["운영현황"] != "정상" or n["운영현황"] != "정상" or o["정원"] != n["정원"]:
            continue
        if all(o[c] == n[c] for c in CLASS_COLUMNS.values()) and any(
                o[c] != n[c] for c in CHILD_COLUMNS.values()) and _int(o[CLASS_COLUMNS["1"]]) > 0:
            out.append(code)
    return out


@pytest.fixture(scope="module")
def merged(make_database, shared_data: Path) -> tuple[Engine, dict]:
    """07-01 imported, a staff report at one centre now, another report backdated to 07-10, then 07-21."""
    engine = make_database("live_merge", snapshots=("0701",))  # 07-01 imported (a shared template's copy)
    folder = shared_data / "childcare"
    old, new = _rows(folder / F0701), _rows(folder / F0721)
    live_code, early_code = _changed_centres(old, new)[:2]
    bodies = {}
    with engine.begin() as conn:
        for code in (live_code, early_code):
            row = old[code]
            enrolled = {g: _int(row[c]) for g, c in CHILD_COLUMNS.items()}
            enrolled["1"] = max(0, enrolled["1"] - 1)  # one child left the 1세 class
            classes = {g: _int(row[c]) for g, c in CLASS_COLUMNS.items()}
            free = free_places_by_age(classes, enrolled, capacity=_int(row["정원"]), enrolled=sum(enrolled.values()))
            body = VacancyReportIn(enrolled_by_age=enrolled, free_by_age={a: free[a] for a in "012345"})
            submit_report(conn, facility_code=code, report=body, author_user_id=None)
            bodies[code] = (enrolled, {a: free[a] for a in "012345"})
        # The second report was made on 07-10, before the 07-21 snapshot's data date: the snapshot wins there.
        conn.execute(text("UPDATE vacancy_reports SET reported_at = '2026-07-10 09:00+09' WHERE facility_id = "
                          "(SELECT id FROM facilities WHERE code = :c)"), {"c": early_code})
    result = import_seoul_oa20300(engine, folder / F0721)
    return engine, {"live": live_code, "early": early_code, "bodies": bodies, "new": new, "result": result}


def test_a_newer_live_report_is_not_overwritten_by_an_older_snapshot(merged) -> None:
    engine, ctx = merged
    code = ctx["live"]
    enrolled, free = ctx["bodies"][code]
    snapshot = ctx["new"][code]
    with engine.connect() as conn:
        f = conn.execute(text("SELECT id, enrolled, enrolled_by_age, free_by_age, capacity, data_date "
                              "FROM facilities WHERE code = :c"), {"c": code}).one()
        assert f.enrolled_by_age == enrolled
        assert f.enrolled == sum(enrolled.values()) != _int(snapshot["현원"])
        assert {a: f.free_by_age[a] for a in "012345"} == free
        assert f.free_by_age["total"] == max(0, _int(snapshot["정원"]) - sum(enrolled.values()))
        # Everything the report does not give follows the snapshot.
        assert f.capacity == _int(snapshot["정원"]) and str(f.data_date) == "2026-07-21"
        status = centre_status(conn, code, stale_after_days=7)
        assert status["stale"] is False and status["enrolled"] == sum(enrolled.values())
        # 여석 기준일 is the date of the figures shown: the report's, not the snapshot's.
        detail = facility_detail(conn, f.id)
        reported = conn.execute(text("SELECT max(reported_at) FROM vacancy_reports WHERE facility_id = :f"),
                                {"f": f.id}).scalar_one()
        assert detail["vacancy_reported_at"] == reported.isoformat()
        conflicts = conn.execute(text("""
            SELECT field, snapshot_value, live_value, snapshot_date FROM vacancy_conflicts
            WHERE facility_id = :f ORDER BY field"""), {"f": f.id}).all()
    by_field = {c.field: c for c in conflicts}
    assert by_field["enrolled"].snapshot_value == _int(snapshot["현원"])
    assert by_field["enrolled"].live_value == sum(enrolled.values())
    assert by_field["enrolled_by_age"].snapshot_value == {g: _int(snapshot[c]) for g, c in CHILD_COLUMNS.items()}
    assert by_field["enrolled_by_age"].live_value == enrolled
    assert {str(c.snapshot_date) for c in conflicts} == {"2026-07-21"}
    result: ImportResult = ctx["result"]
    assert result.live_kept >= 1
    assert any(i["code"] == code and i["column"] == "live_report" for i in result.report)


def test_a_snapshot_newer_than_the_report_wins(merged) -> None:
    engine, ctx = merged
    code = ctx["early"]
    snapshot = ctx["new"][code]
    with engine.connect() as conn:
        f = conn.execute(text("SELECT id, enrolled, enrolled_by_age FROM facilities WHERE code = :c"),
                         {"c": code}).one()
        assert f.enrolled_by_age == {g: _int(snapshot[c]) for g, c in CHILD_COLUMNS.items()}
        assert f.enrolled == _int(snapshot["현원"])
        assert conn.execute(text("SELECT count(*) FROM vacancy_conflicts WHERE facility_id = :f"),
                            {"f": f.id}).scalar_one() == 0
        assert facility_detail(conn, f.id)["vacancy_reported_at"] == "2026-07-21"


def test_staff_see_the_conflicts_of_their_centre(merged, settings: Settings) -> None:
    engine, ctx = merged
    code = ctx["live"]
    with engine.connect() as conn, conn.begin() as tx:
        staff = create_user(conn, email="staff@example.kr", password="correct horse battery", role="centre_staff",
                            facility_codes=[code])
        parent = create_user(conn, email="parent@example.kr", password="correct horse battery", role="parent")
        headers = {uid: {"Authorization": "Bearer " + issue_token(conn, settings, user_id=uid, kind="bearer").secret}
                   for uid in (staff, parent)}
        client = client_on(settings, conn)
        resp = client.get(f"/vacancy/centres/{code}/conflicts", headers=headers[staff])
        assert resp.status_code == 200, resp.text
        fields = {c["field"]: c for c in resp.json()}
        assert {"enrolled", "enrolled_by_age"} <= set(fields)
        assert fields["enrolled"]["live_value"] == sum(ctx["bodies"][code][0].values())
        assert datetime.fromisoformat(fields["enrolled"]["reported_at"]) <= datetime.now(UTC)
        assert client.get(f"/vacancy/centres/{code}/conflicts", headers=headers[parent]).status_code == 403
        tx.rollback()
