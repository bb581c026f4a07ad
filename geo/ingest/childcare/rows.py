"""Reading one CSV row: typed values, problems as flags or skips naming row and column, the staging values."""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from psycopg.types.json import Jsonb

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
from geo.ingest.childcare.formats import CHILD_COLUMNS, CLASS_COLUMNS, STAFF_COLUMNS, CsvFormat, national_key
from geo.ingest.childcare.locate import CITY_HALL_PLACEHOLDER_LAT_LON, _Lookups
from geo.ingest.csvio import parse_int
from geo.ingest.report import ImportResult
from geo.ingest.run import jsonb
from geo.validation import is_phone_number, web_url

# Columns of the staging table filled from the CSV (COPY order) and their SQL types.
_INPUT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("row_number", "integer"), ("code", "text"), ("name", "text"), ("facility_type", "text"),
    ("status", "text"), ("sido_name", "text"), ("sigungu_name", "text"), ("district_code", "text"),
    ("legal_dong_code", "text"), ("postal_code", "text"), ("address", "text"), ("phone", "text"),
    ("fax", "text"), ("homepage", "text"), ("rooms", "integer"), ("room_area_m2", "double precision"),
    ("playgrounds", "integer"), ("cctv_count", "integer"), ("staff_count", "integer"),
    ("staff_by_role", "jsonb"), ("has_bus", "boolean"), ("capacity", "integer"), ("enrolled", "integer"),
    ("classes_by_age", "jsonb"), ("enrolled_by_age", "jsonb"), ("free_by_age", "jsonb"),
    ("services_imported", "text[]"),
    ("opening_hours", "jsonb"), ("approved_on", "date"), ("suspended_from", "date"), ("suspended_until", "date"),
    ("closed_on", "date"), ("data_date", "date"), ("source", "text"), ("lon", "double precision"),
    ("lat", "double precision"), ("geocode_reason", "text"),
)


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

