"""One centre in full, for the map's detail panel: places and children by age class, staff, CCTV, bus, services,
hours and when its vacancy was last reported."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text

from geo.disclosure.files import evaluation_history
from geo.disclosure.records import active_disclosures, public_disclosure
from geo.domain import MIXED_CLASS_NOTE, SOURCE_TIME_ZONE, free_places_by_class, places_by_age
from geo.errors import NotFound
from geo.search.fields import fields_for

# The centre's public fields the panel shows (``geo.search.fields``, output ``detail``) over facilities f and
# its 행정동 a, and the time of its last live report when that report is newer than the snapshot's data date.
# Built once from those constant definitions; the values are the bound :id and :tz.
_DETAIL_COLUMNS = ", ".join(f"{field.sql('f')} AS {field.name}" for field in fields_for("detail"))
_DETAIL_SQL = text(
    "SELECT f.id, " + _DETAIL_COLUMNS + ", ST_X(f.geom_4326) AS lon, ST_Y(f.geom_4326) AS lat,"  # noqa: S608
    " CASE WHEN r.reported_at >= ((f.data_date + 1)::timestamp AT TIME ZONE :tz) OR f.data_date IS NULL"
    " THEN r.reported_at END AS live_reported_at"
    " FROM facilities f LEFT JOIN admin_dongs a ON a.id = f.admin_dong_id"
    " LEFT JOIN LATERAL (SELECT max(v.reported_at) AS reported_at FROM vacancy_reports v"
    " WHERE v.facility_id = f.id) r ON true"
    " WHERE f.id = :id")


def facility_detail(conn: Connection, facility_id: int, *, now: datetime | None = None) -> dict[str, Any]:
    """Everything the detail panel shows about centre ``facility_id`` (JSON-ready: dates as ISO strings).

    ``places_by_age`` is classes x the legal children per class (``geo.domain.places_by_age``);
    ``free_by_class`` the free places of each class group (what the class table shows in its rows, never more
    than the group's places minus its children) and ``free_note`` how mixed classes count in ``free_by_age``;
    ``vacancy_reported_at`` is the date of the figures shown (여석 기준일): the time of the centre's last report
    when it was made after the snapshot's data date (such a report wins, see ``geo.ingest.childcare.load``),
    else the snapshot date (``data_date``); ``vacancy_source`` says which (``report`` or ``snapshot``);
    ``updated_at`` is when the row last changed. ``lon``/``lat`` are EPSG:4326 degrees. ``disclosures`` lists
    the violations published at ``now`` (default: the real clock; 영유아보육법 §49-3, ``geo.disclosure``) and
    ``evaluations`` the centre's 평가제 grades, newest first.

    Raises
    ------
    NotFound
        No centre has this id.
    """
    row = conn.execute(_DETAIL_SQL, {"id": facility_id, "tz": SOURCE_TIME_ZONE}).mappings().first()
    if row is None:
        raise NotFound(f"no centre with id {facility_id}", facility_id=facility_id)
    detail = dict(row)
    classes = detail["classes_by_age"]
    detail["places_by_age"] = places_by_age(classes) if classes else None
    detail["free_by_class"] = free_places_by_class(
        classes, detail["enrolled_by_age"], capacity=detail["capacity"], enrolled=detail["enrolled"],
    ) if classes else None
    detail["free_note"] = MIXED_CLASS_NOTE
    detail["services"] = list(detail["services"] or [])
    for key in ("approved_on", "data_date", "updated_at"):
        if detail[key] is not None:
            detail[key] = detail[key].isoformat()
    live = detail.pop("live_reported_at")
    detail["vacancy_reported_at"] = live.isoformat() if live is not None else detail["data_date"]
    detail["vacancy_source"] = "report" if live is not None else "snapshot"
    if detail["evaluation_date"] is not None:
        detail["evaluation_date"] = detail["evaluation_date"].isoformat()
    detail["disclosures"] = [public_disclosure(d) for d in
                             active_disclosures(conn, now=now or datetime.now(UTC), facility_id=facility_id)]
    detail["evaluations"] = [{"grade": e["grade"], "evaluated_on": e["evaluated_on"].isoformat()}
                             for e in evaluation_history(conn, facility_code=detail["code"])]
    return detail
