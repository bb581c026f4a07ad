"""One centre in full, for the map's detail panel: places and children by age class, staff, CCTV, bus, services,
hours and when its vacancy was last reported."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from geo.domain import places_by_age
from geo.errors import NotFound
from geo.search.fields import fields_for

# The centre's public fields the panel shows (``geo.search.fields``, output ``detail``) over facilities f and
# its 행정동 a. Built once from those constant definitions; the only value is the bound :id.
_DETAIL_COLUMNS = ", ".join(f"{field.sql('f')} AS {field.name}" for field in fields_for("detail"))
_DETAIL_SQL = text("SELECT f.id, " + _DETAIL_COLUMNS + ", ST_X(f.geom_4326) AS lon, ST_Y(f.geom_4326) AS lat"  # noqa: S608
                   " FROM facilities f LEFT JOIN admin_dongs a ON a.id = f.admin_dong_id WHERE f.id = :id")


def facility_detail(conn: Connection, facility_id: int) -> dict[str, Any]:
    """Everything the detail panel shows about centre ``facility_id`` (JSON-ready: dates as ISO strings).

    ``places_by_age`` is classes x the legal children per class (``geo.domain.places_by_age``);
    ``vacancy_reported_at`` is the snapshot date of the figures (``data_date``) and ``updated_at`` when the row
    last changed. ``lon``/``lat`` are EPSG:4326 degrees.

    Raises
    ------
    NotFound
        No centre has this id.
    """
    row = conn.execute(_DETAIL_SQL, {"id": facility_id}).mappings().first()
    if row is None:
        raise NotFound(f"no centre with id {facility_id}", facility_id=facility_id)
    detail = dict(row)
    detail["places_by_age"] = places_by_age(detail["classes_by_age"]) if detail["classes_by_age"] else None
    detail["services"] = list(detail["services"] or [])
    for key in ("approved_on", "data_date", "updated_at"):
        if detail[key] is not None:
            detail[key] = detail[key].isoformat()
    detail["vacancy_reported_at"] = detail["data_date"]
    return detail
