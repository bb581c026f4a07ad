"""Planner measures per grid cell, 행정동 and 구: children per place, childcare deserts, distance to the nearest
centre, 2SFCA / E2SFCA accessibility and blind spots, for all centres or one service type.

``run_planner(conn, params)`` computes everything in memory (geopandas frames); ``save_run`` persists the cells
in ``planner_cells`` under a ``planner_runs`` row keyed by the run parameters, for the map layers; ``blind_spots``
reads the ranked table back.

Definitions
-----------
- *children*: 0-5 population spread on the grid (see :mod:`geo.analysis.demand`); *places*: 정원 of operating
  centres; *free places*: the estimated free places (``free_by_age.total``).
- *children per place*: children / places of the centres inside the area (null without places).
- *childcare desert*: more than 50 children and either no centre or more than 3 children per place inside the
  area (Center for American Progress). On 250 m cells most cells hold few children: the rule is most telling
  per 행정동 and 구; cells use the catchment measures below.
- *nearest_m*: straight-line distance from the cell's demand point to the nearest centre (EPSG:5179 metres).
- *sfca* / *e2sfca*: places per child within the catchment (2SFCA with the chosen decay, E2SFCA with zones).
- *blind spot* (cell): at least ``min_children`` children and either fewer than ``1 / max_children_per_place``
  places per child in reach (E2SFCA) or no centre within ``max_distance_m``. ``gap_places`` = places missing to
  reach one place per ``max_children_per_place`` children; blind spots are ranked by it.
Per 행정동 and 구, catchment measures are child-weighted means over the cells (pieces) inside them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from geo.analysis import accessibility as acc
from geo.analysis.demand import grid_cells, grid_pieces
from geo.domain import OPERATING_STATUSES, Service, UnknownServiceLabel, parse_service_name
from geo.errors import InvalidQuery, NotFound

# Service types a planner asks about; "disability" is 장애아통합 or 장애아전문.
SERVICE_GROUPS: dict[str, tuple[Service, ...]] = {
    "disability": (Service.disability_integrated, Service.disability_specialised),
}
DECAYS = ("none", "gaussian")


def service_filter(service: str | None) -> tuple[str, ...]:
    """The 제공서비스 values a service option matches (any of them); empty for all centres."""
    if service is None or service in ("", "all"):
        return ()
    if service in SERVICE_GROUPS:
        return tuple(s.value for s in SERVICE_GROUPS[service])
    try:
        return (parse_service_name(service).value,)
    except UnknownServiceLabel:
        known = ", ".join([s.value for s in Service] + list(SERVICE_GROUPS))
        raise InvalidQuery(f"unknown service {service!r}; one of: all, {known}", param="service") from None


@dataclass(frozen=True)
class PlannerParams:
    """Parameters of one planner run; their canonical JSON keys the persisted results."""

    # 시도 (11 = Seoul) or 구 (11440 = 마포구) code prefix of the area studied.
    area_code: str = "11"
    cell_m: float = 250.0
    service: str = "all"
    catchment_m: float = 1000.0
    decay: str = "none"
    zones_m: tuple[float, ...] | None = None
    zone_weights: tuple[float, ...] = acc.DEFAULT_ZONE_WEIGHTS
    min_children: float = 10.0
    max_children_per_place: float = 3.0
    max_distance_m: float | None = None
    desert_min_children: float = 50.0

    def __post_init__(self) -> None:
        service_filter(self.service)
        if self.decay not in DECAYS:
            raise InvalidQuery(f"decay must be one of {', '.join(DECAYS)}, not {self.decay!r}", param="decay")
        if not 0 < self.catchment_m <= 20_000:
            raise InvalidQuery(f"the catchment must be in (0, 20000] m, not {self.catchment_m}", param="catchment_m")
        if self.max_children_per_place <= 0:
            raise InvalidQuery("max_children_per_place must be positive", param="max_children_per_place")
        if self.max_distance_m is not None and self.max_distance_m <= 0:
            raise InvalidQuery("max_distance_m must be positive", param="max_distance_m")
        acc.step_decay(self.zones, self.zone_weights)  # validates the zones
        if self.zones[-1] > self.catchment_m:
            raise InvalidQuery("the last E2SFCA zone may not extend beyond the catchment", param="zones_m")

    @property
    def zones(self) -> tuple[float, ...]:
        """E2SFCA zone limits in metres (default: thirds of the catchment)."""
        return tuple(self.zones_m) if self.zones_m is not None else acc.default_zones_m(self.catchment_m)

    @property
    def reach_m(self) -> float:
        """Distance beyond which a cell counts as without a centre (default: the catchment)."""
        return self.max_distance_m if self.max_distance_m is not None else self.catchment_m

    def key(self) -> str:
        """A stable hash of the parameters (sha256 of their canonical JSON)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:32]

    def to_json(self) -> str:
        """Canonical JSON of the parameters (sorted keys, zones resolved)."""
        data = asdict(self)
        data["zones_m"] = list(self.zones)
        data["zone_weights"] = list(self.zone_weights)
        return json.dumps(data, sort_keys=True)


_SUPPLY = """
    SELECT f.id, f.code, f.name, f.facility_type, f.district_code, f.admin_dong_id,
           coalesce(f.capacity, 0) AS places,
           coalesce((f.free_by_age->>'total')::int, 0) AS free_places,
           f.services,
           ST_X(ST_Transform(f.geom_4326, 5179)) AS x_5179,
           ST_Y(ST_Transform(f.geom_4326, 5179)) AS y_5179
    FROM facilities f
    WHERE f.status = ANY(:statuses) AND f.district_code LIKE :prefix
      AND (cardinality(CAST(:services AS text[])) = 0 OR f.services && CAST(:services AS text[]))
    ORDER BY f.id
"""


def centres(conn: Connection, *, area_code: str = "11", service: str | None = None) -> pd.DataFrame:
    """Operating centres of one 시도 or 구 (code prefix) offering ``service`` (any centre for None/"all"):
    places, free places and coordinates in EPSG:5179 metres (``x_5179``, ``y_5179``)."""
    frame = pd.read_sql_query(text(_SUPPLY), conn, params={
        "statuses": [s.value for s in OPERATING_STATUSES], "prefix": f"{area_code}%",
        "services": list(service_filter(service))})
    return frame


@dataclass
class PlannerResult:
    """Frames of one run: ``cells`` (EPSG:5179 polygons), ``dongs`` and ``districts`` (EPSG:4326), ``centres``."""

    params: PlannerParams
    cells: gpd.GeoDataFrame
    dongs: gpd.GeoDataFrame
    districts: gpd.GeoDataFrame
    centres: pd.DataFrame
    summary: dict[str, float] = field(default_factory=dict)

    def blind_spots(self) -> gpd.GeoDataFrame:
        """Blind-spot cells, ranked (largest gap in places first)."""
        return self.cells[self.cells["blind_spot"]].sort_values("blind_rank")


def _count_in(keys: pd.Series, values: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return values.groupby(keys)[columns].agg("sum").assign(centres=values.groupby(keys).size())


def _area_measures(frame: pd.DataFrame, params: PlannerParams) -> pd.DataFrame:
    children = frame["children"].astype(float)
    places = frame["places"].astype(float)
    frame["children_per_place"] = (children / places.where(places > 0)).astype(float)
    frame["desert"] = acc.is_childcare_desert(children.to_numpy(), places.to_numpy(),
                                              min_children=params.desert_min_children,
                                              max_children_per_place=params.max_children_per_place)
    return frame


def run_planner(conn: Connection, params: PlannerParams | None = None) -> PlannerResult:
    """Compute every planner measure for one area (시도 or 구) and service type (see the module docstring)."""
    params = params or PlannerParams()
    pieces = grid_pieces(conn, area_code=params.area_code, cell_m=params.cell_m)
    if pieces.empty:
        raise NotFound(f"no 행정동 boundaries loaded for area {params.area_code}", area_code=params.area_code)
    cells = grid_cells(pieces)
    supply = centres(conn, area_code=params.area_code, service=params.service)

    demand_xy = cells[["x_5179", "y_5179"]].to_numpy()
    supply_xy = supply[["x_5179", "y_5179"]].to_numpy()
    children = cells["children"].to_numpy(dtype=float)
    places = supply["places"].to_numpy(dtype=float)

    pairs = acc.pairs_within(demand_xy, supply_xy, max_distance_m=params.catchment_m)
    decay = acc.gaussian_decay(params.catchment_m) if params.decay == "gaussian" else None
    cells["sfca"] = acc.two_step_fca(pairs, children, places, catchment_m=params.catchment_m, decay=decay)
    cells["e2sfca"] = acc.enhanced_two_step_fca(pairs, children, places, catchment_m=params.catchment_m,
                                                zones_m=params.zones, zone_weights=params.zone_weights)
    cells["places_in_reach"] = np.bincount(pairs.demand, weights=places[pairs.supply], minlength=len(cells))
    nearest, nearest_idx = acc.nearest_distance_m(demand_xy, supply_xy)
    cells["nearest_m"] = nearest
    cells["nearest_centre_id"] = np.where(nearest_idx >= 0, supply["id"].to_numpy()[np.maximum(nearest_idx, 0)],
                                          -1) if len(supply) else -1

    # Centres inside each cell (same grid: floor of the coordinate over the cell size).
    supply["cell_i"] = np.floor(supply["x_5179"] / params.cell_m).astype(int)
    supply["cell_j"] = np.floor(supply["y_5179"] / params.cell_m).astype(int)
    in_cell = supply.groupby(["cell_i", "cell_j"]).agg(centres=("id", "size"), places=("places", "sum"),
                                                       free_places=("free_places", "sum")).reset_index()
    cells = cells.merge(in_cell, on=["cell_i", "cell_j"], how="left")
    for col in ("centres", "places", "free_places"):
        cells[col] = cells[col].fillna(0).astype(int)
    cells = _area_measures(cells, params)

    threshold = 1.0 / params.max_children_per_place
    cells["gap_places"] = np.maximum(0.0, children * threshold - cells["e2sfca"].to_numpy() * children)
    cells["blind_spot"] = (children >= params.min_children) & (
        (cells["e2sfca"] < threshold) | (cells["nearest_m"] > params.reach_m))
    order = cells[cells["blind_spot"]].sort_values(["gap_places", "children"], ascending=False).index
    cells["blind_rank"] = pd.Series(pd.NA, index=cells.index, dtype="Int64")
    cells.loc[order, "blind_rank"] = np.arange(1, len(order) + 1)

    # 행정동 and 구: children from the pieces, centres by their recorded dong/구, catchment measures weighted.
    measured = pieces[["cell_i", "cell_j", "admin_dong_id", "district_code", "children"]].merge(
        cells[["cell_i", "cell_j", "sfca", "e2sfca", "nearest_m", "blind_spot", "gap_places", "children"]]
        .rename(columns={"children": "cell_children"}), on=["cell_i", "cell_j"])
    share = (measured["children"] / measured["cell_children"].where(measured["cell_children"] > 0)).fillna(0.0)
    measured["w_sfca"] = measured["children"] * measured["sfca"]
    measured["w_e2sfca"] = measured["children"] * measured["e2sfca"]
    measured["w_nearest"] = measured["children"] * measured["nearest_m"]
    measured["beyond"] = measured["children"] * (measured["nearest_m"] > params.reach_m)
    measured["blind_children"] = measured["children"] * measured["blind_spot"]
    measured["gap_places"] = measured["gap_places"] * share
    sums = ["children", "w_sfca", "w_e2sfca", "w_nearest", "beyond", "blind_children", "gap_places"]

    dongs = _areas(conn, "dong", params.area_code)
    by_dong = measured.groupby("admin_dong_id")[sums].sum()
    dongs = dongs.join(by_dong, on="id").join(_count_in(supply["admin_dong_id"], supply, ["places", "free_places"]),
                                              on="id")
    districts = _areas(conn, "district", params.area_code)
    by_district = measured.groupby("district_code")[sums].sum()
    districts = districts.join(by_district, on="code").join(
        _count_in(supply["district_code"], supply, ["places", "free_places"]), on="code")
    for frame in (dongs, districts):
        for col in ("centres", "places", "free_places"):
            frame[col] = frame[col].fillna(0).astype(int)
        frame["children"] = frame["children"].fillna(0.0)
        kids = frame["children"].where(frame["children"] > 0)
        frame["sfca"] = frame.pop("w_sfca") / kids
        frame["e2sfca"] = frame.pop("w_e2sfca") / kids
        frame["nearest_m_mean"] = frame.pop("w_nearest") / kids
        frame["share_beyond_reach"] = frame.pop("beyond") / kids
        frame["blind_children"] = frame["blind_children"].fillna(0.0)
        frame["gap_places"] = frame["gap_places"].fillna(0.0)
        _area_measures(frame, params)

    summary = {
        "cells": float(len(cells)), "children": float(children.sum()), "centres": float(len(supply)),
        "places": float(places.sum()), "blind_spots": float(cells["blind_spot"].sum()),
        "blind_children": float(cells.loc[cells["blind_spot"], "children"].sum()),
        "gap_places": float(cells.loc[cells["blind_spot"], "gap_places"].sum()),
        "desert_dongs": float(dongs["desert"].sum()),
    }
    return PlannerResult(params, cells, dongs, districts, supply, summary)


_DONGS = """
    SELECT a.id, coalesce(a.mois_code, a.kostat_code) AS code, a.name, a.district_code, d.name AS district_name,
           a.geom_4326 AS geometry
    FROM admin_dongs a JOIN districts d ON d.code = a.district_code
    WHERE a.district_code LIKE :prefix ORDER BY a.district_code, a.name
"""
_DISTRICTS = "SELECT d.code, d.name, d.geom_4326 AS geometry FROM districts d WHERE d.code LIKE :prefix ORDER BY d.code"


def _areas(conn: Connection, level: str, area_code: str) -> gpd.GeoDataFrame:
    sql = _DONGS if level == "dong" else _DISTRICTS
    return gpd.read_postgis(text(sql), conn, geom_col="geometry", params={"prefix": f"{area_code}%"})


# --- persistence -------------------------------------------------------------------------------------------

_INSERT_CELL = """
    INSERT INTO planner_cells (run_id, cell_i, cell_j, admin_dong_id, district_code, children, centres, places,
        free_places, children_per_place, desert, nearest_m, sfca, e2sfca, places_in_reach, blind_spot, blind_rank,
        gap_places, geom_4326)
    VALUES (:run_id, :cell_i, :cell_j, :admin_dong_id, :district_code, :children, :centres, :places,
        :free_places, :children_per_place, :desert, :nearest_m, :sfca, :e2sfca, :places_in_reach, :blind_spot,
        :blind_rank, :gap_places, ST_Multi(ST_Transform(ST_GeomFromWKB(:wkb, 5179), 4326)))
"""


def _none_if_nan(value: object) -> object:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def save_run(conn: Connection, result: PlannerResult) -> int:
    """Persist a run's cells (replacing an earlier run with the same parameters); returns the run id.

    Runs inside the caller's transaction: either the whole run is written or nothing."""
    params = result.params
    conn.execute(text("DELETE FROM planner_runs WHERE params_key = :key"), {"key": params.key()})
    run_id = conn.execute(text("""
        INSERT INTO planner_runs (params_key, params, area_code, service, cell_m, catchment_m, summary)
        VALUES (:key, CAST(:params AS jsonb), :area_code, :service, :cell_m, :catchment_m, CAST(:summary AS jsonb))
        RETURNING id"""), {"key": params.key(), "params": params.to_json(), "area_code": params.area_code,
                           "service": params.service, "cell_m": params.cell_m, "catchment_m": params.catchment_m,
                           "summary": json.dumps(result.summary)}).scalar_one()
    cols = ["cell_i", "cell_j", "admin_dong_id", "district_code", "children", "centres", "places", "free_places",
            "children_per_place", "desert", "nearest_m", "sfca", "e2sfca", "places_in_reach", "blind_spot",
            "blind_rank", "gap_places"]
    rows = []
    for rec, geom in zip(result.cells[cols].astype(object).to_dict("records"), result.cells.geometry, strict=True):
        row = {k: _none_if_nan(v) for k, v in rec.items()}
        for k in ("cell_i", "cell_j", "admin_dong_id", "centres", "places", "free_places", "blind_rank"):
            row[k] = None if row[k] is None else int(row[k])  # type: ignore[call-overload]
        for k in ("children", "children_per_place", "nearest_m", "sfca", "e2sfca", "places_in_reach",
                  "gap_places"):
            row[k] = None if row[k] is None else float(row[k])  # type: ignore[arg-type]
        row["desert"], row["blind_spot"] = bool(row["desert"]), bool(row["blind_spot"])
        row["run_id"], row["wkb"] = run_id, geom.wkb
        rows.append(row)
    if rows:
        conn.execute(text(_INSERT_CELL), rows)
    return int(run_id)


_BLIND_SPOTS = """
    SELECT c.blind_rank, c.cell_i, c.cell_j, c.district_code, d.name AS district_name, c.admin_dong_id,
           a.name AS dong_name, c.children, c.places_in_reach, c.e2sfca, c.nearest_m, c.gap_places,
           c.geom_4326 AS geometry
    FROM planner_cells c
    LEFT JOIN districts d ON d.code = c.district_code
    LEFT JOIN admin_dongs a ON a.id = c.admin_dong_id
    WHERE c.run_id = :run_id AND c.blind_spot
    ORDER BY c.blind_rank
    LIMIT :limit
"""


def blind_spots(conn: Connection, run_id: int, *, limit: int = 100) -> gpd.GeoDataFrame:
    """The ranked blind spots of a saved run (EPSG:4326 cells)."""
    if not conn.execute(text("SELECT EXISTS (SELECT 1 FROM planner_runs WHERE id = :id)"), {"id": run_id}).scalar():
        raise NotFound(f"no planner run {run_id}", run_id=run_id)
    return gpd.read_postgis(text(_BLIND_SPOTS), conn, geom_col="geometry", params={"run_id": run_id, "limit": limit})
