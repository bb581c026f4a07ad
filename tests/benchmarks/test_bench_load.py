"""Smoke test of ``benchmarks.bench_load``: the locust mix runs against a real uvicorn + PostGIS for a few seconds,
makes real requests without failures, and the report has its rows. No timing is asserted.

What is checked against the database, independently of locust's own counting: every application locust counted
as done is a new waitlist entry, every withdrawal a withdrawn one (give or take the one request per user that
locust cuts off when the run ends), and the rank checks remembered a view. The portal's pages (issue 24) run in the
mix with the web sessions of seeded parents and centre staff, and "my applications" alone: each parent it took
has its look remembered for every active entry (the page's write), and the seeding agrees with the database.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from benchmarks import bench_load
from benchmarks.harness import free_port
from geo.db import as_libpq_url
from geo.ingest.bundled import load_default_seoul
from geo.ops import provision
from geo.settings import Settings

MIX_NAMES = {"search:radius", "search:nearest", "search:area", "detail", "queue", "rank", "apply", "withdraw",
             "portal:applications", "portal:rank", "portal:bookings", "portal:queue"}


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        row = conn.execute(text("""
            SELECT (SELECT count(*) FROM waitlist_entries) AS entries,
                   (SELECT count(*) FROM waitlist_entries WHERE status = 'withdrawn') AS withdrawn,
                   (SELECT count(*) FROM waitlist_rank_views) AS views""")).one()
    return dict(row._mapping)


@pytest.fixture(scope="module")
def load_engine(make_database: Any) -> Engine:
    """A throw-away database with the bundled Seoul data, 4 seeded parents (2 applications each), the staff of
    2 of their centres, care slots at 30 centres for 3 days and some bookings."""
    engine = make_database("bench_load")
    load_default_seoul(engine)
    assert bench_load.seed_parents(engine, parents=4, entries=2) == 4
    assert bench_load.seed_parents(engine, parents=4, entries=2) == 0  # seeding once per database
    seeded = bench_load.seed_portal(engine, staff_centres=2, slot_centres=30, slot_days=3, booking_share=1.0)
    assert seeded["staff"] == 2 and seeded["slots"] >= 30 * 3
    assert bench_load.seed_portal(engine, staff_centres=2) == {"staff": 0, "slots": 0, "bookings": 0}
    with engine.connect() as conn:
        staff = conn.execute(text("""
            SELECT u.role, count(DISTINCT uc.facility_id) AS centres,
                   count(e.id) FILTER (WHERE e.status = 'waiting') AS waiting
            FROM users u JOIN user_centres uc ON uc.user_id = u.id
            LEFT JOIN waitlist_entries e ON e.facility_id = uc.facility_id
            WHERE u.email LIKE 'load-staff-%' GROUP BY u.id, u.role""")).all()
        booked = conn.execute(text("SELECT count(*) FROM bookings b JOIN users u ON u.id = b.parent_user_id "
                                   "WHERE u.email LIKE 'load-parent-%'")).scalar_one()
    # Each staff member manages one centre the parents applied to (so its queue page lists them).
    assert [(r.role, r.centres) for r in staff] == [("centre_staff", 1)] * 2 and all(r.waiting for r in staff)
    assert booked == seeded["bookings"] > 0
    return engine


@pytest.mark.slow
def test_bench_load_smoke(load_engine: Engine, tmp_path: Path) -> None:
    before = _counts(load_engine)
    config = bench_load.Config(1, False)
    # 4 users: every user class of the mix (4 : 3 : 1) gets one at least.
    result = bench_load.run(configs=[config], users=[4], rounds=1, run_time_s=5, type_users=2, types=["rank"],
                            engine=load_engine, settings=Settings(DATABASE_URL=None),
                            database=str(load_engine.url.database), out_dir=tmp_path, base_port=free_port(),
                            warmup_s=0)
    after = _counts(load_engine)

    (mix,) = result["runs"]
    total = mix["stats"]["Aggregated"]
    assert total["requests"] > 0 and total["failures"] == 0 and total["rps"] > 0
    names = set(mix["stats"]) - {"Aggregated"}
    # Every user class made requests (which of its tasks ran in 5 s on a loaded machine is chance).
    assert names <= MIX_NAMES and "portal:queue" in names
    assert names & (MIX_NAMES - {"portal:applications", "portal:rank", "portal:bookings", "portal:queue"})
    assert names & {"portal:applications", "portal:rank", "portal:bookings"}
    assert sum(int(s["requests"]) for n, s in mix["stats"].items() if n != "Aggregated") == total["requests"]
    assert mix["server_cpu_s"] > 0 and mix["db_cpu_s"] > 0 and not mix["stalled"]

    applied = int(mix["stats"].get("apply", {"requests": 0})["requests"])
    withdrawn = int(mix["stats"].get("withdraw", {"requests": 0})["requests"])
    # A user cut off after the stop timeout may leave one request unreported that the server still completes.
    assert applied <= after["entries"] - before["entries"] <= applied + 2
    assert withdrawn <= after["withdrawn"] - before["withdrawn"] <= withdrawn + 2
    assert after["views"] > before["views"]  # 4 parents x 2 entries seen at least once by the rank checks

    (alone,) = result["type_runs"]
    assert set(alone["stats"]) == {"rank", "Aggregated"} and alone["stats"]["rank"]["failures"] == 0
    per_core = result["per_type"]["rank"]["rps_per_core"]["median"]
    assert math.isfinite(per_core) and per_core > 0

    summary = result["summary"]["1w@4"]
    assert summary["vs_baseline"]["rps"]["median"] == 1.0 and summary["failures"] == 0
    environment = {"run_at": "test", "load_average": [0, 0, 0], "cpus": 2, "rounds": 1, "run_time_s": 5,
                   "baseline": "1w"}
    report = bench_load.markdown(result, environment)
    assert "| 1w | 4 |" in report and "| 1w | 4 | rank |" in report and "| rank | rank |" in report
    assert "| 1w | 4 | portal:queue |" in report
    md, js = bench_load.write_report(result, environment, tmp_path)
    assert md.read_text(encoding="utf-8").startswith("# bench_load test") and js.stat().st_size > 0


def _unseen_entries(engine: Engine, parents: int) -> int:
    """Active entries of the first ``parents`` seeded parents without a remembered look."""
    with engine.connect() as conn:
        return int(conn.execute(text("""
            SELECT count(*) FROM (SELECT id FROM users WHERE email LIKE 'load-parent-%' ORDER BY id LIMIT :n) u
            JOIN children ch ON ch.parent_user_id = u.id
            JOIN waitlist_entries e ON e.child_id = ch.id AND e.status IN ('waiting', 'offered')
            LEFT JOIN waitlist_rank_views v ON v.entry_id = e.id WHERE v.entry_id IS NULL"""),
            {"n": parents}).scalar_one())


@pytest.mark.slow
def test_bench_load_portal_page_alone(load_engine: Engine, tmp_path: Path) -> None:
    """ "My applications" alone (a request type of its own): logged in by the seeded web sessions, and each
    parent it took (the first two of the seed, one per user) has its look remembered, which the page writes."""
    with load_engine.begin() as conn:
        conn.execute(text("DELETE FROM waitlist_rank_views"))
    assert _unseen_entries(load_engine, 2) > 0
    result = bench_load.run(configs=[bench_load.Config(1, False)], users=[], rounds=1, run_time_s=4, type_users=2,
                            types=["my-applications"], engine=load_engine, settings=Settings(DATABASE_URL=None),
                            database=str(load_engine.url.database), out_dir=tmp_path, base_port=free_port(),
                            warmup_s=0)
    (alone,) = result["type_runs"]
    assert set(alone["stats"]) == {"portal:applications", "Aggregated"}
    assert alone["stats"]["Aggregated"]["failures"] == 0 and alone["stats"]["Aggregated"]["requests"] > 0
    assert _unseen_entries(load_engine, 2) == 0
    per_core = result["per_type"]["my-applications"]["rps_per_core"]["median"]
    assert math.isfinite(per_core) and per_core > 0


def test_bucket_percentile_matches_locust() -> None:
    # locust is asked in a subprocess: importing it monkey-patches this process for gevent.
    buckets = {3: 5, 7: 20, 12: 40, 48: 30, 110: 4, 1400: 1}
    count = sum(buckets.values())
    code = ("import json, sys; from locust.stats import calculate_response_time_percentile as p; "
            f"print(json.dumps([p({buckets!r}, {count}, q) for q in (0.0, 0.5, 0.66, 0.99, 1.0)]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    expected = json.loads(done.stdout.strip().splitlines()[-1])
    assert [bench_load.bucket_percentile(buckets, count, q) for q in (0.0, 0.5, 0.66, 0.99, 1.0)] == expected


def test_configs_parse() -> None:
    assert [c.name for c in map(bench_load.parse_config, ["1w", "2w", "1w+replica"])] == ["1w", "2w", "1w+replica"]
    with pytest.raises(Exception, match="expected like"):
        bench_load.parse_config("two")


@pytest.mark.slow
def test_replica_configuration(tmp_path: Path) -> None:
    """A short run on a standby of the harness's own cluster reads from the standby."""
    # A short path of its own under /tmp (unix socket paths are limited to 107 bytes), removed afterwards: the
    # primary, its standby and the loaded data are some 325 MB.
    data_dir = Path(tempfile.mkdtemp(prefix="dolbom-load-test-pg-"))
    settings = bench_load.cluster_settings(data_dir, 55610)
    try:
        provision.up(settings, replicas=1)
        engine = bench_load.prepare_database(settings, fresh=True)
        bench_load.seed_parents(engine, parents=4, entries=2)
        standby = as_libpq_url(settings.local_replica_url(1, bench_load.DATABASE))
        import psycopg

        def standby_transactions() -> int:
            with psycopg.connect(standby, autocommit=True) as conn:
                assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
                row = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
                                   ).fetchone()
                assert row is not None
                return int(row[0])

        before = standby_transactions()
        result = bench_load.run(configs=[bench_load.Config(1, True)], users=[2], rounds=1, run_time_s=5,
                                type_users=2, types=[], engine=engine, settings=settings,
                                database=bench_load.DATABASE, out_dir=tmp_path, base_port=free_port(), warmup_s=0)
        engine.dispose()
        (run,) = result["runs"]
        assert run["stats"]["Aggregated"]["requests"] > 0 and run["stats"]["Aggregated"]["failures"] == 0
        assert standby_transactions() > before + 1  # the searches were read from the standby
    finally:
        provision.down(settings)
        shutil.rmtree(data_dir, ignore_errors=True)
