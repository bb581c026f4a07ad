"""Official childcare (어린이집) lists: Seoul Open Data OA-20300 and the national 어린이집 기본정보 export.

Both importers stream the CSV (UTF-8 with or without BOM, else cp949) row by row with the ``csv`` module,
COPY the parsed rows into a temporary staging table and finish set-based in SQL: coordinates are checked
and, where unusable, replaced by a point inside the 법정동 (else the 시군구) named in the address; 시군구,
법정동 and 행정동 are filled by point-in-polygon; then ``facilities`` is upserted by code and every change of
현원, 정원, 반수 (classes by age), enrolment by age or status of an existing centre is written to
``enrollment_changes``.

Snapshots (each row dated by its 데이터기준일자) may come in any order: a row older than the stored one is not
applied; a centre first seen in a snapshot older than the newest *full* snapshot of its 시도 is stored as
``unlisted``; a full snapshot marks the centres of its 시도 that it no longer lists (and no newer snapshot
listed) as ``unlisted`` with a history row, except those already closed. Partial snapshots (extracts) infer
nothing from absent centres. ``snapshot="auto"`` treats a file listing closed (폐지) centres as full.

One file is one import run (``geo.ingest.run``), one transaction: a file that cannot be read, lacks required
columns, is cut short, holds a NUL byte or is mostly unusable rows raises ``ImportFailed`` and writes nothing;
problems of single rows are reported in the ``ImportResult`` (row number, code, column, reason; bounded per kind)
and in ``import_runs.report``, never silently dropped. Re-importing the same file changes nothing
(``facilities.updated_at`` included): rows are compared field by field before they are written.

All geometries are EPSG:4326 points (lon, lat).
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb
from sqlalchemy import Connection, Engine, text

from geo.db import composed
from geo.domain import (
    FacilityStatus,
    FacilityType,
    Service,
    UnknownServiceLabel,
    free_places_by_age,
    in_korea,
    opening_hours,
    parse_facility_type,
    parse_services,
    parse_status,
)
from geo.errors import ImportFailed
from geo.ingest.csvio import data_rows, field_count_problem, file_sha256, open_csv, parse_int
from geo.ingest.report import ImportResult
from geo.ingest.run import DEFAULT_LIMITS, ImportLimits, ImportRun, import_run, jsonb
from geo.validation import is_phone_number, web_url

SOURCE_SEOUL = "seoul_oa20300"
SOURCE_NATIONAL = "national_basic"

# Placeholder that OA-20300 (and the national export) put on centres whose location is unknown: Seoul City Hall.
CITY_HALL_PLACEHOLDER_LAT_LON = (37.566470, 126.977963)
# Published points farther than this from the 시군구 named in the row are wrong (another city, the sea);
# boundary vintages and simplification differ by far less.
MAX_OFFSET_FROM_DISTRICT_M = 1000.0
# Points in no 법정동/행정동 polygon (gaps between boundary vintages) take the nearest one within this distance.
DONG_SNAP_M = 100.0
# A point outside the 시군구 its row names (or on the edge it shares with another) is moved this far inside it, so
# that point-in-polygon gives the official 시군구 and exactly one 행정동 of it.
DISTRICT_INSET_M = 1.0

GEOCODE_SOURCE = "source"
# The published point, moved into the row's own 시군구 (see ``DISTRICT_INSET_M``).
GEOCODE_SOURCE_SNAPPED = "source_snapped"
GEOCODE_LEGAL_DONG = "legal_dong_centroid"
GEOCODE_DISTRICT = "district_centroid"

# Age groups of 반수-*/아동수-* -> JSON keys of classes_by_age / enrolled_by_age.
AGE_GROUP_LABELS: dict[str, str] = {
    "0": "만0세", "1": "만1세", "2": "만2세", "3": "만3세", "4": "만4세", "5": "만5세",
    "mixed_infant": "영아혼합(만0~2세)", "mixed_toddler": "유아혼합(만3~5세)", "special": "특수장애",
}
CLASS_COLUMNS: dict[str, str] = {key: f"반수-{label}" for key, label in AGE_GROUP_LABELS.items()}
CHILD_COLUMNS: dict[str, str] = {key: f"아동수-{label}" for key, label in AGE_GROUP_LABELS.items()}
STAFF_COLUMNS: dict[str, str] = {
    "director": "교직원현황-원장", "teacher": "교직원현황-보육교사", "special_teacher": "교직원현황-특수교사",
    "therapist": "교직원현황-치료교사", "nutritionist": "교직원현황-영양사", "nurse": "교직원현황-간호사",
    "nurse_aide": "교직원현황-간호조무사", "cook": "교직원현황-조리원", "office": "교직원현황-사무직원",
    # The published total: in most rows it exceeds the sum of the roles above (roles such as 보조교사 are not
    # broken out), so it is kept rather than recomputed.
    "total": "교직원현황-총계",
}


@dataclass(frozen=True)
class CsvFormat:
    """Column names of one source format (only the columns the importer reads)."""

    kind: str
    source: str
    district: str
    name: str
    facility_type: str
    status: str
    postal_code: str
    address: str
    phone: str
    fax: str
    homepage: str
    rooms: str
    room_area: str
    playgrounds: str
    cctv: str
    staff: str
    capacity: str
    enrolled: str
    bus: str
    approved_on: str
    suspended_from: str
    suspended_until: str
    closed_on: str
    # Alternative (latitude, longitude) column pairs, the first present in the header is used.
    coordinates: tuple[tuple[str, str], ...]
    code: str | None = None
    sido: str | None = None
    data_date: str | None = None
    services: str | None = None
    by_age: bool = False

    def required(self) -> list[str]:
        """Every column the importer reads except the coordinate pair (checked separately)."""
        cols = [self.district, self.name, self.facility_type, self.status, self.postal_code, self.address,
                self.phone, self.fax, self.homepage, self.rooms, self.room_area, self.playgrounds, self.cctv,
                self.staff, self.capacity, self.enrolled, self.bus, self.approved_on, self.suspended_from,
                self.suspended_until, self.closed_on]
        cols += [c for c in (self.code, self.sido, self.data_date, self.services) if c]
        if self.by_age:
            cols += [*CLASS_COLUMNS.values(), *CHILD_COLUMNS.values(), *STAFF_COLUMNS.values()]
        return cols


SEOUL_OA20300 = CsvFormat(
    kind=SOURCE_SEOUL, source=SOURCE_SEOUL, code="어린이집코드", district="시군구명", name="어린이집명",
    facility_type="어린이집유형", status="운영현황", postal_code="우편번호", address="상세주소", phone="전화번호",
    fax="팩스번호", homepage="홈페이지주소", rooms="보육실수", room_area="보육실 면적", playgrounds="놀이터수",
    cctv="CCTV총설치수", staff="보육교직원수", capacity="정원", enrolled="현원", bus="통학차량운영여부",
    approved_on="인가일자", suspended_from="휴지시작일자", suspended_until="휴지종료일자", closed_on="폐지일자",
    data_date="데이터기준일자", services="제공서비스", by_age=True,
    # OA-20300 as published; the 2025 redistribution renamed them 위도/경도.
    coordinates=(("시설 위도(좌표값)", "시설 경도(좌표값)"), ("위도", "경도")),
)

NATIONAL_BASIC = CsvFormat(
    kind=SOURCE_NATIONAL, source=SOURCE_NATIONAL, sido="시도", district="시군구", name="어린이집명",
    facility_type="어린이집유형구분", status="운영현황", postal_code="우편번호", address="주소",
    phone="어린이집전화번호", fax="어린이집팩스번호", homepage="홈페이지주소", rooms="보육실수",
    room_area="보육실면적", playgrounds="놀이터수", cctv="CCTV설치수", staff="보육교직원수", capacity="정원수",
    enrolled="현원수", bus="통학차량운영여부", approved_on="인가일자", suspended_from="휴지시작일자",
    suspended_until="휴지종료일자", closed_on="폐지일자", coordinates=(("위도", "경도"),),
)

# Columns of the staging table filled from the CSV (COPY order) and their SQL types.
_INPUT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("row_number", "integer"), ("code", "text"), ("name", "text"), ("facility_type", "text"),
    ("status", "text"), ("sido_name", "text"), ("sigungu_name", "text"), ("district_code", "text"),
    ("legal_dong_code", "text"), ("postal_code", "text"), ("address", "text"), ("phone", "text"),
    ("fax", "text"), ("homepage", "text"), ("rooms", "integer"), ("room_area_m2", "double precision"),
    ("playgrounds", "integer"), ("cctv_count", "integer"), ("staff_count", "integer"),
    ("staff_by_role", "jsonb"), ("has_bus", "boolean"), ("capacity", "integer"), ("enrolled", "integer"),
    ("classes_by_age", "jsonb"), ("enrolled_by_age", "jsonb"), ("free_by_age", "jsonb"), ("services", "text[]"),
    ("opening_hours", "jsonb"), ("approved_on", "date"), ("suspended_from", "date"), ("suspended_until", "date"),
    ("closed_on", "date"), ("data_date", "date"), ("source", "text"), ("lon", "double precision"),
    ("lat", "double precision"), ("geocode_reason", "text"),
)
# Columns computed in SQL after the COPY.
_DERIVED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("geom_4326", "geometry(Point, 4326)"), ("geocode_quality", "text"), ("admin_dong_id", "integer"),
    ("offset_m", "double precision"), ("facility_id", "integer"), ("changed", "boolean"),
    ("history_changed", "boolean"), ("unlisted_on", "date"),
)
# facilities columns written by the importers (all compared to decide updated vs unchanged).
_FACILITY_COLUMNS: tuple[str, ...] = (
    "name", "facility_type", "status", "sido_name", "sigungu_name", "district_code", "admin_dong_id",
    "legal_dong_code", "postal_code", "address", "phone", "fax", "homepage", "rooms", "room_area_m2",
    "playgrounds", "cctv_count", "staff_count", "staff_by_role", "has_bus", "capacity", "enrolled",
    "classes_by_age", "enrolled_by_age", "free_by_age", "services", "opening_hours", "approved_on",
    "suspended_from", "suspended_until", "closed_on", "data_date", "geocode_quality", "source", "geom_4326",
)
# Compared to decide whether a change goes to the history (enrollment_changes: <column>_before/_after).
_HISTORY_COLUMNS: tuple[str, ...] = ("enrolled", "capacity", "enrolled_by_age", "classes_by_age", "status")
_HISTORY_INSERT: tuple[str, ...] = tuple(f"{c}_{when}" for c in _HISTORY_COLUMNS for when in ("before", "after"))
SNAPSHOT_MODES = ("auto", "full", "partial")


# --------------------------------------------------------------------------------------------------------------
# Public API


def import_seoul_oa20300(engine: Engine | Connection, path: Path, *, progress: bool = False,
                         snapshot: str = "auto", limits: ImportLimits = DEFAULT_LIMITS) -> ImportResult:
    """Import Seoul OA-20300 "서울시 어린이집 정보(표준 데이터)" (62 columns) into ``facilities``.

    Also reads the 2025 redistribution whose coordinate columns are named ``위도``/``경도`` and whose
    우편번호 lost its leading zero (zero-padded back to 5 digits); the variant is detected from the header.
    Centres are keyed by 어린이집코드. Every status (정상/재개/휴지/폐지) is loaded; rows with an unknown
    어린이집유형 or an empty/unknown 운영현황 are skipped and reported.

    Parameters
    ----------
    engine
        Target database. With a ``Connection`` the import runs in a SAVEPOINT of the caller's transaction
        (the caller commits); with an ``Engine`` it is its own transaction.
    path
        The CSV file (UTF-8 with or without BOM, or cp949).
    progress
        Show a rich progress bar on stderr.
    snapshot
        ``"full"``: the file lists every centre of Seoul, so centres it does not list are marked ``unlisted``;
        ``"partial"``: an extract, nothing is inferred from absent centres; ``"auto"`` (default): full when
        the file lists closed (폐지) centres, as OA-20300 does and filtered extracts do not.
    limits
        Skip ratio and report bounds (``ImportLimits.from_settings``).

    Returns
    -------
    ImportResult
        Counts (inserted/updated/unchanged/skipped/flagged, enrollment changes) and the row-level report,
        also stored in ``import_runs``.

    Raises
    ------
    ImportFailed
        The file cannot be read or its header lacks required columns (named in the message and in
        ``extra["missing_columns"]``), is cut short, holds a NUL byte, or is mostly unusable rows; nothing
        is written.
    ImportRunning
        Another import is running.
    """
    return _import(engine, path, SEOUL_OA20300, progress=progress, default_data_date=None, snapshot=snapshot,
                   limits=limits)


def import_national_basic(engine: Engine | Connection, path: Path, *, progress: bool = False,
                          data_date: date | None = None, snapshot: str = "auto",
                          limits: ImportLimits = DEFAULT_LIMITS) -> ImportResult:
    """Import the national 보육정보공개 "어린이집 기본정보" export (24 columns) into ``facilities``.

    The format has no 어린이집코드, so each centre gets a derived key
    ``"NB-" + sha1("시도|시군구|어린이집명|인가일자")[:12]`` (see ``national_key``), stable across snapshots as
    long as those four fields do not change. When several rows share a key (the same name re-licensed on the
    same day, e.g. after a move) the first keeps it and later ones get ``"-" + sha1(주소)[:6]`` appended and
    are flagged; a row identical to an earlier one is skipped. The format has no 제공서비스 and no per-age
    figures: ``services`` is empty, ``opening_hours`` the standard hours and ``free_by_age`` only
    ``{"total": 정원 − 현원}``.

    Parameters
    ----------
    engine
        Target database (``Engine``, or a ``Connection`` whose transaction the caller commits).
    path
        The CSV file (UTF-8 with or without BOM, or cp949).
    progress
        Show a rich progress bar on stderr.
    data_date
        Reference date of the snapshot. The export carries it only in its file name
        (``...-기준일(20260630)``), so by default the first 8-digit date in the file name is used.
    snapshot, limits
        As for ``import_seoul_oa20300``; a full snapshot covers the 시도 named in the file.

    Raises
    ------
    ImportFailed
        The file cannot be read, lacks required columns, is cut short, holds a NUL byte or is mostly
        unusable rows; nothing is written.
    ImportRunning
        Another import is running.
    """
    return _import(engine, path, NATIONAL_BASIC, progress=progress,
                   default_data_date=data_date or date_from_file_name(path.name), snapshot=snapshot, limits=limits)


def national_key(sido: str, sigungu: str, name: str, approved_on: str) -> str:
    """Stable facility code of a national-format row: ``NB-`` + first 12 hex digits of
    sha1(``시도|시군구|어린이집명|인가일자``) (fields stripped, inner whitespace collapsed)."""
    parts = [re.sub(r"\s+", " ", p.strip()) for p in (sido, sigungu, name, approved_on)]
    return "NB-" + hashlib.sha1("|".join(parts).encode("utf-8")).hexdigest()[:12]


def date_from_file_name(name: str) -> date | None:
    """The first valid ``YYYYMMDD`` date in a file name (``...기준일(20260630).csv`` -> 2026-06-30), else None."""
    for match in re.finditer(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?!\d)", name):
        try:
            return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        except ValueError:
            continue
    return None


def legal_dong_names_in_address(address: str) -> list[str]:
    """Candidate 법정동 names in an address, most reliable first.

    Road addresses name the 법정동 first in parentheses (``"... 월드컵북로 416 2층(상암동, LGU+상암사옥)"`` ->
    ``상암동``); jibun addresses name it as a word (``"서울특별시 강남구 역삼동 123-4"``, ``종로1가``). Old
    addresses often name the 행정동 instead, so each word also yields its 법정동 spellings: ``신림8동``/
    ``독산제2동``/``면목3.8동``/``화곡본동`` -> ``신림동``/``독산동``/``면목동``/``화곡동``, ``성수2가1동`` ->
    ``성수동2가``; a detached ``N가`` is joined (``당산동 3가`` -> ``당산동3가``). Callers keep the first
    candidate that is a 법정동 of the centre's 시군구.
    """
    candidates: list[str] = []

    def add(word: str) -> None:
        word = word.strip(" ,.;:()[]")
        if not word:
            return
        variants = [word]
        if re.search(r"\D(?:제?[\d.·,]+|본)동$", word):
            variants += [re.sub(r"(?:[\d.·,]+|본)동$", "동", word), re.sub(r"(?:제[\d.·,]+|본)동$", "동", word)]
        match = re.fullmatch(r"(\D+?)동?(\d+가)[\d.·,]*동", word)
        if match:
            variants.append(f"{match.group(1)}동{match.group(2)}")
        for variant in variants:
            if variant not in candidates:
                candidates.append(variant)

    for inside in re.findall(r"\(([^)]*)\)", address or ""):
        first = re.split(r"[,，]", inside)[0].strip()
        add(re.sub(r"\s+(\d+가)$", r"\1", first))
    words = re.sub(r"\([^)]*\)", " ", address or "").split()
    for i, word in enumerate(words):
        if i + 1 < len(words) and re.fullmatch(r"\d+가", words[i + 1]):
            add(word + words[i + 1])
        # Jibun written without a space before the lot number: "망원동432-28".
        add(re.sub(r"(?<=[동가리])\d[\d-]*(번지)?$", "", word))
    return candidates


def names_sido(written: str, short: str) -> bool:
    """Whether a 시도 as a file writes it names the 시도 of short form ``short``: '경상남도' and '경남' name 경남, a
    merged '전남광주통합특별시' names both 전남 and 광주 (a substring test alone misses '경남' in '경상남도')."""
    written = (written or "").strip()
    return bool(short) and (short in written or sido_short_name(written) == short)


def sido_short_name(name: str) -> str:
    """Two-letter short form of a 시도 name (서울특별시 -> 서울, 전라남도 -> 전남, 충청북도 -> 충북)."""
    name = (name or "").strip()
    if name[:2] in ("충청", "전라", "경상") and len(name) >= 3:
        return name[0] + name[2]
    return name[:2]


# --------------------------------------------------------------------------------------------------------------
# Reading


@dataclass
class _Issues:
    """Row-level issues collected while streaming; emitted into the ImportResult at the end in row order."""

    flags: dict[int, list[tuple[str | None, str | None, str]]] = field(default_factory=dict)
    skips: dict[int, tuple[str | None, str | None, str]] = field(default_factory=dict)

    def flag(self, row: int, code: str | None, column: str | None, reason: str) -> None:
        self.flags.setdefault(row, []).append((code, column, reason))

    def skip(self, row: int, code: str | None, column: str | None, reason: str) -> None:
        self.skips.setdefault(row, (code, column, reason))

    def emit(self, result: ImportResult) -> None:
        for row in sorted(set(self.flags) | set(self.skips)):
            if row in self.skips:
                code, column, reason = self.skips[row]
                result.skip(row, reason, code=code, column=column)
                continue
            for code, column, reason in self.flags[row]:
                result.flag(row, reason, code=code, column=column)


@dataclass
class _Lookups:
    """Boundary names loaded before parsing: 시군구 by (시도 short name, name) and 법정동 by (시군구, name)."""

    districts: dict[tuple[str, str], str]
    legal_dongs: dict[str, dict[str, str]]
    # (시도 short name, code) by 시군구 name: a per-row scan of every 시군구 made the cost per row grow with the
    # number of 시도 loaded (250 시군구 nationally against Seoul's 25).
    districts_by_name: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for (short, name), code in self.districts.items():
            self.districts_by_name.setdefault(name, []).append((short, code))

    @classmethod
    def load(cls, conn: Connection) -> _Lookups:
        districts: dict[tuple[str, str], str] = {}
        for code, name, sido in conn.execute(text("SELECT code, name, sido_name FROM districts")):
            districts[(sido_short_name(sido), re.sub(r"\s+", "", name))] = code
        legal: dict[str, dict[str, str]] = {}
        for code, district_code, name in conn.execute(text("SELECT code, district_code, name FROM legal_dongs")):
            legal.setdefault(district_code, {})[re.sub(r"\s+", "", name)] = code
        return cls(districts, legal)

    def district(self, sido: str, name: str) -> str | None:
        """시군구 code by name within the 시도 (a merged 시도 such as 전남광주통합특별시 matches both parts)."""
        name = re.sub(r"\s+", "", name or "")
        if not name:
            return None
        matches = {code for short, code in self.districts_by_name.get(name, ()) if names_sido(sido, short)}
        return matches.pop() if len(matches) == 1 else None

    def legal_dong(self, district_code: str | None, address: str) -> str | None:
        names = self.legal_dongs.get(district_code or "", {})
        for candidate in legal_dong_names_in_address(address) if names else []:
            if candidate in names:
                return names[candidate]
        return None


class _RowParser:
    """Typed values of one CSV row; problems become flags (value stored as NULL) naming the column."""

    def __init__(self, row: dict[str, str], number: int, issues: _Issues) -> None:
        self.row = row
        self.number = number
        self.issues = issues
        self.code: str | None = None

    def text(self, column: str) -> str | None:
        value = re.sub(r"\s+", " ", self.row.get(column, "")).strip()
        return value or None

    def flag(self, column: str, reason: str) -> None:
        self.issues.flag(self.number, self.code, column, reason)

    def integer(self, column: str) -> int | None:
        raw = self.row.get(column, "").strip()
        if not raw:
            return None
        try:
            value = parse_int(raw)
        except ValueError:
            self.flag(column, f"not a number: {raw!r}; stored as NULL")
            return None
        if value < 0:
            self.flag(column, f"negative count {value}; stored as NULL")
            return None
        return value

    def decimal(self, column: str) -> float | None:
        raw = self.row.get(column, "").strip()
        if not raw:
            return None
        try:
            value = float(raw.replace(",", ""))
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0:
            self.flag(column, f"not a non-negative number: {raw!r}; stored as NULL")
            return None
        return value

    def day(self, column: str) -> date | None:
        raw = self.row.get(column, "").strip()
        if not raw:
            return None
        match = re.fullmatch(r"(\d{4})[-./]?(\d{1,2})[-./]?(\d{1,2})(?:[ T].*)?", raw)
        try:
            if match:
                return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        except ValueError:
            pass
        self.flag(column, f"not a date: {raw!r}; stored as NULL")
        return None

    def groups(self, columns: dict[str, str]) -> dict[str, int | None] | None:
        """Counts by key (by age group or staff role); None when every cell is empty (unpublished)."""
        if not any(self.row.get(c, "").strip() for c in columns.values()):
            return None
        return {key: self.integer(col) for key, col in columns.items()}

    def postal_code(self, column: str) -> str | None:
        raw = re.sub(r"\s+", "", self.row.get(column, ""))
        if not raw:
            return None
        if re.fullmatch(r"\d{4}", raw):
            return "0" + raw  # spreadsheet round-trip dropped the leading zero (Seoul codes are 01000-08866)
        if re.fullmatch(r"\d{5}", raw):
            return raw
        if re.fullmatch(r"\d{3}-?\d{3}", raw):
            self.flag(column, f"obsolete 6-digit postal code {raw!r} (pre-2015); stored as NULL")
        else:
            self.flag(column, f"not a postal code: {raw!r}; stored as NULL")
        return None

    def phone(self, column: str) -> str | None:
        value = self.text(column)
        # '--', '02-0000-0000': placeholders, not numbers.
        if value is None or not re.search(r"[1-9]", value):
            return None
        if not is_phone_number(value):
            self.flag(column, f"not a phone number: {value[:60]!r}; stored as NULL")
            return None
        return value

    def homepage(self, column: str) -> str | None:
        value = self.text(column)
        # '-', '없음': placeholders, not addresses.
        if value is None or value in ("없음", "없다") or not re.search(r"\w", value):
            return None
        url = web_url(value)
        if url is None:
            self.flag(column, f"not an http(s) address: {value[:60]!r}; stored as NULL")
        return url

    def bus(self, column: str) -> bool | None:
        raw = self.row.get(column, "").strip()
        if raw in ("운영", "Y", "y"):
            return True
        if raw in ("미운영", "N", "n"):
            return False
        if raw:
            self.flag(column, f"unknown value {raw!r} (expected 운영/미운영); stored as NULL")
        return None

    def services(self, column: str) -> list[str]:
        """제공서비스 as sorted Service values; unknown fragments are dropped and flagged."""
        raw = self.row.get(column, "")
        found: set[Service] = set()
        for part in re.split(r"[,;/|+]", raw):
            compact = re.sub(r"\s+", "", part)
            try:
                found |= parse_services(compact)
            except UnknownServiceLabel as exc:
                known = compact[: len(compact) - len(exc.fragment)]
                found |= parse_services(known)
                self.flag(column, f"unknown service label {exc.fragment!r} in {raw.strip()!r}; dropped")
        return sorted(s.value for s in found)

    def coordinates(self, lat_col: str, lon_col: str) -> tuple[float | None, float | None, str | None]:
        """(lon, lat, None) when usable, else (None, None, why not)."""
        lat_raw, lon_raw = self.row.get(lat_col, "").strip(), self.row.get(lon_col, "").strip()
        if not lat_raw and not lon_raw:
            return None, None, "coordinates missing"
        try:
            lat, lon = float(lat_raw), float(lon_raw)
        except ValueError:
            return None, None, f"coordinates not numbers ({lat_raw!r}, {lon_raw!r})"
        if not (math.isfinite(lat) and math.isfinite(lon)):
            return None, None, f"coordinates not numbers ({lat_raw!r}, {lon_raw!r})"
        if (abs(lat - CITY_HALL_PLACEHOLDER_LAT_LON[0]) < 1e-6
                and abs(lon - CITY_HALL_PLACEHOLDER_LAT_LON[1]) < 1e-6):
            return None, None, "coordinates are the Seoul City Hall placeholder 37.566470,126.977963"
        if not in_korea(lat=lat, lon=lon):
            return None, None, f"coordinates {lat_raw},{lon_raw} outside South Korea"
        return lon, lat, None


# --------------------------------------------------------------------------------------------------------------
# Row mapping


@dataclass
class _Context:
    """State shared by the rows of one file."""

    fmt: CsvFormat
    lookups: _Lookups
    issues: _Issues
    lat_col: str
    lon_col: str
    default_data_date: date | None
    seen: dict[str, tuple[int, str]] = field(default_factory=dict)
    data_dates: set[date] = field(default_factory=set)
    # 시도 names and statuses of the rows staged: the snapshot's coverage and whether it lists closed centres.
    sidos: set[str] = field(default_factory=set)
    statuses: dict[FacilityStatus, int] = field(default_factory=dict)


def _row_key(ctx: _Context, p: _RowParser) -> str | None:
    """The facility code of a row, or None (row skipped) when missing or a duplicate."""
    fmt, row = ctx.fmt, p.row
    if fmt.code:
        code = row.get(fmt.code, "").strip()
        if not re.fullmatch(r"[0-9A-Za-z-]{1,40}", code):
            ctx.issues.skip(p.number, code or None, fmt.code, f"어린이집코드 {code!r} is missing or malformed")
            return None
        if code in ctx.seen:
            ctx.issues.skip(p.number, code, fmt.code, f"duplicate 어린이집코드, first in row {ctx.seen[code][0]}")
            return None
        ctx.seen[code] = (p.number, "")
        return code
    assert fmt.sido is not None
    code = national_key(row.get(fmt.sido, ""), row.get(fmt.district, ""), row.get(fmt.name, ""),
                        row.get(fmt.approved_on, ""))
    fingerprint = hashlib.sha1("\x1f".join(row.values()).encode("utf-8")).hexdigest()
    if code in ctx.seen:
        first_row, first_fingerprint = ctx.seen[code]
        if fingerprint == first_fingerprint:
            ctx.issues.skip(p.number, code, None, f"identical to row {first_row}")
            return None
        address = re.sub(r"\s+", " ", row.get(fmt.address, "")).strip()
        code = f"{code}-{hashlib.sha1(address.encode('utf-8')).hexdigest()[:6]}"
        if code in ctx.seen:
            ctx.issues.skip(p.number, code, fmt.address,
                            f"same 시도/시군구/어린이집명/인가일자 and 주소 as row {ctx.seen[code][0]}")
            return None
        ctx.issues.flag(p.number, code, fmt.name,
                        f"시도/시군구/어린이집명/인가일자 same as row {first_row}; key disambiguated by 주소")
    ctx.seen[code] = (p.number, fingerprint)
    return code


def _parse_row(ctx: _Context, number: int, row: dict[str, str]) -> list[Any] | None:
    """Staging values (``_INPUT_COLUMNS`` order) of one row, or None when the row is skipped."""
    fmt, issues = ctx.fmt, ctx.issues
    p = _RowParser(row, number, issues)
    code = _row_key(ctx, p)
    if code is None:
        return None
    p.code = code

    name = p.text(fmt.name)
    if name is None:
        issues.skip(number, code, fmt.name, "어린이집명 is empty")
        return None
    type_raw = row.get(fmt.facility_type, "").strip()
    ftype: FacilityType | None = parse_facility_type(type_raw)
    if ftype is None:
        issues.skip(number, code, fmt.facility_type, f"unknown 어린이집유형 {type_raw!r}")
        return None
    status_raw = row.get(fmt.status, "").strip()
    status: FacilityStatus | None = parse_status(status_raw)
    if status is FacilityStatus.unlisted:  # ours, not a value of the sources
        status = None
    if status is None:
        reason = "운영현황 is empty" if not status_raw else f"unknown 운영현황 {status_raw!r}"
        issues.skip(number, code, fmt.status, f"{reason}; cannot tell whether the centre operates")
        return None

    sido = p.text(fmt.sido) if fmt.sido else "서울특별시"
    if sido:
        ctx.sidos.add(sido)
    ctx.statuses[status] = ctx.statuses.get(status, 0) + 1
    sigungu = p.text(fmt.district)
    address = p.text(fmt.address)
    if sigungu is None and address:
        words = address.split()
        sigungu = words[1] if len(words) > 1 else None
    district_code = ctx.lookups.district(sido or "", sigungu or "")
    legal_dong_code = ctx.lookups.legal_dong(district_code, address or "")

    capacity = p.integer(fmt.capacity)
    enrolled = p.integer(fmt.enrolled)
    classes = enrolled_by_age = staff_by_role = None
    if fmt.by_age:
        classes = p.groups(CLASS_COLUMNS)
        enrolled_by_age = p.groups(CHILD_COLUMNS)
        staff_by_role = p.groups(STAFF_COLUMNS)
        free = free_places_by_age(_ints(classes), _ints(enrolled_by_age), capacity=capacity, enrolled=enrolled)
    else:
        free = {"total": max(0, (capacity or 0) - (enrolled or 0))}
    services = p.services(fmt.services) if fmt.services else []
    data_date = p.day(fmt.data_date) if fmt.data_date else ctx.default_data_date
    if data_date:
        ctx.data_dates.add(data_date)
    lon, lat, geocode_reason = p.coordinates(ctx.lat_col, ctx.lon_col)

    return [
        number, code, name, ftype.value, status.value, sido, sigungu, district_code, legal_dong_code,
        p.postal_code(fmt.postal_code), address, p.phone(fmt.phone), p.phone(fmt.fax), p.homepage(fmt.homepage),
        p.integer(fmt.rooms), p.decimal(fmt.room_area), p.integer(fmt.playgrounds), p.integer(fmt.cctv),
        p.integer(fmt.staff), _json(staff_by_role), p.bus(fmt.bus), capacity, enrolled, _json(classes),
        _json(enrolled_by_age), jsonb(free), services, jsonb(opening_hours(set(services))),
        p.day(fmt.approved_on), p.day(fmt.suspended_from), p.day(fmt.suspended_until), p.day(fmt.closed_on),
        data_date, fmt.source, lon, lat, geocode_reason,
    ]


def _ints(groups: dict[str, int | None] | None) -> dict[str, int] | None:
    return None if groups is None else {k: v or 0 for k, v in groups.items()}


def _json(value: dict[str, Any] | None) -> Jsonb | None:
    return jsonb(value)


# --------------------------------------------------------------------------------------------------------------
# Loading


def _import(bind: Engine | Connection, path: Path, fmt: CsvFormat, *, progress: bool,
            default_data_date: date | None, snapshot: str, limits: ImportLimits) -> ImportResult:
    if snapshot not in SNAPSHOT_MODES:
        raise ImportFailed(f"snapshot must be one of {', '.join(SNAPSHOT_MODES)}, not {snapshot!r}")
    issues = _Issues()
    with open_csv(path, required=fmt.required(), coordinates=fmt.coordinates, kind=fmt.kind) as (
            header, reader, position), \
            import_run(bind, kind=fmt.kind, source_name=path.name, sha256=file_sha256(path), limits=limits,
                       progress=progress, total_bytes=path.stat().st_size) as run:
        conn, result = run.conn, run.result
        lat_col, lon_col = next((lat, lon) for lat, lon in fmt.coordinates if lat in header and lon in header)
        ctx = _Context(fmt, _Lookups.load(conn), issues, lat_col, lon_col, default_data_date)
        _create_staging(conn)
        raw = conn.connection.driver_connection
        assert raw is not None
        copy_sql = sql.SQL("COPY _childcare_staging ({}) FROM STDIN").format(
            sql.SQL(", ").join(sql.Identifier(name) for name, _ in _INPUT_COLUMNS))
        with raw.cursor() as cur, cur.copy(copy_sql) as copy:
            for number, values in data_rows(header, reader, name=path.name):
                result.rows_read += 1
                problem = field_count_problem(header, values)
                if problem:
                    issues.skip(number, None, None, problem)
                else:
                    staged = _parse_row(ctx, number, dict(zip(header, values, strict=True)))
                    if staged is not None:
                        copy.write_row(staged)
                if result.rows_read % 500 == 0:
                    run.bar.advance_to(position())
                    run.check_skip_ratio(len(issues.skips), result.rows_read)
        run.check_skip_ratio(len(issues.skips), result.rows_read)
        run.data_date = max(ctx.data_dates, default=None)
        run.coverage = sorted(ctx.sidos)
        if snapshot == "auto":
            # An extract of operating centres (such as the 2025 redistribution) lists no closed one; a full
            # snapshot of OA-20300 or the national export lists thousands.
            snapshot = "full" if ctx.statuses.get(FacilityStatus.closed) else "partial"
        run.snapshot = snapshot
        run.bar.step("locating centres")
        _locate(conn, fmt, ctx, issues)
        run.bar.step("writing facilities")
        _upsert(conn, run, fmt, ctx, issues)
        issues.emit(result)
        conn.execute(text("DROP TABLE _childcare_staging"))
        # Fresh statistics, so that the planner picks the spatial indexes right after a bulk load.
        conn.execute(text("ANALYZE facilities"))
    return result


def _create_staging(conn: Connection) -> None:
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(sql_type))
        for name, sql_type in (*_INPUT_COLUMNS, *_DERIVED_COLUMNS))
    conn.execute(text("DROP TABLE IF EXISTS _childcare_staging"))
    conn.execute(composed(conn, sql.SQL("CREATE TEMP TABLE _childcare_staging ({}) ON COMMIT DROP").format(columns)))


def _locate(conn: Connection, fmt: CsvFormat, ctx: _Context, issues: _Issues) -> None:
    """Geometry, 시군구, 법정동 and 행정동 of every staged row (set-based); rows that cannot be placed are
    removed from staging and reported as skipped, rows placed by fallback are flagged."""
    conn.execute(text("""
        UPDATE _childcare_staging SET geom_4326 = ST_SetSRID(ST_MakePoint(lon, lat), 4326), geocode_quality = :source
        WHERE lon IS NOT NULL AND lat IS NOT NULL
    """), {"source": GEOCODE_SOURCE})
    # A published point far outside the 시군구 the row names is wrong: treat it like a missing one.
    conn.execute(text("""
        UPDATE _childcare_staging s SET offset_m = ST_Distance(s.geom_4326::geography, d.geom_4326::geography),
            geom_4326 = NULL, geocode_quality = NULL
        FROM districts d
        WHERE d.code = s.district_code AND s.geom_4326 IS NOT NULL AND NOT ST_Covers(d.geom_4326, s.geom_4326)
          AND NOT ST_DWithin(s.geom_4326::geography, d.geom_4326::geography, :max_offset_m)
    """), {"max_offset_m": MAX_OFFSET_FROM_DISTRICT_M})
    conn.execute(text("""
        UPDATE _childcare_staging s SET geom_4326 = ST_PointOnSurface(l.geom_4326), geocode_quality = :quality
        FROM legal_dongs l WHERE s.geom_4326 IS NULL AND l.code = s.legal_dong_code
    """), {"quality": GEOCODE_LEGAL_DONG})
    conn.execute(text("""
        UPDATE _childcare_staging s SET geom_4326 = ST_PointOnSurface(d.geom_4326), geocode_quality = :quality
        FROM districts d WHERE s.geom_4326 IS NULL AND d.code = s.district_code
    """), {"quality": GEOCODE_DISTRICT})
    # The row's 시군구 is official: a point outside it (geocoded a few metres across the line) or on the edge it
    # shares with another 구 is moved to the nearest point DISTRICT_INSET_M inside it (metric, EPSG:5179).
    # The points another 시군구 covers are found 시군구 by 시군구 (LATERAL over an index of the staged points), so
    # that PostGIS's prepared-geometry cache serves each polygon for every point in its box: tested point by point
    # against each neighbour's polygon, the cost per row grew with the size of rural 시군구 polygons (avg 2,000
    # vertices against Seoul's 250; 7x slower nationally).
    conn.execute(text("CREATE INDEX _childcare_staging_geom ON _childcare_staging USING gist (geom_4326)"))
    conn.execute(text("""
        WITH shared AS MATERIALIZED (
            SELECT x.row_number
            FROM (SELECT code, geom_4326 FROM districts ORDER BY code OFFSET 0) o
            CROSS JOIN LATERAL (
                SELECT t.row_number FROM _childcare_staging t
                WHERE t.geom_4326 && o.geom_4326 AND t.district_code <> o.code AND ST_Covers(o.geom_4326, t.geom_4326)
            ) x
        )
        UPDATE _childcare_staging s SET
            geom_4326 = (
                SELECT ST_Transform(ST_ClosestPoint(CASE WHEN ST_IsEmpty(x.inset) THEN x.gu ELSE x.inset END,
                                                    ST_Transform(s.geom_4326, 5179)), 4326)
                FROM (SELECT ST_Transform(d.geom_4326, 5179) AS gu,
                             ST_Buffer(ST_Transform(d.geom_4326, 5179), -:inset_m) AS inset) x),
            geocode_quality = CASE WHEN s.geocode_quality = :source THEN :snapped ELSE s.geocode_quality END
        FROM districts d
        WHERE d.code = s.district_code AND s.geom_4326 IS NOT NULL
          AND (NOT ST_Covers(d.geom_4326, s.geom_4326) OR s.row_number IN (SELECT row_number FROM shared))
    """), {"inset_m": DISTRICT_INSET_M, "source": GEOCODE_SOURCE, "snapped": GEOCODE_SOURCE_SNAPPED})
    # Point-in-polygon for what the address did not give; ties on shared edges broken by code for stability,
    # preferring polygons of the row's own 시군구.
    conn.execute(text("""
        UPDATE _childcare_staging s SET district_code = (
            SELECT d.code FROM districts d WHERE ST_Covers(d.geom_4326, s.geom_4326) ORDER BY d.code LIMIT 1)
        WHERE s.district_code IS NULL AND s.geom_4326 IS NOT NULL
    """))
    conn.execute(text("""
        UPDATE _childcare_staging s SET legal_dong_code = (
            SELECT l.code FROM legal_dongs l WHERE ST_Covers(l.geom_4326, s.geom_4326)
            ORDER BY (l.district_code IS NOT DISTINCT FROM s.district_code) DESC, l.code LIMIT 1)
        WHERE s.legal_dong_code IS NULL AND s.geom_4326 IS NOT NULL
    """))
    # The 행정동 must lie in the row's 시군구 (the lowest id on a shared edge). 행정동 by 행정동, as above.
    conn.execute(text("""
        UPDATE _childcare_staging s SET admin_dong_id = m.id
        FROM (
            SELECT DISTINCT ON (x.row_number) x.row_number, a.id
            FROM (SELECT id, district_code, geom_4326 FROM admin_dongs ORDER BY id OFFSET 0) a
            CROSS JOIN LATERAL (
                SELECT t.row_number FROM _childcare_staging t
                WHERE t.geom_4326 && a.geom_4326 AND (t.district_code IS NULL OR a.district_code = t.district_code)
                  AND ST_Covers(a.geom_4326, t.geom_4326)
            ) x
            ORDER BY x.row_number, a.id
        ) m
        WHERE m.row_number = s.row_number
    """))
    conn.execute(text("DROP INDEX _childcare_staging_geom"))
    # Points in slivers between dong polygons of different vintages: the nearest dong within DONG_SNAP_M (the bbox
    # prefilter uses 50 km per degree, wider than needed: a degree spans >= 88 km anywhere in Korea).
    conn.execute(text("""
        UPDATE _childcare_staging s SET legal_dong_code = (
            SELECT l.code FROM legal_dongs l
            WHERE l.geom_4326 && ST_Expand(s.geom_4326, :snap_deg)
              AND ST_DWithin(l.geom_4326::geography, s.geom_4326::geography, :snap_m)
            ORDER BY (l.district_code IS NOT DISTINCT FROM s.district_code) DESC, l.geom_4326 <-> s.geom_4326,
                     l.code
            LIMIT 1)
        WHERE s.legal_dong_code IS NULL AND s.geom_4326 IS NOT NULL
    """), {"snap_m": DONG_SNAP_M, "snap_deg": DONG_SNAP_M / 50_000})
    conn.execute(text("""
        UPDATE _childcare_staging s SET admin_dong_id = (
            SELECT a.id FROM admin_dongs a
            WHERE a.geom_4326 && ST_Expand(s.geom_4326, :snap_deg)
              AND ST_DWithin(a.geom_4326::geography, s.geom_4326::geography, :snap_m)
              AND (s.district_code IS NULL OR a.district_code = s.district_code)
            ORDER BY (a.district_code IS NOT DISTINCT FROM s.district_code) DESC, a.geom_4326 <-> s.geom_4326, a.id
            LIMIT 1)
        WHERE s.admin_dong_id IS NULL AND s.geom_4326 IS NOT NULL
    """), {"snap_m": DONG_SNAP_M, "snap_deg": DONG_SNAP_M / 50_000})

    coords = f"{ctx.lat_col},{ctx.lon_col}"
    rows = conn.execute(text("""
        SELECT s.row_number, s.code, s.geocode_reason, s.offset_m, s.geocode_quality, s.lat, s.lon,
               s.legal_dong_code, l.name AS legal_dong_name, s.district_code, d.name AS district_name,
               ST_Distance(ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326)::geography, s.geom_4326::geography)
                   AS moved_m,
               (SELECT string_agg(o.name, ', ' ORDER BY o.code) FROM districts o
                WHERE ST_Covers(o.geom_4326, ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326))) AS published_in
        FROM _childcare_staging s
        LEFT JOIN legal_dongs l ON l.code = s.legal_dong_code
        LEFT JOIN districts d ON d.code = s.district_code
        WHERE s.geocode_quality IS DISTINCT FROM :source
        ORDER BY s.row_number
    """), {"source": GEOCODE_SOURCE}).all()
    unplaced: list[int] = []
    for r in rows:
        if r.geocode_quality == GEOCODE_SOURCE_SNAPPED:
            inside = [name for name in (r.published_in or "").split(", ") if name]
            others = ", ".join(name for name in inside if name != r.district_name) or "no 시군구"
            where = (f"on the edge between 시군구 {r.district_name} named in {fmt.district} and {others}"
                     if r.district_name in inside else
                     f"outside 시군구 {r.district_name} named in {fmt.district} (in {others})")
            issues.flag(r.row_number, r.code, coords, f"coordinates {r.lat},{r.lon} lie {where}; moved "
                        f"{r.moved_m:.1f} m to the nearest point inside {r.district_name}")
            continue
        why = r.geocode_reason or (
            f"coordinates {r.lat},{r.lon} lie {r.offset_m / 1000:.1f} km outside 시군구 {r.district_name}")
        if r.geocode_quality == GEOCODE_LEGAL_DONG:
            issues.flag(r.row_number, r.code, coords,
                        f"{why}; placed inside 법정동 {r.legal_dong_name} ({r.legal_dong_code}) named in {fmt.address}")
        elif r.geocode_quality == GEOCODE_DISTRICT:
            issues.flag(r.row_number, r.code, coords,
                        f"{why}; no 법정동 found in {fmt.address}; placed inside 시군구 {r.district_name} "
                        f"({r.district_code})")
        else:
            unplaced.append(r.row_number)
            issues.skip(r.row_number, r.code, coords,
                        f"{why}; and no loaded 법정동 or 시군구 boundary matches {fmt.address}/{fmt.district}")
    if unplaced:
        conn.execute(text("DELETE FROM _childcare_staging WHERE row_number = ANY(:rows)"), {"rows": unplaced})


def _cols(columns: tuple[str, ...], alias: str | None = None) -> sql.Composed:
    """``a.x, a.y`` (or ``x, y``) as quoted identifiers."""
    return sql.SQL(", ").join(sql.Identifier(alias, c) if alias else sql.Identifier(c) for c in columns)


def _upsert(conn: Connection, run: ImportRun, fmt: CsvFormat, ctx: _Context, issues: _Issues) -> None:
    """Compare staged rows with ``facilities`` and apply the snapshot (see the module docstring).

    Rows older than what is stored are not applied; centres first seen in a snapshot older than the newest
    full snapshot of their region are stored as ``unlisted``; a full snapshot marks the centres of its region
    that it no longer lists as ``unlisted``. Every change of 현원, 정원, 반수, enrolment by age or status goes
    to ``enrollment_changes``.
    """
    result = run.result
    conn.execute(composed(conn, sql.SQL("""
        UPDATE _childcare_staging s SET facility_id = f.id,
            changed = ROW({f_cols}) IS DISTINCT FROM ROW({s_cols}),
            history_changed = ROW({f_hist}) IS DISTINCT FROM ROW({s_hist})
        FROM facilities f WHERE f.code = s.code
    """).format(f_cols=_cols(_FACILITY_COLUMNS, "f"), s_cols=_cols(_FACILITY_COLUMNS, "s"),
                f_hist=_cols(_HISTORY_COLUMNS, "f"), s_hist=_cols(_HISTORY_COLUMNS, "s"))))
    # An older snapshot never overwrites a newer one.
    stale = conn.execute(text("""
        SELECT s.row_number, s.code, s.data_date, f.data_date AS stored
        FROM _childcare_staging s JOIN facilities f ON f.id = s.facility_id
        WHERE s.data_date < f.data_date
    """)).all()
    for r in stale:
        issues.skip(r.row_number, r.code, None,
                    f"snapshot of {r.data_date} is older than the stored one of {r.stored}; not applied")
    if stale:
        conn.execute(text("DELETE FROM _childcare_staging WHERE row_number = ANY(:rows)"),
                     {"rows": [r.row_number for r in stale]})
    # Centres this file lists but a newer full snapshot of their region did not: no longer listed as of then
    # (a centre closed when last listed stays closed, as a full snapshot leaves it).
    conn.execute(text("""
        UPDATE _childcare_staging s SET unlisted_on = newest.data_date
        FROM (SELECT unnest(r.coverage) AS sido_name, max(r.data_date) AS data_date FROM import_runs r
              WHERE r.kind = :kind AND r.snapshot = 'full' AND r.id <> :run_id GROUP BY 1) newest
        WHERE s.facility_id IS NULL AND newest.sido_name = s.sido_name AND s.data_date < newest.data_date
          AND s.status <> :closed
    """), {"kind": fmt.kind, "run_id": run.run_id, "closed": FacilityStatus.closed.value})
    for r in conn.execute(text("SELECT row_number, code, data_date, unlisted_on FROM _childcare_staging "
                               "WHERE unlisted_on IS NOT NULL ORDER BY row_number")):
        issues.flag(r.row_number, r.code, fmt.status,
                    f"listed in this snapshot of {r.data_date} but not in the full snapshot of {r.unlisted_on} "
                    "already imported; stored as unlisted")
    history = _cols(_HISTORY_INSERT)
    result.enrollment_changes = conn.execute(composed(conn, sql.SQL("""
        INSERT INTO enrollment_changes (facility_id, import_run_id, observed_on, previous_data_date, {history})
        SELECT f.id, :run_id, s.data_date, f.data_date, {pairs}
        FROM _childcare_staging s JOIN facilities f ON f.id = s.facility_id
        WHERE s.history_changed
    """).format(history=history, pairs=_history_pairs("f", "s"))), {"run_id": run.run_id}).rowcount
    result.updated = conn.execute(composed(conn, sql.SQL("""
        UPDATE facilities f SET ({cols}, updated_at) = ({s_cols}, now())
        FROM _childcare_staging s WHERE s.facility_id = f.id AND s.changed
    """).format(cols=_cols(_FACILITY_COLUMNS), s_cols=_cols(_FACILITY_COLUMNS, "s")))).rowcount
    result.unchanged = conn.execute(text(
        "SELECT count(*) FROM _childcare_staging WHERE facility_id IS NOT NULL AND NOT changed")).scalar_one()
    result.inserted = conn.execute(composed(conn, sql.SQL("""
        INSERT INTO facilities (code, {cols})
        SELECT s.code, {s_cols} FROM _childcare_staging s WHERE s.facility_id IS NULL ORDER BY s.row_number
    """).format(cols=_cols(_FACILITY_COLUMNS), s_cols=_cols(_FACILITY_COLUMNS, "s")))).rowcount
    result.enrollment_changes += _unlist(conn, run, fmt, ctx)


def _history_pairs(before: str, after: str) -> sql.Composed:
    """``before.enrolled, after.enrolled, ...`` in ``_HISTORY_INSERT`` order."""
    return sql.SQL(", ").join(sql.Identifier(alias, column) for column in _HISTORY_COLUMNS
                              for alias in (before, after))


def _unlist(conn: Connection, run: ImportRun, fmt: CsvFormat, ctx: _Context) -> int:
    """Mark as ``unlisted`` (with a history row) the centres that should be listed but are not: those first
    seen in this older snapshot (``unlisted_on``) and, for a full snapshot, the centres of its region that it
    does not list although nothing newer said otherwise. Returns the number of history rows written."""
    keep = [c for c in _HISTORY_COLUMNS if c != "status"]
    same = sql.SQL(", ").join(sql.Identifier("f", c) for c in keep for _ in range(2))
    figures = _cols(tuple(f"{c}_{when}" for c in keep for when in ("before", "after")))
    written = conn.execute(composed(conn, sql.SQL("""
        WITH late AS (
            SELECT f.id, s.data_date, s.unlisted_on, f.status
            FROM _childcare_staging s JOIN facilities f ON f.code = s.code
            WHERE s.unlisted_on IS NOT NULL
        ), history AS (
            INSERT INTO enrollment_changes (facility_id, import_run_id, observed_on, previous_data_date, {figures},
                                            status_before, status_after)
            SELECT f.id, :run_id, late.unlisted_on, late.data_date, {same}, late.status, :unlisted
            FROM late JOIN facilities f ON f.id = late.id
        )
        UPDATE facilities f SET status = :unlisted, data_date = late.unlisted_on
        FROM late WHERE f.id = late.id
    """).format(figures=figures, same=same)), {"run_id": run.run_id, "unlisted": FacilityStatus.unlisted.value})
    count = written.rowcount
    if run.snapshot != "full" or run.data_date is None:
        return count
    gone = conn.execute(composed(conn, sql.SQL("""
        WITH gone AS (
            SELECT f.id FROM facilities f
            WHERE f.source = :source AND f.sido_name = ANY(:coverage) AND f.data_date < :snapshot_date
              AND f.status <> ALL(:kept) AND f.code NOT IN (SELECT unnest(CAST(:listed AS text[])))
        ), history AS (
            INSERT INTO enrollment_changes (facility_id, import_run_id, observed_on, previous_data_date, {figures},
                                            status_before, status_after)
            SELECT f.id, :run_id, :snapshot_date, f.data_date, {same}, f.status, :unlisted
            FROM gone JOIN facilities f ON f.id = gone.id
        )
        UPDATE facilities f SET status = :unlisted, data_date = :snapshot_date, updated_at = now()
        FROM gone WHERE f.id = gone.id
    """).format(figures=figures, same=same)), {
        "run_id": run.run_id, "unlisted": FacilityStatus.unlisted.value, "source": fmt.source,
        "coverage": run.coverage, "snapshot_date": run.data_date, "listed": list(ctx.seen),
        # A centre already closed stays closed: that is what it was when last listed.
        "kept": [FacilityStatus.closed.value, FacilityStatus.unlisted.value],
    }).rowcount
    run.result.unlisted = count + gone
    return count + gone
