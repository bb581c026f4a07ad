"""The area search in one statement (the 구 or 행정동 resolved inside the page's SQL) answers exactly what
resolving first (``resolve_area``) and then running ``area_statement`` answers, on the real Seoul data: every
구 and every 행정동 by code and by name (with and without its 구, with and without a point), and the same
errors for ambiguous names, unknown names and 법정동 names."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import Connection, text

from geo.errors import InvalidQuery, NotFound
from geo.search import CountMode, area_lookup_statement, area_statement, run, run_area
from geo.search.places import resolve_area
from geo.settings import Settings

S = Settings()


def two_step(conn: Connection, count: CountMode = "exact", **options: object) -> tuple[str, int, int | None, dict]:
    district, dong = options.pop("district", None), options.pop("dong", None)
    area = resolve_area(conn, district=district, dong=dong)  # type: ignore[arg-type]
    page = run(conn, area_statement(area, settings=S, **options), count=count)  # type: ignore[arg-type]
    return page.features_json, page.number_returned, page.number_matched, page.query


def one_statement(conn: Connection, count: CountMode = "exact",
                  **options: object) -> tuple[str, int, int | None, dict]:
    page = run_area(conn, area_lookup_statement(settings=S, **options), count=count)  # type: ignore[arg-type]
    return page.features_json, page.number_returned, page.number_matched, page.query


def test_every_district_and_dong_gives_the_same_page(conn: Connection) -> None:
    districts = conn.execute(text("SELECT code, name FROM districts ORDER BY code")).all()
    dongs = conn.execute(text("""
        SELECT a.mois_code, a.kostat_code, a.name, d.code AS district_code, d.name AS district_name,
               count(*) OVER (PARTITION BY a.name) AS same_name
        FROM admin_dongs a JOIN districts d ON d.code = a.district_code ORDER BY a.id""")).all()
    assert len(districts) >= 25 and len(dongs) >= 400
    rng = random.Random(24)
    cases: list[dict[str, object]] = []
    for d in districts:
        cases += [{"district": d.code}, {"district": d.name, "limit": 7, "offset": 3}]
    for d in dongs:
        cases.append({"dong": rng.choice([d.mois_code, d.kostat_code]), "district": rng.choice([None, d.district_code])})
        if d.same_name == 1:
            cases.append({"dong": d.name, "limit": 5})
        cases.append({"dong": d.name, "district": d.district_name, "lat": 37.55, "lon": 126.97, "limit": 3})
    for i, case in enumerate(cases):
        case = {k: v for k, v in case.items() if v is not None}
        count: CountMode = "auto" if i % 2 else "exact"  # auto: a page with more after it has no count
        assert one_statement(conn, count, **case) == two_step(conn, count, **case), case


@pytest.mark.parametrize("options", [
    {"dong": "신사동"},  # 강남구 and 관악구 both have one: ambiguous
    {"district": "없는구"},
    {"dong": "없는동"},
    {"dong": "역삼동"},  # a 법정동: names the 행정동 it lies in
    {"dong": "역삼1동", "district": "마포구"},  # exists, but not in that 구
    {"district": "강남구", "dong": "없는동"},
])
def test_errors_are_those_of_resolving_first(conn: Connection, options: dict) -> None:
    with pytest.raises((InvalidQuery, NotFound)) as expected:
        two_step(conn, **dict(options))
    with pytest.raises(type(expected.value)) as got:
        one_statement(conn, **dict(options))
    assert str(got.value) == str(expected.value)
    assert getattr(got.value, "candidates", None) == getattr(expected.value, "candidates", None)
