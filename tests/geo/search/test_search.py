"""geo.search: every filter and error on a hand-written fixture, the index plans, and a cross-check of radius
and k-nearest against pyproj geodesics (and area membership against shapely) on the real Seoul data."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pytest
from pyproj import Geod
from shapely import Point, from_wkb
from sqlalchemy import Connection, Engine, text

from geo.domain import OPERATING_STATUSES, FacilityStatus, FacilityType, Service
from geo.errors import InvalidQuery, NotFound
from geo.search import (
    FacilityFilters,
    area_search,
    catchment_radii_m,
    catchment_search,
    nearest_search,
    nearest_statement,
    radius_search,
    radius_statement,
)
from geo.search.places import resolve_area
from geo.settings import Settings
from geo.validation import child_age, validate_point
from tests.search_data import (
    BY_KEY,
    CENTRES,
    DISTRICT_BOX,
    DISTRICT_CODE,
    EAST_BOX,
    EAST_DONG,
    GEOD,
    LAT,
    LON,
    OPERATING,
    WEST_BOX,
    WEST_DONG,
    Centre,
    expected_keys,
    insert_search_fixture,
    keys_of,
)

S = Settings(DATABASE_URL=None)


@pytest.fixture()
def ids(connection: Connection) -> dict[str, int]:
    return insert_search_fixture(connection)


def radius_keys(conn: Connection, ids: dict[str, int], radius_m: float = 1000.0, **filters: object) -> list[str]:
    page = radius_search(conn, settings=S, count='exact',
                         lat=LAT, lon=LON, radius_m=radius_m, filters=FacilityFilters.parse(**filters))  # type: ignore[arg-type]
    return keys_of(ids, [h.id for h in page.items])


# --- radius -------------------------------------------------------------------------------------------------


def test_radius_orders_by_true_distance_and_reports_metres(connection: Connection, ids: dict[str, int]) -> None:
    page = radius_search(connection, settings=S, count='exact', lat=LAT, lon=LON, radius_m=1000)
    assert keys_of(ids, [h.id for h in page.items]) == expected_keys(1000) == ["A", "B", "C"]
    assert page.number_matched == 3 and page.number_returned == 3 and page.next_offset is None
    for hit in page.items:
        centre = BY_KEY[keys_of(ids, [hit.id])[0]]
        assert hit.distance_m == pytest.approx(centre.distance_m, abs=0.05)
        _, _, geod_m = GEOD.inv(LON, LAT, hit.lon, hit.lat)
        assert hit.distance_m == pytest.approx(geod_m, abs=0.05)
        assert hit.free_by_age == centre.free_by_age
        assert set(hit.services) == set(centre.services)


@pytest.mark.parametrize("radius_m", [50, 150, 650, 2000, 3000, 6000])
def test_radius_membership(connection: Connection, ids: dict[str, int], radius_m: float) -> None:
    assert radius_keys(connection, ids, radius_m) == expected_keys(radius_m)


def test_radius_pages_are_stable_and_counted(connection: Connection, ids: dict[str, int]) -> None:
    first = radius_search(connection, settings=S, count='exact', lat=LAT, lon=LON, radius_m=3000, limit=2)
    second = radius_search(connection, settings=S, count='exact', lat=LAT, lon=LON, radius_m=3000, limit=2, offset=2)
    last = radius_search(connection, settings=S, count='exact', lat=LAT, lon=LON, radius_m=3000, limit=2, offset=4)
    beyond = radius_search(connection, settings=S, count='exact', lat=LAT, lon=LON, radius_m=3000, limit=2, offset=10)
    assert keys_of(ids, [h.id for p in (first, second, last) for h in p.items]) == expected_keys(3000)
    assert [p.number_matched for p in (first, second, last, beyond)] == [5, 5, 5, 5]
    assert (first.next_offset, second.next_offset, last.next_offset) == (2, 4, None)
    assert (first.previous_offset, second.previous_offset) == (None, 0)
    assert beyond.items == [] and beyond.next_offset is None


# --- filters (each with its expected membership derived from the fixture table) ---------------------------


@pytest.mark.parametrize(
    ("filters", "keep"),
    [
        ({"status": "all"}, lambda c: True),
        ({"status": ["suspended"]}, lambda c: c.status == "suspended"),
        ({"status": ["휴지", "폐지"]}, lambda c: c.status in {"suspended", "closed"}),
        ({"status": "operating,closed"}, lambda c: c.status != "suspended"),
        ({"services": ["extended_hours"]}, lambda c: c.status in OPERATING and "extended_hours" in c.services),
        ({"services": ["야간연장"]}, lambda c: c.status in OPERATING and "extended_hours" in c.services),
        ({"services": ["twenty_four_hour", "holiday"]},
            lambda c: c.status in OPERATING and {"twenty_four_hour", "holiday"} <= set(c.services)),
        ({"services": "24시간,휴일보육"}, lambda c: c.status in OPERATING and {"twenty_four_hour",
            "holiday"} <= set(c.services)),
        ({"services": ["twenty_four_hour", "disability_integrated"]}, lambda c: False),
        ({"services": ["twenty_four_hour", "disability_integrated"], "services_match": "any"},
         lambda c: c.status in OPERATING and bool({"twenty_four_hour", "disability_integrated"} & set(c.services))),
        ({"services": ["장애아통합"], "status": "all"}, lambda c: "disability_integrated" in c.services),
        ({"services": ["장애아전문"]}, lambda c: c.status in OPERATING and "disability_specialised" in c.services),
        ({"services": ["multicultural"], "status": "all"}, lambda c: "multicultural" in c.services),
        ({"services": ["영아전담"]}, lambda c: c.status in OPERATING and "infant_only" in c.services),
        ({"services": ["시간제보육"]}, lambda c: c.status in OPERATING and "hourly" in c.services),
        ({"types": ["home"]}, lambda c: c.status in OPERATING and c.facility_type == "home"),
        ({"types": ["국공립", "협동"], "status": "all"},
         lambda c: c.facility_type in {"national_public", "cooperative"}),
        ({"age": 2}, lambda c: c.status in OPERATING and (c.free_by_age or {}).get("2", 0) >= 1),
        ({"age": 1}, lambda c: c.status in OPERATING and (c.free_by_age or {}).get("1", 0) >= 1),
        ({"age": 2, "min_free": 4}, lambda c: c.status in OPERATING and (c.free_by_age or {}).get("2", 0) >= 4),
        ({"age": 5, "status": "all"}, lambda c: (c.free_by_age or {}).get("5", 0) >= 1),
        ({"has_bus": True, "status": "all"}, lambda c: c.has_bus is True),
        ({"has_bus": False, "status": "all"}, lambda c: c.has_bus is not True),
        ({"has_cctv": True, "status": "all"}, lambda c: (c.cctv_count or 0) > 0),
        ({"has_cctv": False, "status": "all"}, lambda c: not c.cctv_count),
        ({"name": "님"}, lambda c: c.status in OPERATING and "님" in c.name),
        ({"name": "  해님 "}, lambda c: c.status in OPERATING and "해님" in c.name),
        ({"name": "%"}, lambda c: c.status in OPERATING and "%" in c.name),
        ({"name": "_"}, lambda c: c.status in OPERATING and "_" in c.name),
        ({"name": "100%_"}, lambda c: c.status in OPERATING and "100%_" in c.name),
        ({"services": ["extended_hours"], "age": 2, "has_cctv": True},
         lambda c: c.status in OPERATING and "extended_hours" in c.services
         and (c.free_by_age or {}).get("2", 0) >= 1 and (c.cctv_count or 0) > 0),
        ({"types": "national_public,private,cooperative", "has_bus": True, "status": "all"},
         lambda c: c.facility_type in {"national_public", "private", "cooperative"} and c.has_bus is True),
    ],
)
def test_filters_alone_and_combined(connection: Connection, ids: dict[str, int], filters: dict,
                                    keep: Callable[[Centre], bool]) -> None:
    assert radius_keys(connection, ids, 6000, **filters) == expected_keys(6000, keep)


def test_filter_expectations_by_hand(connection: Connection, ids: dict[str, int]) -> None:
    """A few memberships spelled out, as a guard against a mistake shared by the table-derived checks."""
    assert radius_keys(connection, ids, 6000) == ["A", "B", "C", "F", "G", "H"]
    assert radius_keys(connection, ids, 6000, services=["extended_hours"]) == ["A", "C", "H"]
    assert radius_keys(connection, ids, 6000, age=2) == ["B", "C"]
    assert radius_keys(connection, ids, 6000, name="%") == ["G"]
    assert radius_keys(connection, ids, 6000, has_cctv=False) == ["B"]


@pytest.mark.parametrize(
    ("moment", "keep"),
    [
        # Wednesday 10:00: standard hours, every operating centre.
        (datetime(2026, 7, 22, 10, 0), lambda c: True),
        # Wednesday 21:00: extended hours or 24h.
        (datetime(2026, 7, 22, 21, 0), lambda c: bool({"extended_hours", "twenty_four_hour"} & set(c.services))),
        # Saturday 10:00: only centres that open on Saturdays (토요보육, 휴일보육 or 24h).
        (datetime(2026, 7, 25, 10, 0),
         lambda c: bool({"saturday", "holiday", "twenty_four_hour"} & set(c.services))),
        # Saturday 17:00: after Saturday closing, only 24h.
        (datetime(2026, 7, 25, 17, 0), lambda c: "twenty_four_hour" in c.services),
        # Sunday 10:00: holiday care or 24h.
        (datetime(2026, 7, 26, 10, 0), lambda c: bool({"holiday", "twenty_four_hour"} & set(c.services))),
        # Monday 17 Aug 2026 is the substitute holiday for Liberation Day: as on a Sunday.
        (datetime(2026, 8, 17, 10, 0), lambda c: bool({"holiday", "twenty_four_hour"} & set(c.services))),
        # Wednesday 03:00: only 24h.
        (datetime(2026, 7, 22, 3, 0), lambda c: "twenty_four_hour" in c.services),
        # An aware time is converted to Korean time: 01:00 UTC = 10:00 KST on Wednesday.
        (datetime(2026, 7, 22, 1, 0, tzinfo=UTC), lambda c: True),
        (datetime(2026, 7, 22, 12, 0, tzinfo=timezone(timedelta(hours=-9))),
            lambda c: "twenty_four_hour" in c.services),
    ],
)
def test_open_at(connection: Connection, ids: dict[str, int], moment: datetime,
                 keep: Callable[[Centre], bool]) -> None:
    got = radius_keys(connection, ids, 6000, open_at=moment)
    assert got == expected_keys(6000, lambda c: c.status in OPERATING and keep(c))


def test_birth_date_gives_the_age_class(connection: Connection, ids: dict[str, int]) -> None:
    # Born May 2024: from March 2026 the child is in the 만1세반 (class year 2026 - 2024 - 1).
    assert child_age(birth_date=date(2024, 5, 1), on=date(2026, 7, 1)) == 1
    filters = FacilityFilters.parse(birth_date=date(2024, 5, 1), today=date(2026, 7, 1))
    assert filters.age == 1
    page = radius_search(connection, settings=S, count='exact', lat=LAT, lon=LON, radius_m=6000, filters=filters)
    assert keys_of(ids, [h.id for h in page.items]) == ["A"]
    # In February the previous class year still runs: 만0세반.
    assert child_age(birth_date=date(2024, 5, 1), on=date(2025, 2, 28)) == 0


def test_filter_sql_binds_every_value() -> None:
    filters = FacilityFilters.parse(services=["twenty_four_hour"], types=["home"], age=3,
        name="x'; DROP TABLE facilities; --",
                                    open_at=datetime(2026, 7, 22, 21, 0), has_bus=True, has_cctv=True)
    where, params = filters.where()
    where_text = where.as_string(None)
    assert "DROP" not in where_text and "twenty_four_hour" not in where_text and "home" not in where_text
    assert params["flt_name"] == "%x'; DROP TABLE facilities; --%"
    assert params["flt_services"] == ["twenty_four_hour"] and params["flt_types"] == ["home"] and params["flt_age"] == "3"
    where, params = FacilityFilters(statuses=None).where()
    assert where.as_string(None) == "TRUE" and params == {}


def test_parse_accepts_values_and_labels() -> None:
    filters = FacilityFilters.parse(services=["휴일보육", "twenty_four_hour", "holiday"], types="가정", status="정상")
    assert filters.services == (Service.holiday, Service.twenty_four_hour)
    assert filters.facility_types == (FacilityType.home,)
    assert filters.statuses == (FacilityStatus.active,)
    assert FacilityFilters.parse().statuses == OPERATING_STATUSES
    assert FacilityFilters.parse(status="all").statuses is None


# --- nearest ------------------------------------------------------------------------------------------------


def test_nearest_k_and_max_distance(connection: Connection, ids: dict[str, int]) -> None:
    page = nearest_search(connection, settings=S, count='exact', lat=LAT, lon=LON, k=2, max_distance_m=6000)
    assert keys_of(ids, [h.id for h in page.items]) == ["A", "B"]
    assert page.number_matched == len(expected_keys(6000)) and page.next_offset == 2
    assert [h.distance_m for h in page.items] == pytest.approx([100.0, 300.0], abs=0.05)

    within = nearest_search(connection, settings=S, count='exact', lat=LAT, lon=LON, k=5, max_distance_m=200)
    assert keys_of(ids, [h.id for h in within.items]) == ["A"] and within.number_matched == 1

    paged = nearest_search(connection, settings=S, count='exact', lat=LAT, lon=LON, k=3, offset=1, max_distance_m=2000)
    assert keys_of(ids, [h.id for h in paged.items]) == expected_keys(2000)[1:4] == ["B", "C", "F"]
    assert paged.number_matched == 4 and paged.next_offset is None

    filtered = nearest_search(connection, settings=S, count='exact', lat=LAT, lon=LON, k=2, max_distance_m=6000,
                              filters=FacilityFilters.parse(services=["multicultural"], status="all"))
    assert keys_of(ids, [h.id for h in filtered.items]) == ["E", "H"]


def test_nearest_without_max_distance_starts_with_the_fixture(connection: Connection, ids: dict[str, int]) -> None:
    # Without a distance bound other data in the database counts too, but nothing is nearer than Ulleungdo's.
    page = nearest_search(connection, settings=S, count='exact', lat=LAT, lon=LON, k=6)
    assert keys_of(ids, [h.id for h in page.items]) == ["A", "B", "C", "F", "G", "H"]
    assert page.number_matched >= 6


# --- area ---------------------------------------------------------------------------------------------------


def _inside(box_geom, keep: Callable[[Centre], bool] = lambda c: c.status in OPERATING) -> set[str]:  # type: ignore[no-untyped-def]
    return {c.key for c in CENTRES if box_geom.covers(Point(c.lonlat)) and keep(c)}


@pytest.mark.parametrize(
    ("district", "dong", "box_name"),
    [
        ("가상구", None, "district"), (DISTRICT_CODE, None, "district"),
        (None, EAST_DONG["kostat_code"], "east"), (None, EAST_DONG["mois_code"], "east"),
        ("가상구", "가상1동", "east"), (None, "가상2동", "west"), (DISTRICT_CODE, WEST_DONG["mois_code"], "west"),
    ],
)
def test_area_point_in_polygon(connection: Connection, ids: dict[str, int], district: str | None,
                               dong: str | None, box_name: str) -> None:
    box_geom = {"district": DISTRICT_BOX, "east": EAST_BOX, "west": WEST_BOX}[box_name]
    page = area_search(connection, settings=S, count='exact', district=district, dong=dong)
    got = keys_of(ids, [h.id for h in page.items])
    assert set(got) == _inside(box_geom) and page.number_matched == len(got)
    # Without a point: by name; with one: by distance, filled in.
    assert [h.name for h in page.items] == sorted(h.name for h in page.items)
    assert all(h.distance_m is None for h in page.items)
    near = area_search(connection, settings=S, count='exact', district=district, dong=dong, lat=LAT, lon=LON)
    assert keys_of(ids, [h.id for h in near.items]) == [c.key for c in sorted(CENTRES, key=lambda c: c.distance_m)
                                                        if c.key in set(got)]


def test_area_filters_and_pages(connection: Connection, ids: dict[str, int]) -> None:
    page = area_search(connection, settings=S, count='exact',
                       district="가상구", filters=FacilityFilters.parse(status="all"), limit=3)
    assert page.number_matched == len(_inside(DISTRICT_BOX, lambda c: True)) == 7 and page.next_offset == 3
    rest = area_search(connection, settings=S, count='exact',
                       district="가상구", filters=FacilityFilters.parse(status="all"), limit=3, offset=3)
    beyond = area_search(connection, settings=S, count='exact',
                         district="가상구", filters=FacilityFilters.parse(status="all"), offset=50)
    assert {h.id for h in page.items}.isdisjoint({h.id for h in rest.items})
    assert beyond.items == [] and beyond.number_matched == 7
    bus = area_search(connection, settings=S, count='exact',
                      district="가상구", filters=FacilityFilters.parse(has_bus=True))
    assert set(keys_of(ids, [h.id for h in bus.items])) == _inside(
        DISTRICT_BOX, lambda c: c.status in OPERATING and c.has_bus is True)


def test_area_errors(connection: Connection, ids: dict[str, int]) -> None:
    with pytest.raises(InvalidQuery, match="ambiguous") as ambiguous:
        resolve_area(connection, dong="가상1동")
    assert {c["district_code"] for c in ambiguous.value.extra["candidates"]} == {"99901", "99902"}
    assert resolve_area(connection, district="모의구", dong="가상1동").kostat_code == "9990201"
    with pytest.raises(NotFound):
        resolve_area(connection, district="없는구")
    with pytest.raises(NotFound):
        resolve_area(connection, dong="없는동")
    with pytest.raises(NotFound):
        resolve_area(connection, district="모의구", dong="가상2동")
    with pytest.raises(InvalidQuery, match="district"):
        area_search(connection, settings=S)
    with pytest.raises(InvalidQuery, match="both lat and lon"):
        area_search(connection, settings=S, count='exact', district="가상구", lat=LAT)


# --- catchment ----------------------------------------------------------------------------------------------


def test_catchment_uses_type_radii(connection: Connection, ids: dict[str, int]) -> None:
    settings = Settings()
    radii = settings.search.catchment_radius_m
    page = catchment_search(connection, count='exact', lat=LAT, lon=LON, settings=settings)
    expected = [c.key for c in sorted(CENTRES, key=lambda c: c.distance_m)
                if c.status in OPERATING and c.distance_m <= radii[c.facility_type]]
    assert keys_of(ids, [h.id for h in page.items]) == expected
    for hit in page.items:
        assert hit.catchment_radius_m == radii[hit.facility_type]
        assert hit.distance_m is not None and hit.distance_m <= hit.catchment_radius_m


def test_catchment_infant_factor_and_configuration(connection: Connection, ids: dict[str, int]) -> None:
    # 가정 B is 300 m away: inside a 400 m catchment, outside 400 x 0.7 = 280 m for an infant.
    settings = Settings(DOLBOM_CATCHMENT_RADIUS_M={"home": 400, "가정": 400, "national_public": 50},
                        DOLBOM_CATCHMENT_INFANT_FACTOR=0.7)
    assert catchment_radii_m(age=1, settings=settings) == pytest.approx({"home": 280.0, "national_public": 35.0})
    assert catchment_radii_m(age=4, settings=settings) == {"home": 400.0, "national_public": 50.0}
    with pytest.raises(ValueError, match="unknown facility type 'castle'"):
        catchment_radii_m(settings=Settings(DOLBOM_CATCHMENT_RADIUS_M={"castle": 100}))

    def keys(**filters: object) -> list[str]:
        page = catchment_search(connection, count='exact', lat=LAT, lon=LON, settings=settings,
                                filters=FacilityFilters.parse(**filters))  # type: ignore[arg-type]
        return keys_of(ids, [h.id for h in page.items])

    assert keys() == ["B"]  # A (national_public) is 100 m away, beyond its 50 m catchment
    assert keys(age=4, min_free=0) == ["B"]
    assert keys(age=1, min_free=0) == []
    assert keys(age=0) == []  # B has a free place at age 0 but is outside the infant catchment
    wide = Settings(DOLBOM_CATCHMENT_RADIUS_M={"home": 1000})
    page = catchment_search(connection, count='exact', lat=LAT, lon=LON, settings=wide, filters=FacilityFilters.parse(age=0))
    assert keys_of(ids, [h.id for h in page.items]) == ["B"]
    assert page.items[0].catchment_radius_m == pytest.approx(1000 * wide.search.catchment_infant_factor)


# --- validation ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lat": 127.0, "lon": 37.5}, "swapped"),
        ({"lat": 126.9, "lon": 37.55}, "swapped"),
        ({"lat": 95.0, "lon": 127.0}, "between -90 and 90"),
        ({"lat": 37.5, "lon": 190.0}, "between -180 and 180"),
        ({"lat": 35.0, "lon": 140.0}, "outside Korea"),
        ({"lat": 40.0, "lon": 127.0}, "outside Korea"),
        ({"lat": 0.0, "lon": 0.0}, "outside Korea"),
        ({"lat": math.nan, "lon": 127.0}, "finite"),
        ({"lat": 37.5, "lon": math.inf}, "finite"),
    ],
)
def test_bad_points(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(InvalidQuery, match=message):
        validate_point(**kwargs)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: radius_search(c, settings=S, count='exact', lat=LAT, lon=LON, radius_m=0), "positive"),
        (lambda c: radius_search(c, settings=S, count='exact', lat=LAT, lon=LON, radius_m=-5), "positive"),
        (lambda c: radius_search(c, settings=S, count='exact', lat=LAT, lon=LON, radius_m=50_001), "at most 50000"),
        (lambda c: radius_search(c, settings=S, count='exact', lat=LAT, lon=LON, radius_m=math.nan), "positive"),
        (lambda c: radius_search(c, settings=S, count='exact',
                                 lat=LAT, lon=LON, radius_m=100, limit=0), "limit must be between 1 and 500"),
        (lambda c: radius_search(c, settings=S, count='exact',
                                 lat=LAT, lon=LON, radius_m=100, limit=501), "limit must be between 1 and 500"),
        (lambda c: radius_search(c, settings=S, count='exact', lat=LAT, lon=LON, radius_m=100, offset=-1), "offset"),
        (lambda c: radius_search(c, settings=S, count='exact', lat=127.0, lon=37.5, radius_m=100), "swapped"),
        (lambda c: nearest_search(c, settings=S, count='exact', lat=LAT, lon=LON, k=0), "k must be between"),
        (lambda c: nearest_search(c, settings=S, count='exact', lat=LAT, lon=LON, k=501), "k must be between"),
        (lambda c: nearest_search(c, settings=S, count='exact', lat=LAT, lon=LON, max_distance_m=0), "max_distance_m"),
        (lambda c: nearest_search(c, settings=S, count='exact',
                                  lat=LAT, lon=LON, max_distance_m=60_000), "max_distance_m"),
        (lambda c: catchment_search(c, settings=S, count='exact', lat=37.5, lon=140.0), "outside Korea"),
        (lambda c: catchment_search(c, settings=S, count='exact', lat=LAT, lon=LON, limit=1000), "limit"),
        (lambda c: area_search(c, settings=S, count='exact', district="가상구", limit=0), "limit"),
        (lambda c: area_search(c, settings=S, count='exact', district="가상구", lat=127.0, lon=37.5), "swapped"),
    ],
)
def test_bad_search_arguments(connection: Connection, call: Callable[[Connection], object], message: str) -> None:
    with pytest.raises(InvalidQuery, match=message):
        call(connection)


def test_limits_follow_settings(connection: Connection, ids: dict[str, int]) -> None:
    small = Settings(DOLBOM_MAX_PAGE_LIMIT=2, DOLBOM_MAX_RADIUS_M=500)
    with pytest.raises(InvalidQuery, match="between 1 and 2"):
        radius_search(connection, count='exact', lat=LAT, lon=LON, radius_m=100, limit=3, settings=small)
    with pytest.raises(InvalidQuery, match="at most 500"):
        radius_search(connection, count='exact', lat=LAT, lon=LON, radius_m=600, limit=2, settings=small)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"services": ["sauna"]}, "unknown service 'sauna'"),
        ({"services": "24h,사우나"}, "unknown service '사우나'"),
        ({"types": ["castle"]}, "unknown facility type"),
        ({"status": ["open"]}, "unknown status"),
        ({"status": ["all", "active"]}, "unknown status"),
        ({"services_match": "some"}, "service_match"),
        ({"age": 6}, "age must be"),
        ({"age": -1}, "age must be"),
        ({"birth_date": date(2099, 1, 1)}, "in the future"),
        ({"birth_date": date(2015, 1, 1), "today": date(2026, 7, 1)}, "만10세반"),
        ({"age": 2, "birth_date": date(2024, 1, 1)}, "not both"),
        ({"min_free": -1}, "min_free"),
        ({"name": "가" * 101}, "at most 100"),
    ],
)
def test_bad_filters(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidQuery, match=message):
        FacilityFilters.parse(**kwargs)


# --- plans --------------------------------------------------------------------------------------------------


def _plan(conn: Connection, statement) -> str:  # type: ignore[no-untyped-def]
    from psycopg import sql

    from geo.db import driver_connection

    with driver_connection(conn).cursor() as cur:
        rows = cur.execute(sql.SQL("EXPLAIN {}").format(statement.page_sql), statement.params).fetchall()
    return "\n".join(r[0] for r in rows)


def test_radius_and_knn_can_use_the_geography_index(connection: Connection, ids: dict[str, int]) -> None:
    # The fixture is too small for the planner to prefer an index on its own; forbidding sequential scans shows
    # that the predicates match the index expression (geom_4326::geography).
    connection.execute(text("SET LOCAL enable_seqscan = off"))
    plan = _plan(connection, radius_statement(lat=LAT, lon=LON, radius_m=1000, settings=S,
                                              filters=FacilityFilters.parse(services=["extended_hours"])))
    assert "ix_facilities_geog" in plan and "st_dwithin" in plan.lower()
    # Without a status filter the KNN ordering itself must come from the index.
    plan = _plan(connection, nearest_statement(lat=LAT, lon=LON, k=10, settings=S,
                                               filters=FacilityFilters(statuses=None)))
    assert "Index Scan using ix_facilities_geog" in plan and "Order By" in plan and "<->" in plan


# --- the real Seoul data --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seoul(seoul_engine: Engine) -> dict:
    """Operating facilities read back with a plain SELECT, and 100 random points inside Seoul's 구."""
    with seoul_engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT id, ST_X(geom_4326) AS lon, ST_Y(geom_4326) AS lat, services, status
            FROM facilities""")).all()
        districts = [from_wkb(bytes(r[0])) for r in conn.execute(text(
            "SELECT ST_AsBinary(geom_4326) FROM districts WHERE code LIKE '11%'"))]
    from shapely import union_all

    seoul_geom = union_all(districts)
    rng = np.random.default_rng(20260721)
    points: list[tuple[float, float]] = []
    minx, miny, maxx, maxy = seoul_geom.bounds
    while len(points) < 100:
        lon, lat = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if seoul_geom.contains(Point(lon, lat)):
            points.append((float(lon), float(lat)))
    return {
        "ids": np.array([r.id for r in rows]), "lon": np.array([r.lon for r in rows]),
        "lat": np.array([r.lat for r in rows]), "operating": np.array([r.status in OPERATING for r in rows]),
        "extended": np.array(["extended_hours" in (r.services or []) for r in rows]), "points": points,
    }


def _geod_m(data: dict, lon: float, lat: float) -> np.ndarray:
    n = len(data["ids"])
    _, _, dist = Geod(ellps="WGS84").inv(np.full(n, lon), np.full(n, lat), data["lon"], data["lat"])
    return np.asarray(dist)


TOLERANCE_M = 0.5


def _check_ordered(hits: list, expected_ids: list[int], expected_d: list[float], by_id_d: dict[int, float],
                   *, boundary_m: float | None) -> None:
    got = [h.id for h in hits]
    for hit in hits:
        assert hit.distance_m == pytest.approx(by_id_d[hit.id], abs=TOLERANCE_M)
    assert [h.distance_m for h in hits] == sorted(h.distance_m for h in hits)
    # Same set, except centres whose distance ties the boundary within the tolerance.
    if boundary_m is not None:
        unsure = {i for i in set(got) ^ set(expected_ids) if abs(by_id_d[i] - boundary_m) <= TOLERANCE_M}
        assert set(got) ^ set(expected_ids) == unsure
    # Same order up to near-ties: the i-th distance agrees.
    assert len(got) == len(expected_ids)
    assert [by_id_d[i] for i in got] == pytest.approx(expected_d, abs=TOLERANCE_M)


@pytest.mark.slow
def test_radius_matches_pyproj_on_seoul(seoul_engine: Engine, seoul: dict) -> None:
    total = 0
    with seoul_engine.connect() as conn:
        for lon, lat in seoul["points"]:
            dist = _geod_m(seoul, lon, lat)
            with_service = seoul["operating"] & seoul["extended"]
            for service, mask in ((None, seoul["operating"]), ("extended_hours", with_service)):
                inside = mask & (dist <= 1000.0)
                order = np.lexsort((seoul["ids"][inside], dist[inside]))
                expected_ids = [int(i) for i in seoul["ids"][inside][order]]
                expected_d = [float(d) for d in dist[inside][order]]
                filters = FacilityFilters.parse(services=[service] if service else None)
                page = radius_search(conn, settings=S, count='exact',
                                     lat=lat, lon=lon, radius_m=1000, filters=filters, limit=500)
                assert page.number_matched == page.number_returned
                by_id_d = dict(zip(seoul["ids"].tolist(), dist.tolist(), strict=True))
                _check_ordered(page.items, expected_ids, expected_d, by_id_d, boundary_m=1000.0)
                total += page.number_returned
    assert total > 1000  # the points are in a city full of centres: the comparison is not vacuous


@pytest.mark.slow
def test_nearest_matches_pyproj_on_seoul(seoul_engine: Engine, seoul: dict) -> None:
    with seoul_engine.connect() as conn:
        for lon, lat in seoul["points"]:
            dist = _geod_m(seoul, lon, lat)
            mask = seoul["operating"]
            order = np.lexsort((seoul["ids"][mask], dist[mask]))
            expected_ids = [int(i) for i in seoul["ids"][mask][order][:10]]
            expected_d = [float(d) for d in dist[mask][order][:10]]
            page = nearest_search(conn, settings=S, count='exact', lat=lat, lon=lon, k=10)
            assert page.number_returned == 10 and page.number_matched == int(mask.sum())
            by_id_d = dict(zip(seoul["ids"].tolist(), dist.tolist(), strict=True))
            _check_ordered(page.items, expected_ids, expected_d, by_id_d, boundary_m=expected_d[-1])


@pytest.mark.slow
def test_area_matches_shapely_on_seoul(seoul_engine: Engine, seoul: dict) -> None:
    with seoul_engine.connect() as conn:
        districts = conn.execute(text("""
            SELECT code, name, ST_AsBinary(geom_4326) AS wkb FROM districts WHERE code LIKE '11%'
            ORDER BY code LIMIT 4""")).all()
        dongs = conn.execute(text("""
            SELECT a.kostat_code, a.name, ST_AsBinary(a.geom_4326) AS wkb FROM admin_dongs a
            WHERE a.district_code LIKE '11%' ORDER BY a.kostat_code LIMIT 6""")).all()
        for kind, key, wkb in [("district", r.code, r.wkb) for r in districts] + \
                              [("dong", r.kostat_code, r.wkb) for r in dongs]:
            geom = from_wkb(bytes(wkb))
            expected = {int(i) for i, x, y, op in zip(seoul["ids"], seoul["lon"], seoul["lat"], seoul["operating"],
                                                      strict=True) if op and geom.covers(Point(x, y))}
            got: set[int] = set()
            offset = 0
            while True:
                page = area_search(conn, settings=S, count='exact', district=key if kind == "district" else None,
                                   dong=key if kind == "dong" else None, limit=500, offset=offset)
                got |= {h.id for h in page.items}
                if page.next_offset is None:
                    break
                offset = page.next_offset
            assert got == expected and page.number_matched == len(expected)


@pytest.mark.slow
def test_plans_use_the_geography_index_on_seoul(seoul_engine: Engine) -> None:
    """On the real data (statistics fresh) the planner picks ix_facilities_geog unforced."""
    with seoul_engine.connect() as conn:
        conn.execute(text("ANALYZE facilities"))
        radius_plan = _plan(conn, radius_statement(lat=37.5563, lon=126.9220, radius_m=1000, settings=S,
                                                   filters=FacilityFilters.parse(services=["extended_hours"])))
        knn_plan = _plan(conn, nearest_statement(lat=37.5563, lon=126.9220, k=10, settings=S,
                                                 filters=FacilityFilters.parse(services=["extended_hours"])))
    assert "ix_facilities_geog" in radius_plan, radius_plan
    assert "Index Scan using ix_facilities_geog" in knn_plan and "<->" in knn_plan, knn_plan
