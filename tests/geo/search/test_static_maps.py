"""``geo.search.static_maps.search_map``: the folium map of a search holds exactly the centres SQL finds, coloured by free places."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from geo.errors import InvalidQuery, NotFound
from geo.search import FacilityFilters
from geo.search.static_maps import COLOURS, search_map
from geo.settings import Settings
from tests.dbutil import rolled_back


def test_radius_map_has_every_centre_across_pages(seoul_engine: Engine, settings: Settings, tmp_path: Path) -> None:
    small_pages = settings.updated(DOLBOM_MAX_PAGE_LIMIT=15)
    lat, lon, radius_m = 37.5563, 126.9236, 1500.0
    with rolled_back(seoul_engine) as conn:
        result = search_map(conn, settings=small_pages, filters=FacilityFilters.parse(age=1, min_free=0),
                            lat=lat, lon=lon, radius_m=radius_m)
        expected = dict(conn.execute(text("""
            SELECT id, (free_by_age ->> '1')::int FROM facilities WHERE status IN ('active', 'reopened')
              AND ST_DWithin(geom_4326::geography, ST_MakePoint(:lon, :lat)::geography, :r)"""),
            {"lat": lat, "lon": lon, "r": radius_m}).all())
    assert len(expected) > 30  # three pages at least
    assert sorted(f["id"] for f in result.features) == sorted(expected)
    out = tmp_path / "map.html"
    result.save(out)
    page = out.read_text(encoding="utf-8")
    assert page.count("L.circleMarker(") == len(expected)
    free = sum(1 for v in expected.values() if v is not None and v > 0)
    assert page.count(f'"fillColor": "{COLOURS["free"]}"') == free
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left behind


def test_bad_searches(seoul_engine: Engine, settings: Settings) -> None:
    with rolled_back(seoul_engine) as conn:
        with pytest.raises(InvalidQuery):
            search_map(conn, settings=settings)
        with pytest.raises(InvalidQuery):
            search_map(conn, settings=settings, lat=37.5, lon=127.0, radius_m=500, district="마포구")
        with pytest.raises(InvalidQuery):
            search_map(conn, settings=settings, lat=37.5, lon=127.0)
        with pytest.raises(NotFound):
            search_map(conn, settings=settings, dong="없는동")
