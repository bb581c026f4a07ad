"""The waitlist log as the source of truth at the scale of the Seoul simulation: as many applications as the
simulated intake of ``--area`` has (``build_market``; for ``11``, all Seoul: about 72,800 applicants and 199,000
applications at 3,800 centres), seeded with their log; then

- ``verify`` (``differences``) finds the tables equal to the log's projection,
- one moved application time among them is named, and nothing else than what it moved,
- every entry deleted and every claim's evidence reset, ``rebuild`` from the log alone gives the same tables.

Each step is timed (seconds, one run: the figure is a scale check, not a comparison). Everything runs in one
transaction that is rolled back. Run on a database with the Seoul data (``scripts/run`` loads it):

    python -m benchmarks.bench_log_scale --area 11 [--database-url URL]

A smoke test (tests/benchmarks/test_bench_log_scale.py) runs the same checks on one 구.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from sqlalchemy import Connection, text

from geo.admission.projection import differences, live_tables, rebuild
from geo.admission.seeding import seed_applications
from geo.admission.simulation import build_market
from geo.cli.common import migrated_engine
from geo.db import make_engine


def measure(conn: Connection, *, area: str = "11", applicant_rate: float = 0.3, seed: int = 7) -> dict[str, Any]:
    """Seed, verify, tamper, verify, rebuild on ``conn`` (the caller rolls back); the figures and the checks'
    outcomes. Raises AssertionError when a check fails."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    market = build_market(conn, area=area, applicant_rate=applicant_rate, seed=seed)
    applications = sum(len(p) for p in market.preferences.values())
    seeded = seed_applications(conn, count=applications, year=2026, seed=seed * 10 + 2)
    timings["seed"] = time.perf_counter() - clock
    assert seeded.entries == applications, (seeded.entries, applications)
    ids = list(conn.execute(text("SELECT DISTINCT facility_id FROM waitlist_entries ORDER BY 1")).scalars())

    clock = time.perf_counter()
    assert differences(conn, ids) == []
    timings["verify"] = time.perf_counter() - clock

    # One moved application time is named, and only what it moved (its time, its queue's ranks and rows).
    victim = conn.execute(text("SELECT public_id, facility_id FROM waitlist_entries ORDER BY applied_at DESC, id "
                               "LIMIT 1")).one()
    conn.execute(text("UPDATE waitlist_entries SET applied_at = applied_at - interval '400 days' "
                      "WHERE public_id = :e"), {"e": victim.public_id})
    clock = time.perf_counter()
    found = differences(conn, ids)
    timings["verify after a tamper"] = time.perf_counter() - clock
    assert [d.field for d in found if d.entry == victim.public_id][0] == "applied_at", found[:5]
    assert len({d.centre for d in found}) == 1, found[:5]
    conn.execute(text("UPDATE waitlist_entries SET applied_at = applied_at + interval '400 days' "
                      "WHERE public_id = :e"), {"e": victim.public_id})

    # From the log alone.
    snapshot = live_tables(conn, ids)
    conn.execute(text("DELETE FROM waitlist_entries"))
    conn.execute(text("UPDATE claims SET evidence = 'claimed'"))
    clock = time.perf_counter()
    rebuilt = rebuild(conn, ids)
    timings["rebuild from the log (its verify included)"] = time.perf_counter() - clock
    assert len([d for d in rebuilt if d.field == "entry"]) == applications
    assert live_tables(conn, ids) == snapshot, "the rebuilt tables differ from the live ones"
    events = conn.execute(text("SELECT count(*) FROM waitlist_chain WHERE facility_id = ANY(:f)"),
                          {"f": ids}).scalar_one()
    return {"applicants": len(market.preferences), "applications": applications, "centres": len(ids),
            "log_events": int(events), "timings_s": timings, "rebuild_equals_live": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--area", default="11", help="code prefix: 11 (Seoul) or a 구 (11440)")
    parser.add_argument("--applicant-rate", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", default=None,
                        help="default: DATABASE_URL or the local cluster (as the dolbom command)")
    args = parser.parse_args()
    engine = make_engine(args.database_url) if args.database_url else migrated_engine()
    with engine.connect() as conn:
        outer = conn.begin()
        try:
            result = measure(conn, area=args.area, applicant_rate=args.applicant_rate, seed=args.seed)
        finally:
            outer.rollback()
    print(f"{result['applicants']:,} applicants, {result['applications']:,} applications at {result['centres']:,} "
          f"centres, {result['log_events']:,} log events; rebuild equals the live tables")
    for step, seconds in result["timings_s"].items():
        print(f"  {step}: {seconds:.1f} s")


if __name__ == "__main__":
    main()
