"""Demand for childcare: 0-5 population per 행정동 spread to a square grid (EPSG:5179) inside each dong.

The population of a 행정동 (``admin_dongs.population_0_5``: a MOIS 주민등록 export when imported, else the
census estimate) is spread **uniformly by area** over the parts of the grid cells that fall inside the dong:
no residential land-use source is available as a PyPI package, so children are assumed evenly spread within
each dong. A cell on a dong boundary gets a share from each dong it overlaps, so the grid total equals the
dong total exactly.

Cells are keyed by their column/row on a grid anchored at the origin of EPSG:5179 (``cell_i = floor(x /
cell_m)``), so the same cell has the same key in every run and for every dong.
"""

from __future__ import annotations

import geopandas as gpd
from sqlalchemy import Connection, text

from geo.errors import InvalidQuery

# One row per (cell, dong) piece: the part of a grid square inside one dong, with its share of the children.
_PIECES = """
    WITH d AS (
        SELECT a.id, a.district_code, coalesce(a.population_0_5, 0) AS population_0_5,
               ST_Transform(a.geom_4326, 5179) AS geom_5179
        FROM admin_dongs a
        WHERE a.district_code LIKE :prefix
    ), p AS (
        SELECT d.id AS admin_dong_id, d.district_code, d.population_0_5, s.i AS cell_i, s.j AS cell_j,
               ST_CollectionExtract(ST_Intersection(s.geom, d.geom_5179), 3) AS piece_5179
        FROM d CROSS JOIN LATERAL ST_SquareGrid(:cell_m, d.geom_5179) AS s
        WHERE ST_Intersects(s.geom, d.geom_5179)
    ), kept AS (
        -- Slivers under 1 m2 are reprojection noise along cell edges, not land.
        SELECT p.*, ST_Area(piece_5179) AS area_m2 FROM p WHERE ST_Area(piece_5179) >= 1.0
    )
    SELECT admin_dong_id, district_code, cell_i, cell_j, area_m2,
           population_0_5 * area_m2 / sum(area_m2) OVER (PARTITION BY admin_dong_id) AS children,
           piece_5179 AS geometry
    FROM kept
    ORDER BY cell_i, cell_j, admin_dong_id
"""


def grid_pieces(conn: Connection, *, area_code: str = "11", cell_m: float = 250.0) -> gpd.GeoDataFrame:
    """Grid pieces (cell x 행정동) with their children aged 0-5, polygons in EPSG:5179, for the 행정동 whose 구
    code starts with ``area_code`` (a 시도 such as 11, or one 구 such as 11440).

    Columns: ``admin_dong_id``, ``district_code``, ``cell_i``, ``cell_j``, ``area_m2``, ``children`` (float:
    the dong's 0-5 population times the piece's share of the dong's area) and ``geometry``.
    """
    if not 50 <= cell_m <= 5000:
        raise InvalidQuery(f"the grid cell must be 50-5000 m, not {cell_m} m", param="cell_m")
    if not area_code.isdigit() or len(area_code) > 10:
        raise InvalidQuery(f"an area code is a 시도 (11) or 구 (11440) code, not {area_code!r}", param="area_code")
    frame = gpd.read_postgis(text(_PIECES), conn, geom_col="geometry",
                             params={"prefix": f"{area_code}%", "cell_m": float(cell_m)})
    frame = frame.set_crs(5179, allow_override=True)
    frame["children"] = frame["children"].fillna(0.0).astype(float)
    return frame


def grid_cells(pieces: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Cells from pieces: children summed, the cell's 행정동 and 구 = the piece with the most area, geometry =
    the part of the square inside the area studied (EPSG:5179), demand point = the centroid of that part."""
    main = (pieces.sort_values(["cell_i", "cell_j", "area_m2"], ascending=[True, True, False])
            .drop_duplicates(["cell_i", "cell_j"])[["cell_i", "cell_j", "admin_dong_id", "district_code"]])
    dissolved = pieces[["cell_i", "cell_j", "children", "area_m2", "geometry"]].dissolve(
        by=["cell_i", "cell_j"], aggfunc="sum", as_index=False)
    cells = dissolved.merge(main, on=["cell_i", "cell_j"], how="left")
    # Area of the union: 행정동 boundaries of some sources overlap slightly, pieces may too.
    cells["area_m2"] = cells.geometry.area
    centroids = cells.geometry.centroid
    cells["x_5179"] = centroids.x
    cells["y_5179"] = centroids.y
    cells["cell_id"] = cells["cell_i"].astype(str) + "_" + cells["cell_j"].astype(str)
    return cells.sort_values(["cell_i", "cell_j"]).reset_index(drop=True)
