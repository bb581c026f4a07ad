"""A 구 at a glance (geo.analysis.district) on hand-written planner rows over the real 행정동 of 마포구: the blind
spots are those the ``blind_spots`` layer serves inside the 구 (latest run per service, same ids), most places short
first; the planner's figures sum the 구's cells of the latest run over all centres; an older run is ignored."""

from __future__ import annotations

from sqlalchemy import Connection, select, text

from geo.analysis import district as dash
from geo.layers.blind_spots import LAYER

MAPO, JUNG = "11440", "11140"


def _run(conn: Connection, *, service: str, key: str, created: str) -> int:
    return int(conn.execute(text("""
        INSERT INTO planner_runs (params_key, params, area_code, service, cell_m, catchment_m, summary, created_at)
        VALUES (:k, '{}', '11', :s, 250, 1000, '{}', CAST(:c AS timestamptz)) RETURNING id"""),
                            {"k": key, "s": service, "c": created}).scalar_one())


def _cell(conn: Connection, run_id: int, i: int, district: str, *, children: float, gap: float, blind: bool) -> None:
    dong = conn.execute(text("SELECT id FROM admin_dongs WHERE district_code = :d ORDER BY id LIMIT 1"),
                        {"d": district}).scalar_one()
    conn.execute(text("""
        INSERT INTO planner_cells (run_id, cell_i, cell_j, admin_dong_id, district_code, children, centres, places,
            free_places, children_per_place, desert, nearest_m, sfca, e2sfca, places_in_reach, blind_spot,
            blind_rank, gap_places, geom_4326)
        SELECT :r, :i, 7, :dong, :d, :children, 1, 10, 0, NULL, false, 100, 0.1, 0.2, 5, :blind,
               CASE WHEN :blind THEN :i END, :gap, ST_Multi(ST_Buffer(ST_PointOnSurface(geom_4326), 0.001))
        FROM admin_dongs WHERE id = :dong"""),
                 {"r": run_id, "i": i, "dong": dong, "d": district, "children": children, "blind": blind,
                  "gap": gap})


def test_blind_spots_and_planner_figures_of_a_district(conn: Connection) -> None:
    old = _run(conn, service="all", key="old", created="2026-01-01")
    _cell(conn, old, 1, MAPO, children=999, gap=99, blind=True)
    new = _run(conn, service="all", key="new", created="2026-06-01")
    _cell(conn, new, 1, MAPO, children=40, gap=3.5, blind=True)
    _cell(conn, new, 2, MAPO, children=60, gap=8.0, blind=True)
    _cell(conn, new, 3, MAPO, children=100, gap=0, blind=False)
    _cell(conn, new, 4, JUNG, children=500, gap=50, blind=True)
    night = _run(conn, service="twenty_four_hour", key="night", created="2026-06-02")
    _cell(conn, night, 5, MAPO, children=30, gap=5.0, blind=True)

    spots = dash.blind_spots(conn, MAPO)
    assert [s["id"] for s in spots] == ["all-2-7", "twenty_four_hour-5-7", "all-1-7"]
    assert all(s["dong_name"] and 126 < s["lon"] < 127.2 and 37.4 < s["lat"] < 37.7 for s in spots)
    props = {p.name: p.column for p in LAYER.properties}
    served = set(conn.execute(select(LAYER.id_column).select_from(LAYER.from_)
                              .where(props["district_code"] == MAPO)).scalars())
    assert served == {s["id"] for s in spots}

    figures = dash.planner_figures(conn, MAPO)
    assert figures is not None and figures["run_id"] == new
    assert (figures["children"], figures["blind_spots"], figures["blind_children"], figures["gap_places"]) == \
        (200, 2, 100, 11.5)
    assert abs(figures["e2sfca"] - 0.2) < 1e-9
    assert dash.planner_figures(conn, "11110") is not None  # the Seoul-wide run covers every 구 (no cells there)
    conn.execute(text("DELETE FROM planner_runs"))
    assert dash.planner_figures(conn, MAPO) is None and dash.blind_spots(conn, MAPO) == []
