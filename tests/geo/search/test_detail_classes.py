"""The centre detail's class table on the real 2026-07-21 snapshot: per-class free places never exceed the class's
own places minus its children, and per-age free places are the age's own classes plus its mixed class (capped by
정원 − 현원), with a note saying so. The table showed the per-age figure in each row (free 39 beside places 30 in
the 3세 row of a centre with a 유아혼합 class; per-age figures summing to 99 with 57 free in all)."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, text

from geo.search.detail import facility_detail

OWN_AND_MIXED = {"0": ("0", "mixed_infant"), "1": ("1", "mixed_infant"), "2": ("2", "mixed_infant"),
                 "3": ("3", "mixed_toddler"), "4": ("4", "mixed_toddler"), "5": ("5", "mixed_toddler")}


def test_class_rows_and_ages_are_consistent(seoul_engine: Engine, connection: Connection) -> None:
    ids = connection.execute(text("""
        SELECT id FROM facilities
        WHERE coalesce((classes_by_age->>'mixed_infant')::int, 0) + coalesce((classes_by_age->>'mixed_toddler')::int, 0) > 0
        ORDER BY id""")).scalars().all()
    assert len(ids) > 100
    for fid in ids:
        d = facility_detail(connection, fid)
        total = max(0, (d["capacity"] or 0) - (d["enrolled"] or 0))
        by_class = d["free_by_class"]
        assert "mixed class" in d["free_note"]
        for group, places in d["places_by_age"].items():
            children = (d["enrolled_by_age"] or {}).get(group) or 0
            assert 0 <= by_class[group] <= min(total, max(0, places - children)), (d["code"], group)
        for age, groups in OWN_AND_MIXED.items():
            assert d["free_by_age"][age] == min(total, sum(by_class[g] for g in groups)), (d["code"], age)
