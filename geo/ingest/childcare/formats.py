"""Source formats of the childcare lists: column names of Seoul OA-20300 and the national 어린이집 기본정보 export,
the derived key of national rows, dates in file names and 시도 names."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date

SOURCE_SEOUL = "seoul_oa20300"
SOURCE_NATIONAL = "national_basic"

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


SNAPSHOT_MODES = ("auto", "full", "partial")


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

