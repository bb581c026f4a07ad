"""The facilities layer: every centre with its attributes, services and estimated free places by age.

A later column (e.g. the time of the last vacancy report from the live-vacancy work) is one more ``Property``
in ``PROPERTIES`` (and, if it should show on the map, a name in ``TILE_PROPERTIES``); nothing else changes.
"""

from __future__ import annotations

from sqlalchemy import Integer, cast

from geo.layers.base import Layer, Property
from geo.models.facilities import Facility

_f = Facility.__table__.alias("f")
_c = _f.c


def _free(key: str):
    return cast(_c.free_by_age[key].astext, Integer)


PROPERTIES: tuple[Property, ...] = (
    Property("code", "string", _c.code, "어린이집코드"),
    Property("name", "string", _c.name, "어린이집명"),
    Property("facility_type", "string", _c.facility_type, "type: national_public, private, home, workplace, ..."),
    Property("status", "string", _c.status, "operating status: active, reopened, suspended, closed"),
    Property("district_code", "string", _c.district_code, "5-digit 시군구 code"),
    Property("sigungu_name", "string", _c.sigungu_name, "시군구 name"),
    Property("address", "string", _c.address, "road address"),
    Property("phone", "string", _c.phone, "phone number"),
    Property("capacity", "integer", _c.capacity, "정원 (licensed places)"),
    Property("enrolled", "integer", _c.enrolled, "현원 (children enrolled)"),
    Property("free_total", "integer", _free("total"), "estimated free places, all ages"),
    *(Property(f"free_age_{age}", "integer", _free(str(age)), f"estimated free places for 만 {age}세")
      for age in range(6)),
    Property("services", "array", _c.services, "services offered (twenty_four_hour, holiday, extended_hours, ...)"),
    Property("has_bus", "boolean", _c.has_bus, "runs a school bus"),
    Property("cctv_count", "integer", _c.cctv_count, "number of CCTV cameras"),
    Property("data_date", "date", _c.data_date, "date the source data describes"),
    Property("location_approximate", "boolean", _c.location_approximate,
             "the point only says which 구/동 (placed > 150 m from the published point, or at its 동/구)"),
    Property("updated_at", "date-time", _c.updated_at, "last change of the row"),
)

TILE_PROPERTIES: tuple[tuple[int, tuple[str, ...]], ...] = (
    (0, ("facility_type", "free_total")),
    (13, ("name", "facility_type", "status", "free_total", "services")),
    (15, ("name", "facility_type", "status", "capacity", "enrolled", "free_total",
          *(f"free_age_{age}" for age in range(6)), "services")),
)

LAYER = Layer(
    id="facilities",
    title="어린이집 (childcare centres)",
    description="Every childcare centre with type, status, services and estimated free places by age.",
    from_=_f,
    id_column=_c.id,
    geometry=_c.geom_4326,
    geometry_type="Point",
    properties=PROPERTIES,
    minzoom=8,
    maxzoom=18,
    tile_properties=TILE_PROPERTIES,
    temporal="data_date",
)
