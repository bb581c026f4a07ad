"""The JSON shapes of the search SQL are rendered once at import; they must be the SQL the composed trees give."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine

from geo.search import FacilityFilters, area_lookup_statement, nearest_statement, queries, radius_statement
from geo.search import sql as q
from geo.settings import Settings


def test_rendered_shapes_are_the_composed_sql(engine: Engine) -> None:
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url) as conn:
        assert q.SHAPES["feature"].as_bytes(conn) == q.FEATURE_JSON.as_bytes(conn)
        assert q.SHAPES["item"].as_bytes(conn) == q.ITEM_JSON.as_bytes(conn)
        # Every property key is in the rendered SQL once, quoted as a literal.
        rendered = q.SHAPES["feature"].as_string(conn)
        assert all(rendered.count(f"'{key}', ") == 1 for key, _ in q.PROPERTIES)


FILTER_SETS = [
    {}, {"services": ["extended_hours"]}, {"services": ["holiday", "24h"], "services_match": "any"},
    {"types": ["national_public", "민간"]}, {"status": ["all"]}, {"status": ["active"]}, {"age": 2, "min_free": 3},
    {"age": 2, "min_free": 0}, {"has_bus": True}, {"has_bus": False}, {"has_cctv": True}, {"has_cctv": False},
    {"name": "해님"}, {"languages": ["zh"]}, {"evaluation_grades": ["A"]},
    {"services": ["extended_hours"], "types": ["home"], "age": 1, "has_bus": True, "name": "꿈"},
]


def test_searches_rendered_once_are_the_sql_composed_each_time(engine: Engine,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(DATABASE_URL=None)

    def statements() -> list[tuple[sql.Composable, sql.Composable | None]]:
        out: list[tuple[sql.Composable, sql.Composable | None]] = []
        for options in FILTER_SETS:
            filters = FacilityFilters.parse(**options)  # type: ignore[arg-type]
            for shape in ("feature", "item", "marker"):
                r = radius_statement(lat=37.5, lon=127.0, radius_m=900, filters=filters, settings=settings,
                                     shape=shape)  # type: ignore[arg-type]
                out.append((r.page_sql, r.count_sql))
                for within in (None, 500.0):
                    n = nearest_statement(lat=37.5, lon=127.0, max_distance_m=within, filters=filters,
                                          settings=settings, shape=shape)  # type: ignore[arg-type]
                    out.append((n.page_sql, n.count_sql))
                for area in ({"district": "11440"}, {"dong": "서교동"}):
                    for point in ({}, {"lat": 37.55, "lon": 126.92}):
                        a = area_lookup_statement(settings=settings, filters=filters, shape=shape,  # type: ignore
                                                  **area, **point)
                        out.append((a.page_sql, None))
        return out

    cached, again = statements(), statements()
    assert all(p1 is p2 for (p1, _), (p2, _) in zip(cached, again, strict=True))  # rendered once
    monkeypatch.setattr(queries, "rendered", lambda key, where, build: build())
    composed = statements()
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url) as conn:
        for (page, count), (page_now, count_now) in zip(cached, composed, strict=True):
            assert page.as_bytes(conn) == page_now.as_bytes(conn)
            assert count_now is None if count is None else count.as_bytes(conn) == count_now.as_bytes(conn)
