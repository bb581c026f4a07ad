"""geo.layers: the registry, the 구/행정동 statistics against geo.analysis.supply, CQL2 filters against
hand-written SQL on the real Seoul data, the layer_changes triggers, and the blind spots against the planner."""

from __future__ import annotations

import json
import math

import pytest
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.dialects import postgresql

from geo.analysis.planner import PlannerParams, PlannerResult, run_planner, save_run
from geo.analysis.supply import supply_by_district, supply_by_dong
from geo.errors import InvalidQuery
from geo.layers.cql import parse_filter
from geo.layers.crs import parse_bbox, parse_crs
from geo.layers.features import ItemsQuery, count_statement, items_statement
from geo.layers.registry import LAYERS, get_layer


@pytest.fixture()
def seoul(seoul_engine: Engine) -> Connection:
    with seoul_engine.connect() as conn:
        yield conn


def test_registry_layers_and_lean_tile_properties() -> None:
    assert set(LAYERS) >= {"facilities", "districts", "admin_dongs"}
    for layer in LAYERS.values():
        names = {p.name for p in layer.properties}
        for z in range(layer.minzoom, layer.maxzoom + 1):
            assert set(layer.properties_at_zoom(z)) <= names
        assert len(layer.properties_at_zoom(layer.minzoom)) <= len(layer.properties_at_zoom(layer.maxzoom))
    assert get_layer("facilities").temporal == "data_date"
    with pytest.raises(Exception, match="no layer"):
        get_layer("nope")


def _layer_rows(conn: Connection, layer_id: str) -> dict:
    layer = LAYERS[layer_id]
    rows = conn.execute(items_statement(layer, ItemsQuery(limit=None))).mappings().all()
    return {str(r["id"]): r for r in rows}


def test_district_statistics_equal_supply_analysis(seoul: Connection) -> None:
    frame = supply_by_district(seoul)
    rows = _layer_rows(seoul, "districts")
    assert len(frame) == 25
    for record in frame.itertuples():
        row = rows[record.code]
        assert row["children_0_5"] == record.population_0_5
        assert row["centres"] == record.centres
        assert row["places"] == record.capacity
        # one decimal, rounded half away from zero in SQL: within 0.05 of the unrounded ratio of the analysis
        exact = record.capacity / record.population_0_5 * 100
        assert float(row["places_per_100_children"]) == pytest.approx(exact, abs=0.0501)
        assert float(row["places_per_100_children"]) == record.places_per_100_children  # one SQL, one rounding


def test_dong_statistics_equal_supply_analysis(seoul: Connection) -> None:
    frame = supply_by_dong(seoul)
    rows = _layer_rows(seoul, "admin_dongs")
    assert len(frame) > 400
    for record in frame.itertuples():
        row = rows[str(record.id)]
        assert row["centres"] == record.centres
        assert row["places"] == record.capacity
        if not record.population_0_5 or math.isnan(record.population_0_5):
            assert row["places_per_100_children"] is None
        else:
            exact = record.capacity / record.population_0_5 * 100
            assert float(row["places_per_100_children"]) == pytest.approx(exact, abs=0.0501)
            assert float(row["places_per_100_children"]) == record.places_per_100_children


# Each CQL2 filter with the same condition written by hand in SQL over the facilities table.
FILTERS = [
    ("capacity > 100 AND facility_type = 'national_public'", "capacity > 100 AND facility_type = 'national_public'"),
    ("A_CONTAINS(services, ('twenty_four_hour','holiday'))", "services @> ARRAY['twenty_four_hour','holiday']"),
    ("A_OVERLAPS(services, ('twenty_four_hour','holiday'))", "services && ARRAY['twenty_four_hour','holiday']"),
    ("A_CONTAINEDBY(services, ('general','extended_hours'))", "services <@ ARRAY['general','extended_hours']"),
    ("name LIKE '%숲%'", "name LIKE '%숲%'"),
    ("free_total BETWEEN 1 AND 5", "(free_by_age->>'total')::int BETWEEN 1 AND 5"),
    ("status IN ('suspended', 'closed')", "status IN ('suspended', 'closed')"),
    ("NOT (has_bus = true) AND cctv_count >= 10", "NOT (has_bus = true) AND cctv_count >= 10"),
    ("district_code = '11440' OR capacity IS NULL", "district_code = '11440' OR capacity IS NULL"),
    ("data_date = DATE('2026-07-21')", "data_date = DATE '2026-07-21'"),
    ("S_INTERSECTS(geometry, POLYGON((126.9 37.5, 127.0 37.5, 127.0 37.6, 126.9 37.6, 126.9 37.5)))",
     "ST_Intersects(geom_4326, ST_MakeEnvelope(126.9, 37.5, 127.0, 37.6, 4326))"),
    ("S_WITHIN(geometry, BBOX(126.95, 37.52, 127.05, 37.58))",
     "ST_Within(geom_4326, ST_MakeEnvelope(126.95, 37.52, 127.05, 37.58, 4326))"),
    ("S_DWITHIN(geometry, POINT(126.978 37.5665), 1500)",
     "ST_DWithin(geom_4326::geography, ST_SetSRID(ST_MakePoint(126.978, 37.5665), 4326)::geography, 1500)"),
    ("capacity - enrolled > 30", "capacity - enrolled > 30"),
]


def _sql_count(conn: Connection, where: str) -> int:
    return int(conn.execute(text(f"SELECT count(*) FROM facilities WHERE {where}")).scalar_one())


@pytest.mark.parametrize(("cql", "sql"), FILTERS)
def test_cql2_text_counts_equal_sql(seoul: Connection, cql: str, sql: str) -> None:
    layer = LAYERS["facilities"]
    query = ItemsQuery(filter=parse_filter(cql))
    expected = _sql_count(seoul, sql)
    assert seoul.execute(count_statement(layer, query)).scalar_one() == expected
    assert expected > 0 or "closed" in cql  # the filters are chosen to match something in Seoul


def test_cql2_json_counts_equal_sql(seoul: Connection) -> None:
    layer = LAYERS["facilities"]
    doc = {"op": "and", "args": [
        {"op": "a_contains", "args": [{"property": "services"}, ["twenty_four_hour"]]},
        {"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": [126.8, 37.4, 127.2, 37.7]}]},
        {"op": ">=", "args": [{"property": "free_total"}, 1]},
    ]}
    query = ItemsQuery(filter=parse_filter(json.dumps(doc), lang="cql2-json"))
    expected = _sql_count(seoul, "services @> ARRAY['twenty_four_hour'] AND (free_by_age->>'total')::int >= 1 AND "
                                 "ST_Intersects(geom_4326, ST_MakeEnvelope(126.8, 37.4, 127.2, 37.7, 4326))")
    assert expected > 0
    assert seoul.execute(count_statement(layer, query)).scalar_one() == expected


def test_filter_crs_and_bbox_crs_in_korean_metric_crs(seoul: Connection) -> None:
    """A box given in EPSG:5179 (northing first) selects what ST_Transform of the same box selects."""
    layer = LAYERS["facilities"]
    n0, e0, n1, e1 = 1_945_000.0, 950_000.0, 1_952_000.0, 958_000.0
    expected = _sql_count(seoul, f"ST_Intersects(geom_4326, ST_Transform(ST_MakeEnvelope({e0}, {n0}, {e1}, {n1}, "
                                 "5179), 4326))")
    assert expected > 10
    crs = parse_crs("http://www.opengis.net/def/crs/EPSG/0/5179")
    by_bbox = ItemsQuery(bbox=parse_bbox(f"{n0},{e0},{n1},{e1}", crs=crs), bbox_crs=crs)
    assert seoul.execute(count_statement(layer, by_bbox)).scalar_one() == expected
    polygon = f"POLYGON(({n0} {e0}, {n0} {e1}, {n1} {e1}, {n1} {e0}, {n0} {e0}))"
    by_filter = ItemsQuery(filter=parse_filter(f"S_INTERSECTS(geometry, {polygon})"), filter_crs=crs)
    assert seoul.execute(count_statement(layer, by_filter)).scalar_one() == expected


@pytest.mark.parametrize("bad", [
    "capacity >",                      # syntax
    "nonexistent = 1",                 # unknown queryable
    "capacity = 'many'",               # type mismatch
    "has_bus = 3",                     # type mismatch
    "A_CONTAINS(name, ('x'))",         # not an array
    "S_INTERSECTS(name, POINT(1 2))",  # not a geometry
])
def test_bad_filters_are_invalid_queries(bad: str) -> None:
    layer = LAYERS["facilities"]
    with pytest.raises(InvalidQuery):
        count_statement(layer, ItemsQuery(filter=parse_filter(bad)))


def test_filter_values_are_bound_never_inlined() -> None:
    layer = LAYERS["facilities"]
    evil = "x' OR 1=1 --"
    stmt = count_statement(layer, ItemsQuery(filter=parse_filter(f"name = '{evil.replace(chr(39), chr(39) * 2)}'")))
    compiled = stmt.compile(dialect=postgresql.psycopg.dialect())
    assert evil not in str(compiled)
    assert evil in compiled.params.values()


# --- layer_changes triggers ---------------------------------------------------------------------------------


def _changes_after(conn: Connection, seq: int) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in conn.execute(text(
        "SELECT layer, ST_AsText(env_3857) FROM layer_changes WHERE seq > :s ORDER BY seq"), {"s": seq})]


def test_triggers_record_exactly_the_touched_features(seoul_engine: Engine) -> None:
    with seoul_engine.connect() as conn, conn.begin() as trans:
        fid, point, district, dong = conn.execute(text(
            "SELECT id, ST_AsText(ST_Transform(geom_4326, 3857)), district_code, admin_dong_id FROM facilities "
            "WHERE status = 'active' AND admin_dong_id IS NOT NULL ORDER BY id LIMIT 1")).one()
        seq = conn.execute(select(text("coalesce(max(seq), 0)")).select_from(text("layer_changes"))).scalar_one()

        # free places change: only the facility's point
        conn.execute(text("UPDATE facilities SET free_by_age = jsonb_set(free_by_age, '{total}', '99') "
                          "WHERE id = :id"), {"id": fid})
        changes = _changes_after(conn, seq)
        assert changes == [("facilities", point)]

        # identical rewrite: nothing
        seq = conn.execute(text("SELECT max(seq) FROM layer_changes")).scalar_one()
        conn.execute(text("UPDATE facilities SET name = name WHERE id = :id"), {"id": fid})
        assert _changes_after(conn, seq) == []

        # capacity change: the point, its 구 and its 행정동 (statistics)
        conn.execute(text("UPDATE facilities SET capacity = coalesce(capacity, 0) + 1 WHERE id = :id"), {"id": fid})
        changes = _changes_after(conn, seq)
        district_env = conn.execute(text("SELECT ST_AsText(ST_Envelope(ST_Transform(geom_4326, 3857))) FROM districts "
                                         "WHERE code = :c"), {"c": district}).scalar_one()
        dong_env = conn.execute(text("SELECT ST_AsText(ST_Envelope(ST_Transform(geom_4326, 3857))) FROM admin_dongs "
                                     "WHERE id = :d"), {"d": dong}).scalar_one()
        assert sorted(changes) == sorted([("facilities", point), ("districts", district_env),
                                          ("admin_dongs", dong_env)])
        trans.rollback()


def _plans(notices: list[str]) -> list[dict]:
    """The JSON plans auto_explain sent as notices."""
    out = []
    for notice in notices:
        start = notice.find("{")
        if "duration:" in notice and start >= 0:
            out.append(json.loads(notice[start:]))
    return out


def _nodes(plan: dict):  # type: ignore[no-untyped-def]
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


# Per table with a layer_changes update trigger: the rows to make first (in the test's transaction), and an update
# of 400 of them.
QUADRATIC_CASES = {
    "facilities": ((), "UPDATE facilities SET updated_at = now() WHERE id IN "
                       "(SELECT id FROM facilities ORDER BY id LIMIT 400)"),
    "disclosures": (
        ("""INSERT INTO sanctions (facility_id, kind, legal_basis, violation, disposition, decided_at, authority)
            SELECT id, 'test', 'test', 'test', 'test', DATE '2026-01-05', 'test' FROM facilities ORDER BY id LIMIT 400""",
         """INSERT INTO disclosures (sanction_id, facility_id, published_from, published_until, rule, shown)
            SELECT id, facility_id, DATE '2026-01-05', DATE '2029-01-04', 'test', true FROM sanctions"""),
        "UPDATE disclosures SET shown = false"),
}


@pytest.mark.parametrize("table", sorted(QUADRATIC_CASES))
def test_a_large_update_after_a_small_one_is_not_quadratic(seoul_engine: Engine, table: str) -> None:
    """The update trigger's statement is planned for the rows it is given: a session whose first update of the
    table touched no row (the planner then expects one row in the transition tables) and whose next one touches
    many (an import's services refresh of ``facilities``) does not compare every old row with every new one (a
    nested loop over old_rows x new_rows; 9,441 centres gave 89 million pairs, 7 minutes)."""
    setup, update = QUADRATIC_CASES[table]
    with seoul_engine.connect() as conn, conn.begin() as trans:
        driver = conn.connection.driver_connection
        assert driver is not None
        try:
            conn.execute(text("LOAD 'auto_explain'"))
        except Exception:  # not a superuser on an external database
            trans.rollback()
            pytest.skip("auto_explain needs a superuser")
        for statement in setup:
            conn.execute(text(statement))
        notices: list[str] = []
        driver.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        conn.execute(text(f"UPDATE {table} SET id = id WHERE false"))  # the trigger fires on no row
        for setting, value in (("log_min_duration", "0"), ("log_nested_statements", "on"),
                               ("log_analyze", "on"), ("log_timing", "off"), ("log_format", "json"),
                               ("log_level", "notice")):
            conn.execute(text(f"SET LOCAL auto_explain.{setting} = '{value}'"))
        rows = conn.execute(text(update)).rowcount
        trans.rollback()
    assert rows == 400
    trigger = [p for p in _plans(notices) if "old_rows" in p.get("Query Text", "")]
    assert trigger, notices[:3]
    examined = max(node.get("Rows Removed by Join Filter", 0) + node.get("Actual Rows", 0)
                   for plan in trigger for node in _nodes(plan["Plan"]))
    assert examined <= 4 * rows, examined


# --- blind spots (planner cells) ---------------------------------------------------------------------------


def _expected_blind_spots(result: PlannerResult, run_id: int) -> dict[str, dict]:
    """The blind-spot cells of an in-memory planner result, keyed like the layer's feature ids."""
    spots = result.blind_spots()
    return {f"{result.params.service}-{int(c.cell_i)}-{int(c.cell_j)}": {
        "run_id": run_id, "children": c.children, "places_in_reach": c.places_in_reach, "e2sfca": c.e2sfca,
        "desert": bool(c.desert), "blind_rank": int(c.blind_rank), "gap_places": c.gap_places}
        for c in spots.itertuples()}


def test_blind_spots_layer_equals_the_latest_planner_run_of_each_service(seoul_engine: Engine,
                                                                         connection: Connection) -> None:
    """The layer holds the blind-spot cells of the latest saved run per service, with the planner's values; an
    older run of a service is not served; saving a run records its cells and the superseded run's in
    layer_changes (so their tiles get new versions)."""
    layer = get_layer("blind_spots")
    older = run_planner(connection, PlannerParams(area_code="11110", catchment_m=600))
    older_id = save_run(connection, older)
    latest = run_planner(connection, PlannerParams(area_code="11110", catchment_m=900))
    seq = connection.execute(text("SELECT coalesce(max(seq), 0) FROM layer_changes")).scalar_one()
    latest_id = save_run(connection, latest)
    changed = connection.execute(text("SELECT count(*) FROM layer_changes WHERE seq > :s AND layer = 'blind_spots'"),
                                 {"s": seq}).scalar_one()
    assert changed == len(older.blind_spots()) + len(latest.blind_spots())
    other = run_planner(connection, PlannerParams(area_code="11110", service="holiday", catchment_m=900))
    other_id = save_run(connection, other)
    expected = _expected_blind_spots(latest, latest_id) | _expected_blind_spots(other, other_id)
    assert len(latest.blind_spots()) > 0 and len(other.blind_spots()) > 0
    rows = {r["id"]: r for r in connection.execute(items_statement(layer, ItemsQuery(limit=None))).mappings()}
    assert set(rows) == set(expected)
    assert older_id not in {r["run_id"] for r in rows.values()}
    for key, want in expected.items():
        row = rows[key]
        for name, value in want.items():
            assert row[name] == pytest.approx(value, rel=1e-9, abs=1e-12), (key, name)
    # A CQL2 filter on a planner measure selects what the planner frame selects.
    query = ItemsQuery(filter=parse_filter("service = 'all' AND blind_rank <= 5"))
    assert connection.execute(count_statement(layer, query)).scalar_one() == min(5, len(latest.blind_spots()))
