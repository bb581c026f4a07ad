"""One rule for "operating": a centre the search shows as operating (its default status filter) takes waitlist
applications, and one it hides does not (a 재개 centre was shown but refused with 409 "not operating")."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Connection, Engine, text

from geo.admission import waitlist as wl
from geo.domain import FacilityStatus
from geo.errors import Conflict
from geo.search.filters import FacilityFilters
from geo.search.queries import nearest_search
from geo.settings import Settings
from tests.geo.admission.waitutil import NOW, centres, child, parent


@pytest.mark.parametrize("status", list(FacilityStatus))
def test_search_and_waitlist_agree_on_operating(seoul_engine: Engine, connection: Connection, settings: Settings,
                                                status: FacilityStatus) -> None:
    conn = connection
    centre = centres(conn, 1)[0]
    conn.execute(text("UPDATE facilities SET status = :s WHERE id = :id"), {"s": status.value, "id": centre.id})
    lon, lat = conn.execute(text("SELECT ST_X(geom_4326), ST_Y(geom_4326) FROM facilities WHERE id = :id"),
                            {"id": centre.id}).one()
    page = nearest_search(conn, settings=settings, lat=lat, lon=lon, k=20,
                          filters=FacilityFilters(min_free=0))
    shown = centre.code in {f["properties"]["code"] for f in json.loads(page.features_json)}
    mum = parent(conn, f"{status.value}@example.kr")
    kid = child(conn, mum)
    try:
        wl.apply(conn, parent_user_id=mum, child_id=kid["id"], facility_code=centre.code, now=NOW)
        accepted = True
    except Conflict as exc:
        assert "not operating" in str(exc)
        accepted = False
    assert shown == accepted, f"{status.value}: shown as operating {shown}, applications accepted {accepted}"
