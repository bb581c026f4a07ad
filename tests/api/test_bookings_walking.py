"""Slot search by walking time: the area is the walking isochrone over an imported OSM network (흑석동), and
the slots returned are exactly those of centres inside it (checked with shapely on the isochrone polygon)."""

from __future__ import annotations

from pathlib import Path

import pytest
from shapely.geometry import Point, shape
from sqlalchemy import Engine, text

from geo.ingest.osm import import_osm_network
from geo.isochrones import isochrone
from geo.settings import Settings
from tests.booking_util import make_centre, make_slot
from tests.dbutil import client_on, rolled_back

HEUKSEOK = "seoul_dongjak_heukseok_cauH_overpass_20241118_norelations.osm"


@pytest.fixture(scope="module")
def walk_engine(make_database, shared_data: Path) -> Engine:  # type: ignore[no-untyped-def]
    """A database with the 흑석동 walking network."""
    engine = make_database("booking_walk")
    import_osm_network(engine, shared_data / "osm" / HEUKSEOK, network="heukseok")
    return engine  # type: ignore[no-any-return]


def test_walking_minutes_search(walk_engine: Engine, settings: Settings) -> None:
    with rolled_back(walk_engine) as conn:
        # Origin: the network's median vertex; centres spread around it on a 300 m grid.
        lon, lat = conn.execute(text(
            "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY ST_X(geom_4326)), "
            "percentile_disc(0.5) WITHIN GROUP (ORDER BY ST_Y(geom_4326)) FROM road_vertices")).one()
        codes = {}
        for i in range(-3, 4):
            for j in range(-3, 4):
                code = f"T-WALK-{i}{j}"
                point = (lon + i * 0.0034, lat + j * 0.0027)
                facility = make_centre(conn, code, lon=point[0], lat=point[1])
                make_slot(conn, facility, places_by_age={"1": 1})
                codes[code] = point
        area = shape(isochrone(conn, lat=lat, lon=lon, minutes=8, mode="walk", settings=settings,
                               facility_limit=1).geometry_4326)
        inside = {c for c, p in codes.items() if area.intersects(Point(p))}
        assert 0 < len(inside) < len(codes)
        client = client_on(settings, conn)
        found = client.get("/bookings/slots", params={"lat": lat, "lon": lon, "age": 1, "walk_minutes": 8})
        assert found.status_code == 200, found.text
        got = {f["properties"]["facility_code"] for f in found.json()["features"]}
        assert got == inside
