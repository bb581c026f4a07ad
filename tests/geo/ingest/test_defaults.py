"""The default data set: real boundaries + deterministic synthetic facilities placed by 0-5 population."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from geo.ingest.defaults import STATUS_COUNTS, TYPE_COUNTS, load_default_data, synthetic_facilities


@pytest.fixture(scope="module")
def default_engine(make_database) -> Engine:
    engine = make_database("defaults")
    result = load_default_data(engine)
    assert result.boundaries_loaded
    return engine


def test_counts_follow_the_real_distribution(default_engine: Engine) -> None:
    with default_engine.connect() as conn:
        by_type = dict(conn.execute(text("SELECT facility_type, count(*) FROM facilities GROUP BY 1")).all())
        by_status = dict(conn.execute(text("SELECT status, count(*) FROM facilities GROUP BY 1")).all())
        services = set(conn.execute(text("SELECT DISTINCT unnest(services) FROM facilities")).scalars())
    assert by_type == {t.value: n for t, n in TYPE_COUNTS.items()}
    assert by_status == {s.value: n for s, n in STATUS_COUNTS.items()}
    assert {"general", "extended_hours", "holiday", "twenty_four_hour", "disability_integrated",
        "disability_specialised",
            "infant_only", "hourly"} <= services


def test_points_lie_in_their_dong_and_follow_population(default_engine: Engine) -> None:
    with default_engine.connect() as conn:
        outside = conn.execute(text("""
            SELECT count(*) FROM facilities f JOIN admin_dongs a ON a.id = f.admin_dong_id
            WHERE NOT ST_Intersects(a.geom_4326, f.geom_4326)""")).scalar_one()
        per_district = conn.execute(text("""
            SELECT d.code, (SELECT sum(population_0_5) FROM admin_dongs a WHERE a.district_code = d.code) AS pop,
                   (SELECT count(*) FROM facilities f WHERE f.district_code = d.code) AS n,
                   (SELECT count(*) FROM facilities f WHERE f.district_code = d.code
                      AND NOT ST_Intersects(d.geom_4326, f.geom_4326)) AS outside
            FROM districts d""")).all()
        missing_legal = conn.execute(text(
            "SELECT count(*) FROM facilities WHERE legal_dong_code IS NULL")).scalar_one()
    assert outside == 0
    assert sum(r.outside for r in per_district) == 0
    assert missing_legal == 0
    # Facilities per 구 track 0-5 population: Spearman rank correlation computed here independently.
    pops = [r.pop for r in per_district]
    counts = [r.n for r in per_district]
    assert sum(counts) == sum(STATUS_COUNTS.values())

    def ranks(values: list) -> list[float]:
        order = sorted(range(len(values)), key=lambda i: values[i])
        out = [0.0] * len(values)
        for rank, i in enumerate(order):
            out[i] = float(rank)
        return out

    rp, rc = ranks(pops), ranks(counts)
    n = len(rp)
    rho = 1 - 6 * sum((a - b) ** 2 for a, b in zip(rp, rc, strict=True)) / (n * (n * n - 1))
    assert rho > 0.8


def test_vacancy_is_consistent(default_engine: Engine) -> None:
    with default_engine.connect() as conn:
        bad = conn.execute(text("""
            SELECT count(*) FROM facilities
            WHERE enrolled > capacity OR (free_by_age->>'total')::int <> capacity - enrolled
               OR EXISTS (SELECT 1 FROM jsonb_each_text(free_by_age) e WHERE e.value::int < 0
                          OR e.value::int > capacity - enrolled)""")).scalar_one()
    assert bad == 0


def test_deterministic_and_not_repeated(default_engine: Engine) -> None:
    with default_engine.connect() as conn:
        dongs = [dict(r._mapping) for r in conn.execute(text("""
            SELECT a.id, a.district_code, d.name AS district_name, a.name, a.population_0_5,
                   ST_AsBinary(a.geom_4326) AS wkb
            FROM admin_dongs a JOIN districts d ON d.code = a.district_code ORDER BY a.kostat_code LIMIT 40"""))]
    for dong in dongs:
        dong["wkb"] = bytes(dong["wkb"])
    assert synthetic_facilities(dongs, seed=7) == synthetic_facilities(dongs, seed=7)
    assert synthetic_facilities(dongs, seed=7) != synthetic_facilities(dongs, seed=8)
    again = load_default_data(default_engine)
    assert again.facilities_created == 0 and again.facilities_present == sum(STATUS_COUNTS.values())
