"""A centre's public fields, defined once: what search results, the facilities map layer, the detail panel and
the API schema say about a centre, under one name each.

Each ``CentreField`` names its value, its JSON type, one sentence of meaning, how SQL computes it from a row of
``facilities`` and which outputs carry it:

- ``search``: every search result (``geo.search.sql`` builds the JSON in the database; ``api.schemas.facilities``
  documents it, a test keeps the two equal);
- ``layer``: the ``facilities`` map layer (OGC API Features, vector tiles, exports; ``geo.layers.facilities``),
  flat values only (tiles carry no objects: ``free_by_age`` is ``free_total`` and ``free_age_0`` ... there);
- ``detail``: the detail panel (``geo.search.detail``).

A new public fact about a centre is one more ``CentreField`` here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Output = Literal["search", "layer", "detail"]
FieldType = Literal["string", "integer", "number", "boolean", "date", "date-time", "array", "object"]

SEARCH: frozenset[Output] = frozenset({"search"})
LAYER: frozenset[Output] = frozenset({"layer"})
DETAIL: frozenset[Output] = frozenset({"detail"})
ALL: frozenset[Output] = SEARCH | LAYER | DETAIL


@dataclass(frozen=True)
class CentreField:
    """One public fact about a centre.

    Parameters
    ----------
    name
        The key in every output that carries it.
    type
        JSON type (``array``: of strings; ``object``: ``{"0".."5", "total"}`` counts; ``date``: ISO 8601 text).
    description
        One sentence; units in the name or here.
    outputs
        Which outputs carry it.
    column
        The ``facilities`` column it is (default: ``name``); with ``expression``, the column the expression reads.
    free_key
        It is ``free_by_age ->> free_key`` as an integer (estimated free places of one age class, or ``total``).
    expression
        SQL over the facilities alias ``{t}`` (search labels may use the bound ``%(labels)s`` jsonb), when it is
        not a column.
    nullable
        Whether the value may be null.
    """

    name: str
    type: FieldType
    description: str
    outputs: frozenset[Output]
    column: str | None = None
    free_key: str | None = None
    expression: str | None = None
    nullable: bool = True

    @property
    def source_column(self) -> str | None:
        """The ``facilities`` column a page of results must carry for this field (None: computed)."""
        if self.free_key is not None:
            return "free_by_age"
        return self.column if self.expression is not None else self.column or self.name

    def sql(self, alias: str) -> str:
        """The SQL computing the field from the facilities row (or page of them) called ``alias``."""
        if self.expression is not None:
            return self.expression.replace("{t}", alias)
        if self.free_key is not None:
            return f"({alias}.free_by_age ->> '{self.free_key}')::int"
        return f"{alias}.{self.column or self.name}"


_LABEL = "%(labels)s::jsonb"

CENTRE_FIELDS: tuple[CentreField, ...] = (
    CentreField("code", "string", "어린이집코드 (or a derived key for sources without one)", ALL, nullable=False),
    CentreField("name", "string", "어린이집명", ALL, nullable=False),
    CentreField("facility_type", "string", "type (geo.domain.FacilityType): national_public, private, home, "
                "workplace, ...", ALL, nullable=False),
    CentreField("facility_type_ko", "string", "어린이집유형 label", SEARCH,
                column="facility_type", expression=f"{_LABEL} -> 'type' ->> {{t}}.facility_type"),
    CentreField("status", "string", "operating status (geo.domain.FacilityStatus): active, reopened, suspended, "
                "closed", ALL, nullable=False),
    CentreField("status_ko", "string", "운영현황 label", SEARCH,
                column="status", expression=f"{_LABEL} -> 'status' ->> {{t}}.status"),
    CentreField("district_code", "string", "5-digit 시군구 code", ALL),
    CentreField("sigungu_name", "string", "시군구 name", ALL),
    CentreField("address", "string", "road address", ALL),
    CentreField("phone", "string", "phone number", ALL),
    CentreField("admin_dong_name", "string", "행정동 the centre lies in", DETAIL, expression="a.name"),
    CentreField("postal_code", "string", "postal code", DETAIL),
    CentreField("homepage", "string", "home page URL", DETAIL),
    CentreField("capacity", "integer", "정원 (licensed places)", ALL),
    CentreField("enrolled", "integer", "현원 (children enrolled)", ALL),
    CentreField("free_by_age", "object", 'Estimated free places by age class {"0".."5", "total"} '
                "(geo.domain.free_places_by_age)", SEARCH | DETAIL),
    CentreField("free_total", "integer", "estimated free places, all ages", LAYER, free_key="total"),
    *(CentreField(f"free_age_{age}", "integer", f"estimated free places for 만 {age}세", LAYER, free_key=str(age))
      for age in range(6)),
    CentreField("classes_by_age", "object", "classes (반) by age class", DETAIL),
    CentreField("enrolled_by_age", "object", "children enrolled by age class", DETAIL),
    CentreField("services", "array", "services offered (geo.domain.Service: twenty_four_hour, holiday, "
                "extended_hours, ...)", ALL, column="services", expression="COALESCE({t}.services, '{}'::text[])",
                nullable=False),
    CentreField("services_ko", "array", "service labels", SEARCH, nullable=False, column="services",
                expression="ARRAY(SELECT %(labels)s::jsonb -> 'service' ->> s FROM unnest({t}.services) AS s "
                           "WHERE %(labels)s::jsonb -> 'service' ? s)"),
    CentreField("opening_hours", "object", "opening hours", DETAIL),
    CentreField("rooms", "integer", "보육실 (care rooms)", DETAIL),
    CentreField("room_area_m2", "number", "area of the care rooms (m²)", DETAIL),
    CentreField("playgrounds", "integer", "놀이터 (playgrounds)", DETAIL),
    CentreField("staff_count", "integer", "보육교직원 (staff)", DETAIL),
    CentreField("staff_by_role", "object", "staff by role", DETAIL),
    CentreField("has_bus", "boolean", "runs a school bus", ALL),
    CentreField("cctv_count", "integer", "number of CCTV cameras", ALL),
    CentreField("staff_languages", "array", "languages the staff speak (ISO 639-1 codes, declared by the centre)",
                ALL, column="staff_languages", expression="COALESCE({t}.staff_languages, '{}'::text[])",
                nullable=False),
    CentreField("evaluation_grade", "string", "latest 평가제 grade (A, B, C or D; null: not evaluated or not "
                "imported), see docs/disclosure.md", ALL),
    CentreField("evaluation_date", "date", "date of that grade", ALL),
    CentreField("approved_on", "date", "인가일자 (date of licence)", DETAIL),
    CentreField("geocode_quality", "string", "source | source_snapped (moved into its own 구) | legal_dong_centroid "
                "| district_centroid | ...", SEARCH | DETAIL, nullable=False),
    CentreField("location_approximate", "boolean", "the point only says which 구/동 the centre is in: it was placed "
                "more than DOLBOM_IMPORT_LOCATION_EXACT_MAX_M (150 m) from its published point, or inside its "
                "법정동/시군구 for want of one; distances are approximate", ALL, nullable=False),
    CentreField("location_offset_m", "number", "metres between the published point and the point shown (null: "
                "no usable published point)", DETAIL),
    CentreField("source", "string", "the data source of the row", DETAIL),
    CentreField("data_date", "date", "date the source data describes", ALL),
    CentreField("vacancy_as_of", "date-time", "when the free places shown were true: the centre's last vacancy "
                "report, else the start of the day the source data describes (Asia/Seoul); older than "
                "DOLBOM_VACANCY_STALE_DAYS is stale (GET /map/config)", SEARCH, column="data_date",
                expression="GREATEST(({t}.data_date::timestamp AT TIME ZONE 'Asia/Seoul'), (SELECT max(v.reported_at) "
                           "FROM vacancy_reports v WHERE v.facility_id = {t}.id))"),
    CentreField("updated_at", "date-time", "last change of the row", LAYER | DETAIL),
)

FIELDS: dict[str, CentreField] = {f.name: f for f in CENTRE_FIELDS}
assert len(FIELDS) == len(CENTRE_FIELDS), "a centre field is defined twice"


def fields_for(output: Output) -> tuple[CentreField, ...]:
    """The fields ``output`` carries, in definition order."""
    return tuple(f for f in CENTRE_FIELDS if output in f.outputs)


def source_columns(fields: Iterable[CentreField]) -> list[str]:
    """The ``facilities`` columns ``fields`` are computed from (definition order, once each)."""
    return list(dict.fromkeys(c for f in fields if (c := f.source_column) is not None))
