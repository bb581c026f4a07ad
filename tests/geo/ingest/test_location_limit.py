"""Centres placed far from their published point: beyond the location limit (DOLBOM_IMPORT_LOCATION_EXACT_MAX_M,
150 m) or placed inside their 법정동/시군구 for want of a usable point, their location is approximate: still found by
구/동, marked ``location_approximate`` in search results, the detail and the facilities layer, never passed off as a
precise point. Before, a move of 396 m and a placement at the 구's centre from 8.6 km away were silent (only
``geocode_quality`` told). Offsets are computed here from the CSV's published points."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from geo.layers.registry import get_layer
from geo.search.detail import facility_detail
from geo.search.queries import area_search
from geo.settings import Settings

F0721 = "seoul_childcare_OA-20300_20260721_full.csv"
LAT, LON = "시설 위도(좌표값)", "시설 경도(좌표값)"
LIMIT_M = 150.0


def test_far_placements_are_approximate(seoul_engine: Engine, connection: Connection, shared_data: Path,
                                        settings: Settings) -> None:
    assert settings.imports.location_exact_max_m == LIMIT_M
    with (shared_data / "childcare" / F0721).open(encoding="utf-8-sig", newline="") as fh:
        published = {r["어린이집코드"]: (r[LAT], r[LON]) for r in csv.DictReader(fh)}
    rows = connection.execute(text("""
        SELECT id, code, district_code, geocode_quality, location_approximate, location_offset_m,
               ST_X(geom_4326) AS lon, ST_Y(geom_4326) AS lat FROM facilities""")).all()
    offsets = {}
    for r in rows:
        lat, lon = published[r.code]
        try:
            point = (float(lat), float(lon))
        except ValueError:
            point = None
        if point is not None and r.geocode_quality != "source":
            offsets[r.code] = connection.execute(text(
                "SELECT ST_Distance(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, "
                "ST_SetSRID(ST_MakePoint(:x, :y), 4326)::geography)"),
                {"lon": point[1], "lat": point[0], "x": r.lon, "y": r.lat}).scalar_one()
        expected = r.geocode_quality in ("legal_dong_centroid", "district_centroid") or offsets.get(r.code, 0) > LIMIT_M
        assert r.location_approximate is expected, (r.code, r.geocode_quality, offsets.get(r.code))
    approximate = [r for r in rows if r.location_approximate]
    snapped_far = [r for r in approximate if r.geocode_quality == "source_snapped"]
    # The 396 m move and the 8.6 km placement at the 구 centre are among them.
    assert snapped_far and max(offsets[r.code] for r in snapped_far) > 390
    assert max(offsets.get(r.code, 0) for r in approximate) > 8000
    # Still found by area, and marked in search results, the detail and the layer.
    sample = approximate[0]
    page = area_search(connection, settings=settings, district=sample.district_code, limit=500,
                       filters=None)
    features = {f["properties"]["code"]: f["properties"] for f in json.loads(page.features_json)}
    marked = {c for c, p in features.items() if p["location_approximate"]}
    assert marked == {r.code for r in approximate if r.code in features and r.district_code == sample.district_code}
    assert facility_detail(connection, sample.id)["location_approximate"] is True
    assert any(p.name == "location_approximate" for p in get_layer("facilities").properties)
