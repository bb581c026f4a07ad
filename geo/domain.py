"""Domain vocabularies: facility types, statuses, services and age rules, with their Korean source labels."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from enum import StrEnum
from zoneinfo import ZoneInfo

# Korean local time (KST, UTC+9, no daylight saving): dates of applications, bookings and the 보육연도.
SEOUL_TZ = ZoneInfo("Asia/Seoul")

# The time zone of the sources' dates (데이터기준일자): a snapshot dated D holds the figures of day D there.
SOURCE_TIME_ZONE = "Asia/Seoul"

# Generous bounding box of South Korea incl. Jeju, Ulleungdo and Dokdo (lon_min, lat_min, lon_max, lat_max).
KOREA_BBOX_4326: tuple[float, float, float, float] = (124.0, 33.0, 132.0, 39.0)


def in_korea(*, lat: float, lon: float) -> bool:
    """True when a WGS84 point (degrees) lies in South Korea's bounding box."""
    lon_min, lat_min, lon_max, lat_max = KOREA_BBOX_4326
    return lon_min <= lon <= lon_max and lat_min <= lat <= lat_max


class FacilityType(StrEnum):
    """어린이집유형 (type of childcare centre)."""

    national_public = "national_public"  # 국공립
    social_welfare = "social_welfare"  # 사회복지법인
    corporate_group = "corporate_group"  # 법인·단체등
    private = "private"  # 민간
    home = "home"  # 가정
    cooperative = "cooperative"  # 협동
    workplace = "workplace"  # 직장


FACILITY_TYPE_KO: dict[FacilityType, str] = {
    FacilityType.national_public: "국공립",
    FacilityType.social_welfare: "사회복지법인",
    FacilityType.corporate_group: "법인·단체등",
    FacilityType.private: "민간",
    FacilityType.home: "가정",
    FacilityType.cooperative: "협동",
    FacilityType.workplace: "직장",
}


def parse_facility_type(label: str) -> FacilityType | None:
    """Map a source label to a type; tolerates ``법인?단체등`` (cp949 round-trip damage) and spacing."""
    cleaned = re.sub(r"\s+", "", label or "")
    cleaned = re.sub(r"[?·ㆍ.・/]", "", cleaned)
    for ftype, ko in FACILITY_TYPE_KO.items():
        if cleaned == re.sub(r"[·]", "", ko) or cleaned == ftype.value:
            return ftype
    if cleaned in {"법인단체", "법인단체등"}:
        return FacilityType.corporate_group
    if cleaned in {"국공립어린이집", "국립", "공립"}:
        return FacilityType.national_public
    return None


class FacilityStatus(StrEnum):
    """운영현황."""

    active = "active"  # 정상
    reopened = "reopened"  # 재개
    suspended = "suspended"  # 휴지
    closed = "closed"  # 폐지
    # Not in the newest full snapshot of its region although listed before (neither operating nor known closed).
    unlisted = "unlisted"  # 목록에서 제외


FACILITY_STATUS_KO: dict[FacilityStatus, str] = {
    FacilityStatus.active: "정상",
    FacilityStatus.reopened: "재개",
    FacilityStatus.suspended: "휴지",
    FacilityStatus.closed: "폐지",
    FacilityStatus.unlisted: "목록제외",
}
# The one rule for "operating" (정상 and 재개): what the search shows by default, what takes waitlist applications,
# seeded applications and the planner's supply.
OPERATING_STATUSES: tuple[FacilityStatus, ...] = (FacilityStatus.active, FacilityStatus.reopened)
OPERATING_STATUS_VALUES: tuple[str, ...] = tuple(s.value for s in OPERATING_STATUSES)


def is_operating(status: FacilityStatus | str | None) -> bool:
    """Whether a centre of this 운영현황 operates (정상 or 재개; see ``OPERATING_STATUSES``)."""
    return status is not None and str(status) in OPERATING_STATUS_VALUES


def parse_status(label: str) -> FacilityStatus | None:
    """Map 운영현황 (정상/재개/휴지/폐지) to a status."""
    cleaned = (label or "").strip()
    for status, ko in FACILITY_STATUS_KO.items():
        if cleaned in (ko, status.value):
            return status
    return None


class Service(StrEnum):
    """제공서비스: what a centre offers beyond standard daytime care."""

    general = "general"  # 일반
    extended_hours = "extended_hours"  # 야간연장(형) / 시간연장(형)
    holiday = "holiday"  # 휴일보육
    twenty_four_hour = "twenty_four_hour"  # 24시간
    disability_integrated = "disability_integrated"  # 장애아통합
    disability_specialised = "disability_specialised"  # 장애아전문
    multicultural = "multicultural"  # 다문화
    infant_only = "infant_only"  # 영아전담
    hourly = "hourly"  # 시간제보육
    after_school_dedicated = "after_school_dedicated"  # 방과후 전담
    after_school_integrated = "after_school_integrated"  # 방과후 통합
    saturday = "saturday"  # 토요보육: open Saturdays 07:30-15:30 (only where offered)


# Longest labels first so that scanning a separator-less string never matches a prefix of a longer label.
SERVICE_LABELS: list[tuple[str, Service]] = sorted(
    [
        ("일반", Service.general),
        ("야간연장형", Service.extended_hours),
        ("야간연장", Service.extended_hours),
        ("시간연장형", Service.extended_hours),
        ("시간연장", Service.extended_hours),
        ("휴일보육", Service.holiday),
        ("휴일", Service.holiday),
        ("24시간", Service.twenty_four_hour),
        ("장애아통합", Service.disability_integrated),
        ("장애아전문", Service.disability_specialised),
        ("다문화", Service.multicultural),
        ("영아전담", Service.infant_only),
        ("시간제보육", Service.hourly),
        ("시간제", Service.hourly),
        ("방과후전담", Service.after_school_dedicated),
        ("방과후통합", Service.after_school_integrated),
        ("토요보육", Service.saturday),
        ("토요", Service.saturday),
    ],
    key=lambda pair: -len(pair[0]),
)

SERVICE_KO: dict[Service, str] = {
    Service.general: "일반",
    Service.extended_hours: "야간연장",
    Service.holiday: "휴일보육",
    Service.twenty_four_hour: "24시간",
    Service.disability_integrated: "장애아통합",
    Service.disability_specialised: "장애아전문",
    Service.multicultural: "다문화",
    Service.infant_only: "영아전담",
    Service.hourly: "시간제보육",
    Service.saturday: "토요보육",
    Service.after_school_dedicated: "방과후전담",
    Service.after_school_integrated: "방과후통합",
}


class UnknownServiceLabel(ValueError):
    """A 제공서비스 fragment that is not a known service."""

    def __init__(self, fragment: str) -> None:
        super().__init__(f"unknown service label {fragment!r}")
        self.fragment = fragment


def parse_services(raw: str) -> set[Service]:
    """Parse 제공서비스 with or without separators (``장애아통합,야간연장형`` or ``장애아통합야간연장``).

    Raises ``UnknownServiceLabel`` when a part of the text is no known label.
    """
    text = re.sub(r"[\s,;/|·+]", "", raw or "")
    found: set[Service] = set()
    while text:
        for label, service in SERVICE_LABELS:
            if text.startswith(label):
                found.add(service)
                text = text[len(label) :]
                break
        else:
            raise UnknownServiceLabel(text)
    return found


# Short API spellings accepted besides the enum values (``24h`` was the value before it was named in full).
SERVICE_ALIASES: dict[str, Service] = {"24h": Service.twenty_four_hour}


def parse_service_name(name: str) -> Service:
    """A service from an API/CLI value: enum value (``twenty_four_hour``), alias (``24h``) or Korean label
    (``휴일보육``)."""
    try:
        return Service(name)
    except ValueError:
        pass
    if name in SERVICE_ALIASES:
        return SERVICE_ALIASES[name]
    services = parse_services(name)
    if len(services) != 1:
        raise UnknownServiceLabel(name)
    return services.pop()


# Age groups of the Korean class system; "mixed_infant" = 영아혼합(만0~2세), "mixed_toddler" = 유아혼합(만3~5세).
AGES: tuple[int, ...] = (0, 1, 2, 3, 4, 5)

# Legal child:teacher ratios (영유아보육법 시행규칙 별표2) = children per class, used to turn class counts into
# places by age because OA-20300 publishes 정원 only as a total. A mixed-age class follows the ratio of its
# youngest child; the source does not say whether a 영아혼합 class holds 0-year-olds (or will take one), so it
# is counted conservatively at the 0세 ratio 1:3 rather than 1:5.
CHILDREN_PER_CLASS: dict[str, int] = {
    "0": 3, "1": 5, "2": 7, "3": 15, "4": 20, "5": 20,
    "mixed_infant": 3, "mixed_toddler": 18, "special": 3,
}


def class_age(birth_date: date, on: date) -> int:
    """Age class (만 N세반) a child born on ``birth_date`` is placed in on ``on``.

    Classes follow the childcare year (보육연도, March to February): in the year starting March Y,
    the 만0세반 takes children born on or after 1 January Y-1, 만1세반 those born in Y-2, and so on
    (so a child born in 2024 is in the 만1세반 from March 2026 to February 2027). A child born during
    the current childcare year is in the 만0세반.
    """
    childcare_year = on.year if on.month >= 3 else on.year - 1
    return max(0, childcare_year - birth_date.year - 1)


# Opening hours (보육시간, 영유아보육법 시행규칙): standard care Mon-Fri 07:30-19:30; Sat 07:30-15:30 only where
# offered (토요보육 service; 휴일보육 and 24시간 centres open Saturdays too);
# 야간연장 extends weekdays to 24:00; 24시간 centres never close; 휴일보육 centres open Sundays and public
# holidays 07:30-19:30. OA-20300 publishes services, not hours, so hours follow from services.
STANDARD_OPEN = time(7, 30)
STANDARD_CLOSE = time(19, 30)
SATURDAY_CLOSE = time(15, 30)


def is_public_holiday(day: date) -> bool:
    """Korean public holiday (incl. substitute holidays) or Sunday."""
    import holidays

    return day.weekday() == 6 or day in holidays.country_holidays("KR", years=day.year)


def services_open_at(moment: datetime) -> set[Service] | None:
    """Which services make a centre open at ``moment`` (local Korean time).

    Returns ``None`` when every operating centre is open (standard hours), otherwise the set of services of
    which a centre needs at least one; an empty set means no centre is open.
    """
    day, clock = moment.date(), moment.time()
    if is_public_holiday(day):
        return {Service.twenty_four_hour} | ({Service.holiday} if STANDARD_OPEN <= clock < STANDARD_CLOSE else set())
    if day.weekday() == 5:
        if STANDARD_OPEN <= clock < SATURDAY_CLOSE:
            return {Service.saturday, Service.holiday, Service.twenty_four_hour}
        return {Service.twenty_four_hour}
    if STANDARD_OPEN <= clock < STANDARD_CLOSE:
        return None
    if day.weekday() < 5 and clock >= STANDARD_CLOSE:
        return {Service.twenty_four_hour, Service.extended_hours}
    return {Service.twenty_four_hour}


def opening_hours(services: set[Service] | set[str]) -> dict[str, list[list[str]]]:
    """Weekly opening hours implied by a centre's services (``{"mon": [["07:30", "19:30"]], ...}``)."""
    values = {str(s) for s in services}
    if Service.twenty_four_hour.value in values:
        return {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun", "holiday")}
    weekday_close = "24:00" if Service.extended_hours.value in values else "19:30"
    hours: dict[str, list[list[str]]] = {d: [["07:30", weekday_close]] for d in ("mon", "tue", "wed", "thu", "fri")}
    if values & {Service.saturday.value, Service.holiday.value}:
        hours["sat"] = [["07:30", "15:30"]]
    if Service.holiday.value in values:
        hours["sun"] = [["07:30", "19:30"]]
        hours["holiday"] = [["07:30", "19:30"]]
    return hours


def places_by_age(classes_by_age: dict[str, int] | None) -> dict[str, int]:
    """Places per age group from class counts × legal children per class (OA-20300 has no 정원 by age)."""
    return {group: int((classes_by_age or {}).get(group) or 0) * per for group, per in CHILDREN_PER_CLASS.items()}


# Which class groups can take a child of a given age class.
GROUPS_FOR_AGE: dict[int, tuple[str, ...]] = {
    0: ("0", "mixed_infant"),
    1: ("1", "mixed_infant"),
    2: ("2", "mixed_infant"),
    3: ("3", "mixed_toddler"),
    4: ("4", "mixed_toddler"),
    5: ("5", "mixed_toddler"),
}


def free_places_by_class(
    classes_by_age: dict[str, int] | None,
    enrolled_by_age: dict[str, int] | None,
    *,
    capacity: int | None,
    enrolled: int | None,
) -> dict[str, int]:
    """Estimated free places of each class group (``"0"`` .. ``"5"``, ``mixed_infant``, ``mixed_toddler``,
    ``special``): classes × legal ratio − children enrolled in that group, capped by 정원 − 현원.

    A class row never shows more free places than its own places minus its children; a mixed class's free
    places are its own (not those of the single-age classes it shares ages with).
    """
    places = places_by_age(classes_by_age)
    enrolled_map = enrolled_by_age or {}
    headroom = max(0, (capacity or 0) - (enrolled or 0))
    return {g: min(headroom, max(0, places[g] - int(enrolled_map.get(g) or 0))) for g in places}


# How the per-age and per-class figures relate (shown with the class table).
MIXED_CLASS_NOTE = (
    "A mixed class (영아혼합 0-2세, 유아혼합 3-5세) takes children of each of its ages, so its free places count "
    "for every one of those ages: free places by age = free places of the age's own classes + those of its mixed "
    "class, at most 정원 − 현원. Ages share those places, so free places by age do not add up to the total; free "
    "places by class do not overlap and each is at most the class's places minus its children."
)


def free_places_by_age(
    classes_by_age: dict[str, int] | None,
    enrolled_by_age: dict[str, int] | None,
    *,
    capacity: int | None,
    enrolled: int | None,
) -> dict[str, int]:
    """Estimated free places for each age 0..5 (plus ``total``).

    An age's free places are those of its own classes plus its mixed-age class (``free_places_by_class``; a
    place of a mixed class counts for each of its ages, see ``MIXED_CLASS_NOTE``). Each figure is capped by the
    licensed headroom 정원 − 현원, which is the only vacancy figure the source publishes exactly.
    """
    by_class = free_places_by_class(classes_by_age, enrolled_by_age, capacity=capacity, enrolled=enrolled)
    headroom = max(0, (capacity or 0) - (enrolled or 0))
    result = {str(age): min(headroom, sum(by_class[g] for g in groups)) for age, groups in GROUPS_FOR_AGE.items()}
    result["total"] = headroom
    return result
