"""Tables of the planner analytics (geo.analysis.planner): one row per run, one per grid cell of a run."""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from geo.models.base import Base


class PlannerRun(Base):
    """One planner run, keyed by the hash of its parameters (re-running the same parameters replaces it)."""

    __tablename__ = "planner_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    params_key: Mapped[str] = mapped_column(String(32), unique=True)
    params: Mapped[dict] = mapped_column(JSONB)
    # 시도 (11) or 구 (11440) code prefix of the area studied.
    area_code: Mapped[str] = mapped_column(String(10))
    service: Mapped[str] = mapped_column(Text)
    cell_m: Mapped[float] = mapped_column(Float)
    catchment_m: Mapped[float] = mapped_column(Float)
    summary: Mapped[dict | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PlannerCell(Base):
    """A grid cell (EPSG:5179 square clipped to the 행정동 studied) with the planner measures of one run."""

    __tablename__ = "planner_cells"

    run_id: Mapped[int] = mapped_column(ForeignKey("planner_runs.id", ondelete="CASCADE"), primary_key=True)
    # Column/row on the EPSG:5179 grid anchored at its origin: x in [cell_i * cell_m, (cell_i + 1) * cell_m).
    cell_i: Mapped[int] = mapped_column(Integer, primary_key=True)
    cell_j: Mapped[int] = mapped_column(Integer, primary_key=True)
    admin_dong_id: Mapped[int | None] = mapped_column(ForeignKey("admin_dongs.id", ondelete="SET NULL"))
    district_code: Mapped[str | None] = mapped_column(String(5))
    children: Mapped[float] = mapped_column(Float)
    centres: Mapped[int] = mapped_column(Integer)
    places: Mapped[int] = mapped_column(Integer)
    free_places: Mapped[int] = mapped_column(Integer)
    children_per_place: Mapped[float | None] = mapped_column(Float)
    desert: Mapped[bool] = mapped_column(Boolean)
    nearest_m: Mapped[float | None] = mapped_column(Float)
    sfca: Mapped[float] = mapped_column(Float)
    e2sfca: Mapped[float] = mapped_column(Float)
    places_in_reach: Mapped[float] = mapped_column(Float)
    blind_spot: Mapped[bool] = mapped_column(Boolean)
    blind_rank: Mapped[int | None] = mapped_column(Integer)
    gap_places: Mapped[float] = mapped_column(Float)
    geom_4326 = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False)

    __table_args__ = (
        Index("ix_planner_cells_geom_4326", "geom_4326", postgresql_using="gist"),
        Index("ix_planner_cells_run_rank", "run_id", "blind_rank"),
    )
