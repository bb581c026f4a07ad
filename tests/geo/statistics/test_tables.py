"""보육통계 tables on the real data: per 구 they equal an independent count of the raw OA-20300 file (pandas, no
database); per 행정동 they add up to the 구; free places, history, the waitlist and bookings equal independent SQL;
the CSV and XLSX files hold the same rows as the JSON."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from openpyxl import load_workbook
from sqlalchemy import Connection, text

from geo.admission import waitlist as wl
from geo.errors import InvalidQuery, NotFound
from geo.statistics.files import to_csv, to_xlsx
from geo.statistics.tables import DEFINITIONS, Level, compute, value_name
from tests.geo.admission.waitutil import NOW, centres, child, parent, set_free

OPERATING_KO = ("정상", "재개")
TYPE_KO = {"국공립": "national_public", "사회복지법인": "social_welfare", "법인·단체등": "corporate_group",
           "민간": "private", "가정": "home", "협동": "cooperative", "직장": "workplace",
           "법인?단체등": "corporate_group"}  # the file's own spelling (its '·' lost in an encoding)


@pytest.fixture(scope="module")
def raw(shared_data: Path) -> pd.DataFrame:
    """The operating centres of the 2026-07-21 file as published (every figure parsed here, not by the importer)."""
    frame = pd.read_csv(shared_data / "childcare" / "seoul_childcare_OA-20300_20260721_full.csv", dtype=str)
    frame = frame[frame["운영현황"].isin(OPERATING_KO)].copy()
    for column in ("정원", "현원", "CCTV총설치수", "교직원현황-원장", "교직원현황-보육교사", "교직원현황-총계"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").fillna(0).astype(int)
    frame["type"] = frame["어린이집유형"].map(TYPE_KO)
    assert frame["type"].notna().all(), set(frame.loc[frame["type"].isna(), "어린이집유형"])
    return frame


def by_district(table: Any, *keys: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(r[k] for k in ("district_name", *keys)): r for r in table.rows}


def test_places_per_district_and_type_equal_the_raw_file(seoul_engine: Any, conn: Connection,
                                                         raw: pd.DataFrame) -> None:
    expected = raw.groupby(["시군구명", "type"]).agg(centres=("어린이집코드", "size"), capacity=("정원", "sum"),
                                                    enrolled=("현원", "sum"))
    got = by_district(compute(conn, "places", level=Level.sigungu), "facility_type")
    assert set(got) == set(expected.index)
    for key, row in expected.iterrows():
        assert (got[key]["centres"], got[key]["capacity"], got[key]["enrolled"]) == tuple(row), key
        want_pct = round(row["enrolled"] * 100 / row["capacity"], 1) if row["capacity"] else None
        assert got[key]["utilisation_pct"] == pytest.approx(want_pct, abs=0.051), key


def test_equipment_and_staff_per_district_equal_the_raw_file(seoul_engine: Any, conn: Connection,
                                                             raw: pd.DataFrame) -> None:
    expected = raw.groupby("시군구명").agg(
        centres=("어린이집코드", "size"), centres_with_cctv=("CCTV총설치수", lambda s: int((s > 0).sum())),
        cctv_cameras=("CCTV총설치수", "sum"), centres_with_bus=("통학차량운영여부", lambda s: int((s == "운영").sum())),
        director=("교직원현황-원장", "sum"), teacher=("교직원현황-보육교사", "sum"), total=("교직원현황-총계", "sum"))
    equipment = by_district(compute(conn, "equipment"))
    staff = by_district(compute(conn, "staff"))
    assert len(equipment) == len(staff) == 25
    for name, row in expected.iterrows():
        e, s = equipment[(name,)], staff[(name,)]
        assert [e["centres"], e["centres_with_cctv"], e["cctv_cameras"], e["centres_with_bus"]] == \
            [row["centres"], row["centres_with_cctv"], row["cctv_cameras"], row["centres_with_bus"]], name
        assert [s["director"], s["teacher"], s["total"]] == [row["director"], row["teacher"], row["total"]], name


def test_centres_by_status_count_every_centre_of_the_file(seoul_engine: Any, conn: Connection,
                                                          shared_data: Path) -> None:
    frame = pd.read_csv(shared_data / "childcare" / "seoul_childcare_OA-20300_20260721_full.csv", dtype=str)
    # Three rows have an empty 운영현황: the import skips them (its report names them) and the statistics follow.
    assert frame["운영현황"].isna().sum() == 3
    frame = frame[frame["운영현황"].notna()]
    city = compute(conn, "centres", level=Level.city)
    assert sum(r["centres"] for r in city.rows) == len(frame)
    statuses = {"정상": "active", "재개": "reopened", "휴지": "suspended", "폐지": "closed"}
    want = frame.assign(status=frame["운영현황"].map(statuses), type=frame["어린이집유형"].map(TYPE_KO)) \
        .groupby(["type", "status"]).size().to_dict()
    assert {(r["facility_type"], r["status"]): r["centres"] for r in city.rows} == want


@pytest.mark.parametrize("table_id", ["places", "free_places", "staff", "equipment", "history", "centres"])
def test_dong_rows_add_up_to_their_district(seoul_engine: Any, conn: Connection, table_id: str) -> None:
    d = DEFINITIONS[table_id]
    sums = [c.name for c in d.columns if c.kind in ("count", "sum")]
    own_keys = [c.name for c in d.columns if c.kind in ("key", "date")]

    def totals(level: Level) -> dict[tuple[Any, ...], list[int]]:
        out: dict[tuple[Any, ...], list[int]] = {}
        for r in compute(conn, table_id, level=level).rows:
            key = (r["district_code"], *(r[k] for k in own_keys))
            acc = out.setdefault(key, [0] * len(sums))
            for i, name in enumerate(sums):
                acc[i] += r[name] or 0
        return out

    assert totals(Level.dong) == totals(Level.sigungu)


def test_free_places_equal_independent_sql(seoul_engine: Any, conn: Connection) -> None:
    rows = conn.execute(text("""
        SELECT f.district_code, kv.key, sum(kv.value::int)
        FROM facilities f, jsonb_each_text(f.free_by_age) kv
        WHERE f.status IN ('active', 'reopened') GROUP BY 1, 2""")).all()
    want = {(code, "free_" + key): n for code, key, n in rows}
    table = compute(conn, "free_places")
    got = {(r["district_code"], k): v for r in table.rows for k, v in r.items() if k.startswith("free_")}
    assert got == want


def test_history_counts_the_observations_of_each_snapshot(seoul_engine: Any, conn: Connection) -> None:
    want = dict(conn.execute(text("""SELECT o.snapshot_date::text, count(*) FROM facility_observations o
                                     WHERE o.status IN ('active', 'reopened') GROUP BY 1""")).all())
    got = {r["snapshot_date"]: r["centres"] for r in compute(conn, "history", level=Level.city).rows}
    assert got == want and want


def test_one_district_only(seoul_engine: Any, conn: Connection) -> None:
    mapo = compute(conn, "places", district_code="11440")
    assert mapo.rows and {r["district_code"] for r in mapo.rows} == {"11440"}
    assert {r["district_name"] for r in mapo.rows} == {"마포구"}


def test_waitlist_figures_equal_the_entries_and_offers(seoul_engine: Any, conn: Connection) -> None:
    sites = centres(conn, 2)
    for site in sites:
        set_free(conn, site.id, {"0": 1, "1": 1, "total": 2})
    parents = [parent(conn, f"s{i}@example.kr") for i in range(3)]
    kids = [child(conn, mum, name=f"아이{i}") for i, mum in enumerate(parents)]
    for mum, kid in zip(parents, kids, strict=True):
        for site in sites:
            wl.apply(conn, parent_user_id=mum, child_id=kid["id"], facility_code=site.code, now=NOW)
    offer = wl.offer_next(conn, facility_id=sites[0].id, age_class=0, actor_user_id=None, now=NOW)["offer"]
    holder = conn.execute(text("""SELECT ch.parent_user_id FROM waitlist_offers o JOIN children ch ON ch.id = o.child_id
                                  WHERE o.id = :o"""), {"o": offer["id"]}).scalar_one()
    wl.accept(conn, parent_user_id=holder, offer_id=offer["id"], now=NOW + timedelta(days=3))
    table = compute(conn, "waitlist", level=Level.sigungu)
    mine = [r for r in table.rows if r["district_code"] in {s.district_code for s in sites}]
    assert sum(r["applications"] for r in mine) == 6
    assert sum(r["admitted"] for r in mine) == 1 and sum(r["offers_accepted"] for r in mine) == 1
    accepted = next(r for r in mine if r["offers_accepted"])
    assert accepted["median_wait_days"] == pytest.approx(3.0)
    with pytest.raises(InvalidQuery) as refused:
        compute(conn, "waitlist", level=Level.dong)
    assert refused.value.extra["param"] == "level"


def test_unknown_table_and_bad_district_are_refused(seoul_engine: Any, conn: Connection) -> None:
    with pytest.raises(NotFound):
        compute(conn, "nope")
    with pytest.raises(InvalidQuery):
        compute(conn, "places", district_code="mapo")
    with pytest.raises(InvalidQuery):
        compute(conn, "places", level="country")


def test_csv_and_xlsx_hold_the_rows_of_the_json(seoul_engine: Any, conn: Connection) -> None:
    table = compute(conn, "places", district_code="11440")
    data = to_csv(table, lang="ko")
    assert data.startswith("\ufeff".encode())
    lines = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert lines[0] == [c.ko for c in table.columns]
    assert len(lines) == len(table.rows) + 1
    national = next(i for i, r in enumerate(table.rows) if r["facility_type"] == "national_public")
    assert lines[national + 1][2] == "국공립"  # coded values in Korean in a Korean file
    assert [int(x) for x in lines[national + 1][3:6]] == [table.rows[national][k] for k in
                                                           ("centres", "capacity", "enrolled")]
    book = load_workbook(io.BytesIO(to_xlsx(table, lang="en")))
    sheet = book[table.definition.id]
    values = list(sheet.iter_rows(values_only=True))
    assert list(values[0]) == [c.en for c in table.columns]
    assert [list(v) for v in values[1:]] == [[value_name("places", c.name, r[c.name], "en") for c in table.columns]
                                             for r in table.rows]
    assert values[1][2] in ("Public", "Private", "Home-based", "Cooperative", "Workplace", "Corporate",
                            "Social welfare")
    assert isinstance(values[1][4], int)  # numbers as numbers
