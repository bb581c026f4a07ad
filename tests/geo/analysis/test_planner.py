"""Planner measures in PostGIS: a hand-built 1 km square 행정동, then the real Seoul data checked against SQL and
PySAL ``access``."""

from __future__ import annotations

import numpy as np
import pytest
from access import weights as access_weights
from sqlalchemy import Connection, Engine, text

from geo.analysis import accessibility as acc
from geo.analysis.planner import PlannerParams, blind_spots, run_planner, save_run
from geo.analysis.sites import suggest_sites
from geo.errors import InvalidQuery, NotFound
from tests.geo.analysis.test_accessibility import access_scores

# A 1 km square 행정동 on the EPSG:5179 grid (4 x 4 cells of 250 m) with 160 children in an invented 시도 99.
X0, Y0 = 950_000.0, 1_950_000.0


def _square(conn: Connection, *, population: int = 160) -> int:
    env = "ST_Multi(ST_Transform(ST_MakeEnvelope(:x0, :y0, :x0 + 1000, :y0 + 1000, 5179), 4326))"
    conn.execute(text(f"INSERT INTO districts (code, name, sido_name, source, geom_4326) "
                      f"VALUES ('99010', '시험구', '시험도', 'test', {env})"), {"x0": X0, "y0": Y0})
    return int(conn.execute(text(f"""
        INSERT INTO admin_dongs (district_code, name, population_0_5, geom_4326)
        VALUES ('99010', '시험동', :pop, {env}) RETURNING id"""), {"x0": X0, "y0": Y0, "pop": population}).scalar_one())


def _centre(conn: Connection, code: str, dong_id: int, *, x: float, y: float, places: int,
            services: tuple[str, ...] = ()) -> None:
    conn.execute(text("""
        INSERT INTO facilities (code, name, facility_type, status, district_code, admin_dong_id, capacity, enrolled,
                                free_by_age, services, geocode_quality, source, geom_4326)
        VALUES (:code, :name, 'national_public', 'active', '99010', :dong, :places, 0,
                jsonb_build_object('total', CAST(:places AS int)), CAST(:services AS text[]), 'source', 'test',
                ST_Transform(ST_SetSRID(ST_MakePoint(:x, :y), 5179), 4326))"""),
                 {"code": code, "name": code, "dong": dong_id, "places": places, "x": x, "y": y,
                  "services": list(services)})


@pytest.fixture()
def square(connection: Connection) -> tuple[Connection, int]:
    dong = _square(connection)
    # One centre of 40 places at the middle of cell (1, 1) of the square.
    _centre(connection, "T1", dong, x=X0 + 375, y=Y0 + 375, places=40)
    return connection, dong


def test_children_spread_uniformly_on_the_grid(square) -> None:
    conn, _ = square
    result = run_planner(conn, PlannerParams(area_code="99", catchment_m=5000))
    cells = result.cells
    assert len(cells) == 16
    assert cells["children"].to_numpy() == pytest.approx(np.full(16, 10.0), abs=1e-6)
    assert cells.geometry.area.to_numpy() == pytest.approx(np.full(16, 62_500.0), rel=1e-6)
    assert set(zip(cells["cell_i"], cells["cell_j"], strict=True)) == {
        (3800 + i, 7800 + j) for i in range(4) for j in range(4)}


def test_one_centre_reaching_everyone(square) -> None:
    conn, dong = square
    result = run_planner(conn, PlannerParams(area_code="99", catchment_m=5000, min_children=5))
    cells = result.cells.set_index("cell_id")
    # 40 places for 160 children, all within every zone 1 (farthest demand point 707 m < 1667 m).
    assert cells["sfca"].to_numpy() == pytest.approx(np.full(16, 0.25))
    assert cells["e2sfca"].to_numpy() == pytest.approx(np.full(16, 0.25))
    home = cells.loc["3801_7801"]
    assert home["centres"] == 1 and home["places"] == 40 and home["nearest_m"] == pytest.approx(0, abs=1e-3)
    assert not home["desert"]  # 10 children: below the 50 of the rule
    assert cells.loc["3803_7803", "nearest_m"] == pytest.approx(np.hypot(500, 500), abs=1e-3)
    # 0.25 places per child < 1/3: every cell (10 children, at least 5) is a blind spot, 10/3 - 2.5 places short.
    assert cells["blind_spot"].all() and sorted(cells["blind_rank"]) == list(range(1, 17))
    assert cells["gap_places"].to_numpy() == pytest.approx(np.full(16, 10 / 3 - 2.5))
    (d,) = result.dongs.itertuples()
    assert (d.id, d.children, d.places, d.centres) == (dong, pytest.approx(160), 40, 1)
    assert d.children_per_place == pytest.approx(4.0) and d.desert  # 160 > 50 and 4 > 3 children per place
    assert d.e2sfca == pytest.approx(0.25) and d.share_beyond_reach == 0
    (g,) = result.districts.itertuples()
    assert g.code == "99010" and g.desert and g.gap_places == pytest.approx(16 * (10 / 3 - 2.5))


def test_a_second_centre_ends_the_desert(square) -> None:
    conn, dong = square
    _centre(conn, "T2", dong, x=X0 + 875, y=Y0 + 875, places=40)
    result = run_planner(conn, PlannerParams(area_code="99", catchment_m=5000))
    assert result.cells["sfca"].to_numpy() == pytest.approx(np.full(16, 0.5))
    assert not result.cells["blind_spot"].any()
    assert result.dongs["children_per_place"].iloc[0] == pytest.approx(2.0) and not result.dongs["desert"].iloc[0]


def test_small_catchment_hand_computed(square) -> None:
    conn, _ = square
    result = run_planner(conn, PlannerParams(area_code="99", catchment_m=300))
    cells = result.cells.set_index("cell_id")
    # Within 300 m of the centre: its own cell (0 m) and the 4 edge neighbours (250 m): 50 children, R = 0.8.
    reached = {"3801_7801", "3800_7801", "3802_7801", "3801_7800", "3801_7802"}
    expected = np.array([0.8 if c in reached else 0.0 for c in cells.index])
    assert cells["sfca"].to_numpy() == pytest.approx(expected)
    # E2SFCA zones 100/200/300 m: own cell weight 1, neighbours (250 m) 0.22: R = 40 / (10 + 4 * 2.2).
    r = 40 / (10 + 4 * 0.22 * 10)
    e_expected = np.array([r if c == "3801_7801" else 0.22 * r if c in reached else 0.0 for c in cells.index])
    assert cells["e2sfca"].to_numpy() == pytest.approx(e_expected)
    assert result.dongs["share_beyond_reach"].iloc[0] == pytest.approx(110 / 160)


def test_service_filter_and_sites(square) -> None:
    conn, dong = square
    _centre(conn, "T24", dong, x=X0 + 125, y=Y0 + 125, places=10, services=("twenty_four_hour",))
    result = run_planner(conn, PlannerParams(area_code="99", service="24시간", catchment_m=300))
    assert result.centres["code"].tolist() == ["T24"]
    assert run_planner(conn, PlannerParams(area_code="99", catchment_m=300)).centres["code"].tolist() == ["T1", "T24"]
    # Cells farther than 300 m from the 24h centre hold the unserved children; one site covers a plus-shape of
    # cells (itself and 4 neighbours at 250 m) at most: 50 children.
    sites = suggest_sites(result, k=1)
    assert len(sites) == 1 and bool(sites["optimal"].iloc[0])
    assert sites["children_covered_total"].iloc[0] == pytest.approx(50.0)
    assert sites["children_newly_covered"].iloc[0] == pytest.approx(50.0)
    unserved = result.cells["nearest_m"] > 300
    assert sites["unserved_children"].iloc[0] == pytest.approx(result.cells.loc[unserved, "children"].sum())


def test_save_run_and_ranked_blind_spots(square) -> None:
    conn, _ = square
    params = PlannerParams(area_code="99", catchment_m=5000, min_children=5)
    result = run_planner(conn, params)
    run_id = save_run(conn, result)
    rows = conn.execute(text("""SELECT count(*), sum(children), min(ST_Area(ST_Transform(geom_4326, 5179))),
                                       bool_and(blind_spot) FROM planner_cells WHERE run_id = :r"""),
                        {"r": run_id}).one()
    assert rows[0] == 16 and rows[1] == pytest.approx(160) and rows[2] == pytest.approx(62_500, rel=1e-6) and rows[3]
    spots = blind_spots(conn, run_id, limit=5)
    assert spots["blind_rank"].tolist() == [1, 2, 3, 4, 5] and (spots["dong_name"] == "시험동").all()
    again = save_run(conn, run_planner(conn, params))
    assert again != run_id
    assert conn.execute(text("SELECT count(*) FROM planner_runs WHERE params_key = :k"),
                        {"k": params.key()}).scalar_one() == 1
    assert conn.execute(text("SELECT count(*) FROM planner_cells WHERE run_id = :r"), {"r": run_id}).scalar_one() == 0
    with pytest.raises(NotFound):
        blind_spots(conn, run_id)


@pytest.mark.parametrize("bad", [{"service": "swimming"}, {"decay": "linear"}, {"catchment_m": 0},
                                 {"zones_m": (500.0, 1500.0), "zone_weights": (1.0, 0.5)}, {"cell_m": 10}])
def test_bad_parameters(connection: Connection, bad: dict) -> None:
    with pytest.raises(InvalidQuery):
        run_planner(connection, PlannerParams(**bad))


def test_unknown_region(connection: Connection) -> None:
    with pytest.raises(NotFound):
        run_planner(connection, PlannerParams(area_code="98"))


# --- real Seoul data ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seoul(seoul_engine: Engine):
    with seoul_engine.connect() as conn:
        yield conn, run_planner(conn, PlannerParams())


def test_seoul_grid_keeps_every_child(seoul) -> None:
    conn, result = seoul
    pop = dict(conn.execute(text("SELECT id, coalesce(population_0_5, 0) FROM admin_dongs "
                                 "WHERE district_code LIKE '11%'")).all())
    by_dong = result.dongs.set_index("id")["children"]
    assert len(by_dong) == len(pop)
    for dong_id, children in pop.items():
        assert by_dong[dong_id] == pytest.approx(children, abs=1e-6)
    assert result.cells["children"].sum() == pytest.approx(sum(pop.values()), rel=1e-9)
    area = conn.execute(text("SELECT ST_Area(ST_Union(ST_Transform(geom_4326, 5179))) FROM admin_dongs "
                             "WHERE district_code LIKE '11%'")).scalar_one()
    assert result.cells["area_m2"].sum() == pytest.approx(area, rel=1e-6)
    assert result.cells["area_m2"].max() <= 62_500 + 1e-6


def test_seoul_supply_and_desert_rule_match_sql(seoul) -> None:
    conn, result = seoul
    sql = {r.code: r for r in conn.execute(text("""
        SELECT d.code, count(f.id) AS centres, coalesce(sum(f.capacity), 0) AS places,
               (SELECT sum(population_0_5) FROM admin_dongs a WHERE a.district_code = d.code) AS children
        FROM districts d LEFT JOIN facilities f ON f.district_code = d.code AND f.status IN ('active', 'reopened')
        WHERE d.code LIKE '11%' GROUP BY d.code"""))}
    assert len(result.districts) == 25
    for r in result.districts.itertuples():
        assert (r.centres, r.places) == (sql[r.code].centres, sql[r.code].places)
    deserts = {r.id for r in conn.execute(text("""
        SELECT a.id FROM admin_dongs a
        LEFT JOIN facilities f ON f.admin_dong_id = a.id AND f.status IN ('active', 'reopened')
        WHERE a.district_code LIKE '11%'
        GROUP BY a.id HAVING coalesce(a.population_0_5, 0) > 50
           AND (coalesce(sum(f.capacity), 0) = 0 OR a.population_0_5 > 3 * coalesce(sum(f.capacity), 0))"""))}
    assert set(result.dongs.loc[result.dongs["desert"], "id"]) == deserts and deserts


def test_seoul_nearest_distance_matches_postgis(seoul) -> None:
    conn, result = seoul
    sample = result.cells.sample(30, random_state=1)
    for cell in sample.itertuples():
        expected = conn.execute(text("""
            SELECT ST_Distance(ST_Transform(f.geom_4326, 5179), ST_SetSRID(ST_MakePoint(:x, :y), 5179))
            FROM facilities f WHERE f.status IN ('active', 'reopened') AND f.district_code LIKE '11%'
            ORDER BY ST_Transform(f.geom_4326, 5179) <-> ST_SetSRID(ST_MakePoint(:x, :y), 5179) LIMIT 1"""),
                                {"x": cell.x_5179, "y": cell.y_5179}).scalar_one()
        assert cell.nearest_m == pytest.approx(expected, abs=1e-6)


def test_seoul_accessibility_equals_access(seoul) -> None:
    _, result = seoul
    cells, centres = result.cells, result.centres
    demand_xy, supply_xy = cells[["x_5179", "y_5179"]].to_numpy(), centres[["x_5179", "y_5179"]].to_numpy()
    children, places = cells["children"].to_numpy(), centres["places"].to_numpy(dtype=float)
    ref = access_scores(demand_xy, children, supply_xy, places, catchment_m=1000)
    finite = np.isfinite(ref)
    # access divides by zero for centres that reach only empty cells; we count no ratio there.
    assert finite.mean() > 0.99
    assert np.abs(cells["sfca"].to_numpy()[finite] - ref[finite]).max() <= 1e-9
    step = access_weights.step_fn(dict(zip(acc.default_zones_m(1000), acc.DEFAULT_ZONE_WEIGHTS, strict=True)))
    ref_e = access_scores(demand_xy, children, supply_xy, places, catchment_m=1000, weight_fn=step)
    finite = np.isfinite(ref_e)
    assert np.abs(cells["e2sfca"].to_numpy()[finite] - ref_e[finite]).max() <= 1e-9
    # All places are handed out to children within reach (centres with children in reach).
    assert float(children @ cells["sfca"].to_numpy()) <= places.sum() + 1e-6


def test_seoul_service_type(seoul) -> None:
    conn, _ = seoul
    result = run_planner(conn, PlannerParams(service="holiday", catchment_m=1500, decay="gaussian"))
    expected = conn.execute(text("""SELECT count(*) FROM facilities WHERE status IN ('active', 'reopened')
                                    AND district_code LIKE '11%' AND 'holiday' = ANY(services)""")).scalar_one()
    assert len(result.centres) == expected > 0
    assert result.summary["blind_spots"] > 0
    sites = suggest_sites(result, k=3, time_limit_s=60)
    # The reported coverage is what the three points really cover, recomputed from the unserved cells.
    unserved = result.cells[(result.cells["nearest_m"] > 1500) & (result.cells["children"] > 0)]
    pts = sites.to_crs(5179)
    d = np.hypot(unserved["x_5179"].to_numpy()[:, None] - pts.geometry.x.to_numpy()[None, :],
                 unserved["y_5179"].to_numpy()[:, None] - pts.geometry.y.to_numpy()[None, :])
    covered = float(unserved["children"].to_numpy()[(d <= 1500 + 1e-6).any(axis=1)].sum())
    assert sites["children_covered_total"].iloc[0] == pytest.approx(covered, rel=1e-9)
    assert sites["children_newly_covered"].sum() == pytest.approx(covered, rel=1e-9)
