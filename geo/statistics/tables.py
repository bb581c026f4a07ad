"""보육통계: the city's childcare statistics as named tables, each one SQL statement over the live tables.

A table is computed for one area level (``city``: the 시도; ``sigungu``: 구; ``dong``: 행정동) and optionally one
구 (5-digit code). Its rows are plain dicts keyed by the columns' names; every column has a Korean and an English
label and a kind (``key``: a grouping column; ``count``/``sum``: integers; ``percent``; ``days``; ``date``).

Definitions (the docs' "Statistics" page states them for readers):

- Only operating centres (정상/재개) count in ``places``, ``free_places``, ``staff`` and ``equipment``; ``centres``
  counts every centre by its 운영현황, so closures are visible.
- ``utilisation_pct`` = 현원 / 정원 × 100 (one decimal, half away from zero), null without 정원.
- ``free_places`` are the estimated free places by class age (``facilities.free_by_age``: the official snapshot or
  the centre's newer live report).
- ``history`` comes from ``facility_observations`` (what each imported snapshot said of each centre), so it has
  one row per snapshot date and area; ``vacancy_reports`` counts the centres' live reports per month.
- ``waitlist``: entries by class age (반) of the current rows, offers by outcome, and the median days from
  application to an accepted offer. ``bookings``: bookings of care slots by service and status.

Area keys: the 시도 name for ``city``, the 5-digit 구 code for ``sigungu``, the 행정동 code (행정기관코드, else the
KOSTAT code) for ``dong``; a centre without a 행정동 is counted under ``dong_code`` null. Every value is bound; the
SQL fragments are fixed per level (never text from a request).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, text

from geo.domain import FACILITY_STATUS_KO, FACILITY_TYPE_KO, OPERATING_STATUS_VALUES, SERVICE_KO
from geo.errors import InvalidQuery, NotFound


class Level(StrEnum):
    """The area a row of a statistics table stands for."""

    city = "city"
    sigungu = "sigungu"
    dong = "dong"


@dataclass(frozen=True)
class Column:
    """One column: its name in rows and files, labels, and kind."""

    name: str
    ko: str
    en: str
    kind: str  # key | count | sum | percent | days | date | text

    def label(self, lang: str) -> str:
        """The label in ``lang`` (Korean unless ``en``)."""
        return self.en if lang == "en" else self.ko


@dataclass(frozen=True)
class Definition:
    """A statistics table: what it counts, its columns after the area columns, and its SQL.

    ``sql`` holds ``{area}`` (the area's select list), ``{joins}`` (joins that give the area), ``{group}`` (its
    grouping expressions) and ``{where}`` (the 구 filter); the fragments come from ``_AREAS``, never from input."""

    id: str
    ko: str
    en: str
    about_ko: str
    about_en: str
    columns: tuple[Column, ...]
    sql: str
    order: str
    #: The table's series for a chart: (x column, y column, colour column or None).
    chart: tuple[str, str, str | None]
    #: The finest area it is published for: the waitlist and bookings stop at the 구, since a 행정동's counts of
    #: a few applications would come close to naming families.
    finest: Level = Level.dong


@dataclass(frozen=True)
class Table:
    """A computed table."""

    definition: Definition
    level: Level
    district_code: str | None
    columns: tuple[Column, ...]
    rows: list[dict[str, Any]]

    def as_dict(self, lang: str = "ko") -> dict[str, Any]:
        """JSON-friendly form with labels in ``lang``."""
        d = self.definition
        return {"id": d.id, "title": d.en if lang == "en" else d.ko,
                "about": d.about_en if lang == "en" else d.about_ko,
                "level": self.level.value, "district_code": self.district_code,
                "columns": [{"name": c.name, "label": c.label(lang), "kind": c.kind} for c in self.columns],
                "rows": self.rows, "value_names": self.value_names(lang)}

    def value_names(self, lang: str) -> dict[str, dict[str, str]]:
        """The names of the coded values in the rows (``{"facility_type": {"home": "가정", ...}}``)."""
        out: dict[str, dict[str, str]] = {}
        for c in self.columns:
            if c.kind == "key":
                named = {v: value_name(self.definition.id, c.name, v, lang) for v in {r.get(c.name) for r in self.rows}
                         if isinstance(v, str)}
                if any(k != v for k, v in named.items()):
                    out[c.name] = named
        return out


_AREA_COLUMNS: dict[Level, tuple[Column, ...]] = {
    Level.city: (Column("sido_name", "시도", "Province", "key"),),
    Level.sigungu: (Column("district_code", "시군구 코드", "District code", "key"),
                    Column("district_name", "시군구", "District", "key")),
    Level.dong: (Column("district_code", "시군구 코드", "District code", "key"),
                 Column("dong_code", "행정동 코드", "Dong code", "key"),
                 Column("dong_name", "행정동", "Dong", "key")),
}

# (select list, joins from facilities f, group by) per level.
_AREAS: dict[Level, tuple[str, str, str]] = {
    Level.city: ("f.sido_name AS sido_name", "", "f.sido_name"),
    Level.sigungu: ("f.district_code AS district_code, d.name AS district_name",
                    "LEFT JOIN districts d ON d.code = f.district_code", "f.district_code, d.name"),
    Level.dong: ("f.district_code AS district_code, coalesce(a.mois_code, a.kostat_code) AS dong_code, "
                 "a.name AS dong_name",
                 "LEFT JOIN admin_dongs a ON a.id = f.admin_dong_id",
                 "f.district_code, coalesce(a.mois_code, a.kostat_code), a.name"),
}

_IN_DISTRICT = "(CAST(:district AS text) IS NULL OR f.district_code = :district)"
AGES = ("0", "1", "2", "3", "4", "5")
STAFF_ROLES = (("director", "원장", "Directors"), ("teacher", "보육교사", "Teachers"),
               ("special_teacher", "특수교사", "Special-needs teachers"), ("therapist", "치료사", "Therapists"),
               ("nurse", "간호사", "Nurses"), ("nurse_aide", "간호조무사", "Nurse aides"),
               ("nutritionist", "영양사", "Nutritionists"), ("cook", "조리원", "Cooks"),
               ("office", "사무직원", "Office staff"), ("total", "전체 교직원", "All staff"))
_FACILITY_TYPE = Column("facility_type", "유형", "Type", "key")

DEFINITIONS: dict[str, Definition] = {d.id: d for d in (
    Definition(
        "centres", "어린이집 수 (유형·운영현황별)", "Centres by type and status",
        "모든 어린이집을 유형과 운영현황(정상·재개·휴지·폐지·목록 제외)별로 셉니다.",
        "Every centre, by type and 운영현황 (active, reopened, suspended, closed, unlisted).",
        (_FACILITY_TYPE, Column("status", "운영현황", "Status", "key"),
         Column("centres", "어린이집", "Centres", "count")),
        """SELECT {area}, f.facility_type, f.status, count(*) AS centres
           FROM facilities f {joins} WHERE {where} GROUP BY {group}, f.facility_type, f.status""",
        "f.facility_type, f.status", ("facility_type", "centres", "status")),
    Definition(
        "places", "정원·현원·이용률 (유형별)", "Places, children and utilisation by type",
        "운영 중인(정상·재개) 어린이집의 정원과 현원, 이용률(현원/정원).",
        "Operating centres (active or reopened): places (정원), children enrolled (현원), utilisation.",
        (_FACILITY_TYPE, Column("centres", "어린이집", "Centres", "count"),
         Column("capacity", "정원", "Places", "sum"), Column("enrolled", "현원", "Children", "sum"),
         Column("utilisation_pct", "이용률(%)", "Utilisation (%)", "percent")),
        """SELECT {area}, f.facility_type, count(*) AS centres, sum(f.capacity) AS capacity,
                  sum(f.enrolled) AS enrolled,
                  round(sum(f.enrolled)::numeric * 100 / nullif(sum(f.capacity), 0), 1) AS utilisation_pct
           FROM facilities f {joins} WHERE {where} AND f.status = ANY(:operating)
           GROUP BY {group}, f.facility_type""",
        "f.facility_type", ("facility_type", "capacity", None)),
    Definition(
        "free_places", "빈자리 (반 연령별)", "Free places by class age",
        "운영 중인 어린이집의 추정 빈자리(공식 자료 또는 더 새로운 어린이집의 실시간 보고).",
        "Estimated free places of operating centres (official snapshot or the centre's newer live report).",
        tuple(Column(f"free_{a}", f"만 {a}세반", f"Age {a}", "sum") for a in AGES)
        + (Column("free_total", "합계(정원−현원)", "Total (places − children)", "sum"),),
        """SELECT {area}, sum((f.free_by_age->>'0')::int) AS free_0, sum((f.free_by_age->>'1')::int) AS free_1,
                  sum((f.free_by_age->>'2')::int) AS free_2, sum((f.free_by_age->>'3')::int) AS free_3,
                  sum((f.free_by_age->>'4')::int) AS free_4, sum((f.free_by_age->>'5')::int) AS free_5,
                  sum((f.free_by_age->>'total')::int) AS free_total
           FROM facilities f {joins} WHERE {where} AND f.status = ANY(:operating) GROUP BY {group}""",
        "1", ("area", "free_total", None)),
    Definition(
        "staff", "교직원 (직종별)", "Staff by role",
        "운영 중인 어린이집의 교직원 수(공개된 교직원현황).", "Staff of operating centres (published 교직원현황).",
        tuple(Column(role, ko, en, "sum") for role, ko, en in STAFF_ROLES),
        """SELECT {area}, sum((f.staff_by_role->>'director')::int) AS director,
                  sum((f.staff_by_role->>'teacher')::int) AS teacher,
                  sum((f.staff_by_role->>'special_teacher')::int) AS special_teacher,
                  sum((f.staff_by_role->>'therapist')::int) AS therapist,
                  sum((f.staff_by_role->>'nurse')::int) AS nurse,
                  sum((f.staff_by_role->>'nurse_aide')::int) AS nurse_aide,
                  sum((f.staff_by_role->>'nutritionist')::int) AS nutritionist,
                  sum((f.staff_by_role->>'cook')::int) AS cook, sum((f.staff_by_role->>'office')::int) AS office,
                  sum((f.staff_by_role->>'total')::int) AS total
           FROM facilities f {joins} WHERE {where} AND f.status = ANY(:operating) GROUP BY {group}""",
        "1", ("area", "teacher", None)),
    Definition(
        "equipment", "CCTV·통학차량", "CCTV and buses",
        "운영 중인 어린이집 중 CCTV를 설치한 곳, CCTV 대수, 통학차량을 운영하는 곳.",
        "Operating centres with CCTV, their cameras, and centres running a bus.",
        (Column("centres", "어린이집", "Centres", "count"),
         Column("centres_with_cctv", "CCTV 설치", "With CCTV", "count"),
         Column("cctv_cameras", "CCTV 대수", "CCTV cameras", "sum"),
         Column("centres_with_bus", "통학차량 운영", "With a bus", "count")),
        """SELECT {area}, count(*) AS centres, count(*) FILTER (WHERE f.cctv_count > 0) AS centres_with_cctv,
                  sum(f.cctv_count) AS cctv_cameras, count(*) FILTER (WHERE f.has_bus) AS centres_with_bus
           FROM facilities f {joins} WHERE {where} AND f.status = ANY(:operating) GROUP BY {group}""",
        "1", ("area", "centres_with_cctv", None)),
    Definition(
        "history", "시점별 추이 (스냅숏)", "Over time (snapshots)",
        "가져온 각 공식 스냅숏이 말한 운영 어린이집 수, 정원, 현원.",
        "What each imported official snapshot said: operating centres, places and children.",
        (Column("snapshot_date", "기준일", "Snapshot date", "date"),
         Column("centres", "운영 어린이집", "Operating centres", "count"),
         Column("capacity", "정원", "Places", "sum"), Column("enrolled", "현원", "Children", "sum")),
        """SELECT {area}, o.snapshot_date, count(*) AS centres, sum(o.capacity) AS capacity, sum(o.enrolled) AS enrolled
           FROM facility_observations o JOIN facilities f ON f.id = o.facility_id {joins}
           WHERE {where} AND o.status = ANY(:operating) GROUP BY {group}, o.snapshot_date""",
        "o.snapshot_date", ("snapshot_date", "capacity", "area")),
    Definition(
        "vacancy_reports", "실시간 빈자리 보고 (월별)", "Live vacancy reports by month",
        "어린이집이 직접 보고한 빈자리 보고 수와 보고한 어린이집 수(서울 시각 기준 월).",
        "Vacancy reports made by the centres themselves, and the centres reporting (month in Seoul time).",
        (Column("month", "월", "Month", "key"), Column("reports", "보고", "Reports", "count"),
         Column("centres_reporting", "보고한 어린이집", "Centres reporting", "count")),
        """SELECT {area}, to_char(r.reported_at AT TIME ZONE 'Asia/Seoul', 'YYYY-MM') AS month, count(*) AS reports,
                  count(DISTINCT r.facility_id) AS centres_reporting
           FROM vacancy_reports r JOIN facilities f ON f.id = r.facility_id {joins}
           WHERE {where} GROUP BY {group}, to_char(r.reported_at AT TIME ZONE 'Asia/Seoul', 'YYYY-MM')""",
        "month", ("month", "reports", "area")),
    Definition(
        "waitlist", "입소대기 (반 연령별)", "Waitlist by class age",
        "입소대기 신청(현재 행)과 입소 제안의 결과, 신청부터 제안 수락까지 걸린 일수의 중앙값.",
        "Waitlist applications (current rows), offers by outcome, and the median days from application to an "
        "accepted offer.",
        (Column("age_class", "반(만 나이)", "Class age", "key"),
         Column("applications", "신청", "Applications", "count"),
         Column("waiting", "대기 중", "Waiting", "count"), Column("admitted", "입소", "Admitted", "count"),
         Column("offers", "제안", "Offers", "count"), Column("offers_accepted", "수락", "Accepted", "count"),
         Column("offers_declined", "거절", "Declined", "count"),
         Column("offers_expired", "기한 경과", "Expired", "count"),
         Column("median_wait_days", "대기 일수 중앙값", "Median wait (days)", "days")),
        """SELECT {area}, e.age_class, count(*) AS applications,
                  count(*) FILTER (WHERE e.status = 'waiting') AS waiting,
                  count(*) FILTER (WHERE e.status = 'admitted') AS admitted,
                  coalesce(sum(o.offers), 0) AS offers, coalesce(sum(o.accepted), 0) AS offers_accepted,
                  coalesce(sum(o.declined), 0) AS offers_declined, coalesce(sum(o.expired), 0) AS offers_expired,
                  round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM o.accepted_at - e.applied_at)
                         / 86400))::numeric, 1) AS median_wait_days
           FROM waitlist_entries e JOIN facilities f ON f.id = e.facility_id {joins}
           LEFT JOIN LATERAL (SELECT count(*) AS offers, count(*) FILTER (WHERE w.status = 'accepted') AS accepted,
                                     count(*) FILTER (WHERE w.status = 'declined') AS declined,
                                     count(*) FILTER (WHERE w.status = 'expired') AS expired,
                                     min(w.answered_at) FILTER (WHERE w.status = 'accepted') AS accepted_at
                              FROM waitlist_offers w WHERE w.entry_id = e.id) o ON true
           WHERE {where} GROUP BY {group}, e.age_class""",
        "e.age_class", ("age_class", "applications", None), Level.sigungu),
    Definition(
        "bookings", "시간제·휴일·야간 돌봄 예약 (서비스별)", "Care bookings by service",
        "예약 가능한 돌봄 시간대(휴일·야간·24시간·시간제)의 예약 수를 서비스와 상태별로 셉니다.",
        "Bookings of care slots (holiday, night, 24-hour, hourly) by service and status.",
        (Column("service", "서비스", "Service", "key"), Column("status", "상태", "Status", "key"),
         Column("bookings", "예약", "Bookings", "count")),
        """SELECT {area}, s.service, b.status, count(*) AS bookings
           FROM bookings b JOIN booking_slots s ON s.id = b.slot_id JOIN facilities f ON f.id = s.facility_id {joins}
           WHERE {where} GROUP BY {group}, s.service, b.status""",
        "s.service, b.status", ("service", "bookings", "status"), Level.sigungu),
)}


_TYPE_EN = {"national_public": "Public", "social_welfare": "Social welfare", "corporate_group": "Corporate",
            "private": "Private", "home": "Home-based", "cooperative": "Cooperative", "workplace": "Workplace"}
_STATUS_EN = {"active": "Active", "reopened": "Reopened", "suspended": "Suspended", "closed": "Closed",
              "unlisted": "Unlisted"}
_VALUE_NAMES: dict[str, dict[str, dict[str, str]]] = {
    "facility_type": {"ko": {str(k): v for k, v in FACILITY_TYPE_KO.items()}, "en": _TYPE_EN},
    "status": {"ko": {str(k): v for k, v in FACILITY_STATUS_KO.items()}, "en": _STATUS_EN},
    "service": {"ko": {str(k): v for k, v in SERVICE_KO.items()}, "en": {}},
}


def value_name(table_id: str, column: str, value: Any, lang: str) -> Any:
    """What a reader calls a coded value (a centre's type or 운영현황, a service) in ``lang``; other values
    unchanged. A booking's status is not a centre's 운영현황 and keeps its code."""
    if not isinstance(value, str) or (column == "status" and table_id == "bookings"):
        return value
    names = _VALUE_NAMES.get(column, {}).get(lang, {})
    return names.get(value, value.replace("_", " ") if column in _VALUE_NAMES and lang == "en" else value)


def definition(table_id: str) -> Definition:
    """The table ``table_id``; NotFound names the tables there are."""
    try:
        return DEFINITIONS[table_id]
    except KeyError:
        raise NotFound(f"no statistics table {table_id!r}", tables=sorted(DEFINITIONS)) from None


def _level(level: Level | str) -> Level:
    try:
        return Level(level)
    except ValueError:
        raise InvalidQuery(f"level must be one of {', '.join(v.value for v in Level)}", param="level") from None


def compute(conn: Connection, table_id: str, *, level: Level | str = Level.sigungu,
            district_code: str | None = None) -> Table:
    """Table ``table_id`` per area of ``level`` (only the 구 ``district_code`` when given)."""
    d = definition(table_id)
    lvl = _level(level)
    if district_code is not None and not (len(district_code) == 5 and district_code.isdigit()):
        raise InvalidQuery("district must be a 5-digit 시군구 code", param="district")
    if lvl is Level.dong and d.finest is not Level.dong:
        raise InvalidQuery(f"{d.id} is published per 구 at the finest (small counts per 행정동 could name families)",
                           param="level")
    area, joins, group = _AREAS[lvl]
    sql = d.sql.format(area=area, joins=joins, group=group, where=_IN_DISTRICT)
    area_order = ", ".join(str(i + 1) for i in range(len(_AREA_COLUMNS[lvl])))
    sql += f" ORDER BY {area_order}, {d.order}"
    rows = conn.execute(text(sql), {"operating": list(OPERATING_STATUS_VALUES), "district": district_code})
    out = [_plain(dict(r._mapping)) for r in rows]
    return Table(d, lvl, district_code, _AREA_COLUMNS[lvl] + d.columns, out)


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """Numbers as int/float (numeric → float), dates as ISO text: the same values in JSON, CSV and XLSX."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if v is None or isinstance(v, (bool, int, float, str)):
            out[k] = v
        elif hasattr(v, "isoformat"):
            out[k] = v.isoformat()
        else:  # Decimal
            out[k] = int(v) if v == int(v) and k not in _FRACTIONAL else float(v)
    return out


_FRACTIONAL = {"utilisation_pct", "median_wait_days"}


def per_area_sql(table_id: str, level: Level | str) -> str:
    """Table ``table_id``'s SQL for every area of ``level`` (no 구 filter, no order; it binds ``:operating``):
    what the 구 and 행정동 map layers (``geo.layers.areas``) join, so a layer and its table are one definition."""
    d = definition(table_id)
    area, joins, group = _AREAS[_level(level)]
    return d.sql.format(area=area, joins=joins, group=group, where="true")
