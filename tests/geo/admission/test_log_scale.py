"""The log as the source of truth at the scale of the Seoul simulation (slow): as many applications as the
simulated Seoul intake has (``build_market(area="11")``: 72,782 applicants, 199,379 applications at 3,839 centres
with free places), seeded with their log; ``verify`` finds the tables the log's projection, names one moved
application time among them, and ``rebuild`` from the log alone gives the same tables. Runtimes are printed
(``-s``), not asserted (benchmarks/ measures)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Connection, text

from geo.admission.projection import differences, rebuild
from geo.admission.seeding import seed_applications
from geo.admission.simulation import build_market
from tests.geo.admission.test_log_replay import _tables

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]


def test_seoul_simulation_scale_rebuild_equals_the_live_tables(conn: Connection) -> None:
    clock = time.perf_counter()
    market = build_market(conn, area="11", applicant_rate=0.3, seed=7)
    applications = sum(len(p) for p in market.preferences.values())
    assert len(market.preferences) > 70_000
    seeded = seed_applications(conn, count=applications, year=2026, seed=72)
    timings = {"seed": time.perf_counter() - clock}
    print(f"\nseeded in {timings['seed']:.1f} s", flush=True)
    ids = list(conn.execute(text("SELECT DISTINCT facility_id FROM waitlist_entries ORDER BY 1")).scalars())
    assert seeded.entries == applications
    clock = time.perf_counter()
    assert differences(conn, ids) == []
    timings["verify"] = time.perf_counter() - clock
    print(f"verified in {timings['verify']:.1f} s", flush=True)
    # One moved application time among 200k rows is named, and only what it moved.
    victim = conn.execute(text("""SELECT public_id, facility_id FROM waitlist_entries ORDER BY applied_at DESC
                                  LIMIT 1""")).one()
    conn.execute(text("UPDATE waitlist_entries SET applied_at = applied_at - interval '400 days' "
                      "WHERE public_id = :e"), {"e": victim.public_id})
    clock = time.perf_counter()
    found = differences(conn, ids)
    timings["verify tampered"] = time.perf_counter() - clock
    print(f"verified again in {timings['verify tampered']:.1f} s", flush=True)
    assert [d.field for d in found if d.entry == victim.public_id][0] == "applied_at"
    queue_name = next(d.field for d in found if d.entry == victim.public_id and d.field.startswith("rank in"))[8:]
    # Only what the edit moved: the entry's time, ranks and public rows of its one queue.
    assert all(d.field in ("applied_at", f"rank in {queue_name}") or d.entry == queue_name for d in found), found
    assert len({d.centre for d in found}) == 1
    snapshot_ids = [victim.facility_id]
    # From the log alone: every entry and the evidence of every claim gone, then rebuilt.
    conn.execute(text("UPDATE waitlist_entries SET applied_at = applied_at + interval '400 days' "
                      "WHERE public_id = :e"), {"e": victim.public_id})
    snapshot = _tables(conn, ids)
    assert snapshot["entries"] and snapshot_ids
    conn.execute(text("DELETE FROM waitlist_entries"))
    conn.execute(text("UPDATE claims SET evidence = 'claimed'"))
    clock = time.perf_counter()
    rebuilt = rebuild(conn, ids)
    timings["rebuild from the log (its verify included)"] = time.perf_counter() - clock
    print(f"rebuilt in {timings['rebuild from the log (its verify included)']:.1f} s", flush=True)
    assert len([d for d in rebuilt if d.field == "entry"]) == applications
    assert _tables(conn, ids) == snapshot  # the tables verify found equal to the log
    links = conn.execute(text("SELECT count(*) FROM waitlist_chain")).scalar_one()
    print(f"\n{applications:,} applications at {len(ids):,} centres, {links:,} log events: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
