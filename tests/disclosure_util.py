"""Published violations on the real Seoul centres, for the tests that go through every registered layer (the
``disclosures`` layer is empty until something is published); removed afterwards, so that the Seoul database is as
the other tests expect."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

from sqlalchemy import Engine, text

from geo.disclosure import records
from geo.settings import Settings

#: The disclosures layer's rows in SQL written independently of the registry.
DISCLOSURES_SOURCE = ("(SELECT f.geom_4326 FROM disclosures d JOIN facilities f ON f.id = d.facility_id "
                      "WHERE d.shown) dis")


@contextmanager
def published_disclosures(engine: Engine, *, count: int = 4) -> Iterator[list[int]]:
    """``count`` operating centres of 종로구 with a published violation (committed); sanction ids."""
    now = Settings().now()
    with engine.begin() as conn:
        codes = conn.execute(text("SELECT code FROM facilities WHERE district_code = '11110' AND status = 'active' "
                                  "ORDER BY code LIMIT :n"), {"n": count}).scalars().all()
        ids = []
        for code in codes:
            made = records.record_sanction(conn, facility_code=code, kind="correction_order",
                                           legal_basis="영유아보육법 제44조", violation="보육교사 배치기준 위반",
                                           disposition="시정명령", authority="종로구청", decided_at=date(2026, 1, 5),
                                           final_at=date(2026, 2, 5), source="test", actor_user_id=None)
            records.publish(conn, made["id"], now=now, actor_user_id=None)
            ids.append(int(made["id"]))
    try:
        yield ids
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM sanctions WHERE id = ANY(:ids)"), {"ids": ids})
