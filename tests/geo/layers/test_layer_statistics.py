"""The 구 and 행정동 map layers carry the per-area counts of the 보육통계 tables: on the real Seoul data, every 구's
figures equal the tables' rows (centres by type, free places by class age, staff by role, CCTV and buses), and a
행정동 is spot-checked against the tables and against a count written here by hand."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

from geo.domain import FacilityType
from geo.layers.features import ItemsQuery, items_statement
from geo.layers.registry import LAYERS
from geo.statistics.tables import AGES, STAFF_ROLES, Level, compute


@pytest.fixture()
def seoul(seoul_engine: Engine) -> Iterator[Connection]:
    with seoul_engine.connect() as conn:
        yield conn


def _layer(conn: Connection, layer_id: str) -> dict[str, Any]:
    rows = conn.execute(items_statement(LAYERS[layer_id], ItemsQuery(limit=None))).mappings().all()
    return {str(r["id"]): r for r in rows}


def _expected(conn: Connection, level: Level, key: str) -> dict[str, dict[str, int]]:
    """The layer properties per area, read off the statistics tables' rows (missing rows and nulls are 0)."""
    out: dict[str, dict[str, int]] = {}

    def add(area: Any, name: str, value: Any) -> None:
        bucket = out.setdefault(str(area), {})
        bucket[name] = bucket.get(name, 0) + (value or 0)

    for r in compute(conn, "places", level=level).rows:
        add(r[key], f"centres_{r['facility_type']}", r["centres"])
    for r in compute(conn, "free_places", level=level).rows:
        for a in AGES:
            add(r[key], f"free_age_{a}", r[f"free_{a}"])
    for r in compute(conn, "staff", level=level).rows:
        for role, _, _ in STAFF_ROLES:
            add(r[key], f"staff_{role}", r[role])
    for r in compute(conn, "equipment", level=level).rows:
        for name in ("centres_with_cctv", "cctv_cameras", "centres_with_bus"):
            add(r[key], name, r[name])
    return out


NAMES = ([f"centres_{t.value}" for t in FacilityType] + [f"free_age_{a}" for a in AGES]
         + [f"staff_{role}" for role, _, _ in STAFF_ROLES] + ["centres_with_cctv", "cctv_cameras", "centres_with_bus"])


def test_every_district_equals_the_statistics_tables(seoul: Connection) -> None:
    layer = _layer(seoul, "districts")
    expected = _expected(seoul, Level.sigungu, "district_code")
    assert len(layer) == 25 and set(expected) <= set(layer)
    for code, row in layer.items():
        want = expected.get(code, {})
        assert {n: row[n] for n in NAMES} == {n: want.get(n, 0) for n in NAMES}, code
    # Not all zero: the real data has centres of every main type, free places, staff, cameras and buses.
    for name in ("centres_national_public", "centres_home", "free_age_0", "staff_teacher", "cctv_cameras",
                 "centres_with_bus"):
        assert sum(r[name] for r in layer.values()) > 0, name
    # And the by-type counts add up to the layer's operating centres.
    for code, row in layer.items():
        assert sum(row[f"centres_{t.value}"] for t in FacilityType) == row["centres"], code


def test_a_dong_equals_the_tables_and_a_hand_count(seoul: Connection) -> None:
    # The 행정동 with the most operating centres.
    dong_id, dong_code, district = seoul.execute(text(
        "SELECT a.id, coalesce(a.mois_code, a.kostat_code), a.district_code FROM admin_dongs a "
        "JOIN facilities f ON f.admin_dong_id = a.id WHERE f.status IN ('active', 'reopened') "
        "GROUP BY a.id ORDER BY count(*) DESC, a.id LIMIT 1")).one()
    row = _layer(seoul, "admin_dongs")[str(dong_id)]
    assert row["code"] == dong_code
    want = _expected(seoul, Level.dong, "dong_code")[dong_code]
    assert {n: row[n] for n in NAMES} == {n: want.get(n, 0) for n in NAMES}
    hand = seoul.execute(text(
        "SELECT count(*) FILTER (WHERE facility_type = 'national_public') AS public, "
        "coalesce(sum((staff_by_role->>'total')::int), 0) AS staff, count(*) FILTER (WHERE has_bus) AS bus, "
        "coalesce(sum((free_by_age->>'2')::int), 0) AS free_2 "
        "FROM facilities WHERE admin_dong_id = :id AND status IN ('active', 'reopened')"), {"id": dong_id}).one()
    assert (row["centres_national_public"], row["staff_total"], row["centres_with_bus"], row["free_age_2"]) == \
        tuple(hand)
    assert row["staff_total"] > 0 and row["district_code"] == district
