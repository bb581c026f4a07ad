"""Attribute filters shared by every facility search, parsed from API/CLI values and turned into bound SQL.

``FacilityFilters.parse`` accepts enum values or Korean labels (comma lists allowed) and raises
``geo.errors.InvalidQuery`` on anything else; ``FacilityFilters.where`` gives a ``psycopg.sql`` condition on the
table alias ``f`` built from constant fragments, with every value a bound parameter prefixed ``flt_``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, TypeVar

from psycopg import sql

from geo.domain import (
    OPERATING_STATUSES,
    FacilityStatus,
    FacilityType,
    Service,
    UnknownServiceLabel,
    parse_facility_type,
    parse_service_name,
    parse_status,
    services_open_at,
)
from geo.errors import InvalidQuery
from geo.validation import child_age, clean_text, korean_wall_clock

ServiceMatch = Literal["all", "any"]
E = TypeVar("E")
MAX_LIST_VALUES = 20
MAX_MIN_FREE = 1000


def _split_values(values: Iterable[str] | str | None, *, param: str) -> list[str]:
    """Repeated and comma-separated values (``["24h,holiday", "hourly"]``) as one flat, cleaned list."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    parts = [part.strip() for value in values
             for part in (clean_text(value, param=param) or "").split(",") if part.strip()]
    if len(parts) > MAX_LIST_VALUES:
        raise InvalidQuery(f"{param} takes at most {MAX_LIST_VALUES} values (got {len(parts)})", param=param)
    return parts


def _unique_values(raw: list[str], parse: Callable[[str], Iterable[E] | None], *, param: str, noun: str,
                   choices: str) -> tuple[E, ...]:
    """Each value parsed (to one or more members), duplicates removed, order kept.

    ``parse`` returns ``None`` for an unknown value, which raises ``InvalidQuery`` naming ``param`` and the
    accepted ``choices``.
    """
    found: list[E] = []
    for value in raw:
        parsed = parse(value)
        if parsed is None:
            raise InvalidQuery(f"unknown {noun} {value!r}; use one of {choices}", param=param, value=value)
        for item in parsed:
            if item not in found:
                found.append(item)
    return tuple(found)


def _service_or_none(value: str) -> tuple[Service] | None:
    try:
        return (parse_service_name(value),)
    except UnknownServiceLabel:
        return None


def _type_or_none(value: str) -> tuple[FacilityType] | None:
    ftype = parse_facility_type(value)
    return None if ftype is None else (ftype,)


def _statuses_or_none(value: str) -> tuple[FacilityStatus, ...] | None:
    if value.lower() == "operating":
        return OPERATING_STATUSES
    status = parse_status(value)
    return None if status is None else (status,)


def parse_requested_services(values: Iterable[str] | str | None) -> tuple[Service, ...]:
    """Services from enum values (``twenty_four_hour``, ``24h``) or Korean labels (``휴일보육``); duplicates
    removed, order kept."""
    known = ", ".join(s.value for s in Service)
    return _unique_values(_split_values(values, param="service"), _service_or_none, param="service",
                          noun="service", choices=f"{known} or its Korean label")


def parse_types(values: Iterable[str] | str | None) -> tuple[FacilityType, ...]:
    """Facility types from enum values (``home``) or Korean labels (``가정``)."""
    known = ", ".join(t.value for t in FacilityType)
    return _unique_values(_split_values(values, param="type"), _type_or_none, param="type",
                          noun="facility type", choices=f"{known} or its Korean label")


def parse_statuses(values: Iterable[str] | str | None) -> tuple[FacilityStatus, ...] | None:
    """Statuses from values or Korean labels; none given means operating (active + reopened), ``all``
    (alone) means no status filter (``None``), ``operating`` expands to active + reopened."""
    raw = _split_values(values, param="status")
    if not raw:
        return OPERATING_STATUSES
    if [v.lower() for v in raw] == ["all"]:
        return None
    known = ", ".join(s.value for s in FacilityStatus)
    return _unique_values(raw, _statuses_or_none, param="status", noun="status",
                          choices=f"{known}, operating or all")


def parse_languages(values: Iterable[str] | str | None) -> tuple[str, ...]:
    """ISO 639-1 codes (``zh``, ``vi``; case-insensitive), duplicates removed, order kept."""
    codes: list[str] = []
    for value in _split_values(values, param="language"):
        code = value.strip().lower()
        if not (len(code) == 2 and code.isascii() and code.isalpha()):
            raise InvalidQuery(f"language must be a two-letter ISO 639-1 code such as zh, vi or en (got {value!r})",
                               param="language")
        if code not in codes:
            codes.append(code)
    return tuple(codes)


def parse_grades(values: Iterable[str] | str | None) -> tuple[str, ...]:
    """평가제 grades A, B, C, D (case-insensitive), duplicates removed, order kept."""
    grades: list[str] = []
    for value in _split_values(values, param="evaluation_grade"):
        grade = value.strip().upper()
        if grade not in ("A", "B", "C", "D"):
            raise InvalidQuery(f"evaluation_grade must be A, B, C or D (got {value!r})", param="evaluation_grade")
        if grade not in grades:
            grades.append(grade)
    return tuple(grades)


def like_pattern(fragment: str) -> str:
    """``%fragment%`` for ILIKE with ``%``, ``_`` and ``\\`` escaped (backslash is LIKE's default escape)."""
    escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class FacilityFilters:
    """Attribute filters shared by every search; all given filters must hold (AND).

    Attributes
    ----------
    services
        Services a centre must offer. ``services_match="all"`` (default) requires every listed service
        (``services @> :arr``), ``"any"`` at least one (``services && :arr``); both use the GIN index
        ``ix_facilities_services``.
    facility_types
        Any of these types (empty: every type).
    statuses
        Any of these statuses; default operating (active + reopened); ``None`` disables the filter.
    age, min_free
        Age class 0..5 with at least ``min_free`` estimated free places (``free_by_age``). ``min_free=0``
        keeps the age (it still shortens catchment radii for infants) without requiring vacancies.
    open_at
        Korean local time (aware datetimes are converted) at which the centre must be open; opening hours
        follow from services (``geo.domain.services_open_at``).
    has_bus, has_cctv
        ``True``: has a school bus / at least one CCTV camera; ``False``: not known to have one.
    name
        Fragment of the centre name, case-insensitive (ILIKE on a bound, escaped pattern; trigram index).
    languages
        Languages (ISO 639-1 codes) of which the centre's staff speak at least one (``staff_languages &&``).
    evaluation_grades
        Latest 평가제 grades (A-D) of which the centre holds one (``evaluation_grade = ANY``).
    """

    services: tuple[Service, ...] = ()
    services_match: ServiceMatch = "all"
    facility_types: tuple[FacilityType, ...] = ()
    statuses: tuple[FacilityStatus, ...] | None = OPERATING_STATUSES
    age: int | None = None
    min_free: int = 1
    open_at: datetime | None = None
    has_bus: bool | None = None
    has_cctv: bool | None = None
    name: str | None = None
    languages: tuple[str, ...] = ()
    evaluation_grades: tuple[str, ...] = ()

    @classmethod
    def parse(
        cls,
        *,
        services: Iterable[str] | str | None = None,
        services_match: str = "all",
        types: Iterable[str] | str | None = None,
        status: Iterable[str] | str | None = None,
        age: int | None = None,
        birth_date: date | None = None,
        min_free: int = 1,
        open_at: datetime | None = None,
        has_bus: bool | None = None,
        has_cctv: bool | None = None,
        name: str | None = None,
        languages: Iterable[str] | str | None = None,
        evaluation_grades: Iterable[str] | str | None = None,
        today: date | None = None,
    ) -> FacilityFilters:
        """Filters from raw API/CLI values (enum values or Korean labels, comma lists allowed).

        ``today`` (default: today in Korea) places a ``birth_date`` in its age class.

        Raises
        ------
        InvalidQuery
            Unknown service/type/status, bad ``services_match``, age outside 0..5, birth date in the future,
            ``min_free`` outside 0..1000, control characters, or a name longer than 100 characters.
        """
        if services_match not in ("all", "any"):
            raise InvalidQuery(f"service_match must be 'all' or 'any' (got {services_match!r})",
                               param="service_match")
        if not 0 <= min_free <= MAX_MIN_FREE:
            raise InvalidQuery(f"min_free must be between 0 and {MAX_MIN_FREE} (got {min_free})", param="min_free")
        return cls(
            services=parse_requested_services(services),
            services_match="any" if services_match == "any" else "all",
            facility_types=parse_types(types),
            statuses=parse_statuses(status),
            age=child_age(age=age, birth_date=birth_date, on=today),
            min_free=min_free,
            open_at=open_at,
            has_bus=has_bus,
            has_cctv=has_cctv,
            name=clean_text(name, param="name"),
            languages=parse_languages(languages),
            evaluation_grades=parse_grades(evaluation_grades),
        )

    def where(self) -> tuple[sql.Composable, dict[str, Any]]:
        """``(condition, params)`` on the table alias ``f``; the condition is ``TRUE`` without filters."""
        clauses: list[sql.Composable] = []
        params: dict[str, Any] = {}
        if self.services:
            clauses.append(sql.SQL("f.services @> %(flt_services)s::text[]") if self.services_match == "all"
                           else sql.SQL("f.services && %(flt_services)s::text[]"))
            params["flt_services"] = [s.value for s in self.services]
        if self.facility_types:
            clauses.append(sql.SQL("f.facility_type = ANY(%(flt_types)s::text[])"))
            params["flt_types"] = [t.value for t in self.facility_types]
        if self.statuses is not None:
            clauses.append(sql.SQL("f.status = ANY(%(flt_statuses)s::text[])"))
            params["flt_statuses"] = [s.value for s in self.statuses]
        if self.age is not None and self.min_free > 0:
            clauses.append(sql.SQL("(f.free_by_age ->> %(flt_age)s)::integer >= %(flt_min_free)s"))
            params["flt_age"] = str(self.age)
            params["flt_min_free"] = self.min_free
        if self.open_at is not None:
            needed = services_open_at(korean_wall_clock(self.open_at))
            if needed is not None:
                if needed:
                    clauses.append(sql.SQL("f.services && %(flt_open_services)s::text[]"))
                    params["flt_open_services"] = sorted(s.value for s in needed)
                else:
                    clauses.append(sql.SQL("FALSE"))
        if self.has_bus is not None:
            clauses.append(sql.SQL("f.has_bus IS TRUE" if self.has_bus else "f.has_bus IS NOT TRUE"))
        if self.has_cctv is not None:
            clauses.append(sql.SQL("f.cctv_count > 0" if self.has_cctv else "COALESCE(f.cctv_count, 0) = 0"))
        if self.name:
            clauses.append(sql.SQL("f.name ILIKE %(flt_name)s"))
            params["flt_name"] = like_pattern(self.name)
        if self.languages:
            clauses.append(sql.SQL("f.staff_languages && %(flt_languages)s::text[]"))
            params["flt_languages"] = list(self.languages)
        if self.evaluation_grades:
            clauses.append(sql.SQL("f.evaluation_grade = ANY(%(flt_grades)s::text[])"))
            params["flt_grades"] = list(self.evaluation_grades)
        if not clauses:
            return sql.SQL("TRUE"), params
        return sql.SQL(" AND ").join(clauses), params
