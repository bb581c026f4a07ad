"""Smoke test of ``benchmarks.bench_rank``: this checkout's rank check against a second copy of itself loaded from
its files (as ``--old`` loads another checkout's), on a few seeded parents. No timing is asserted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from benchmarks import bench_load, bench_rank
from geo.admission import waitlist
from geo.ingest.bundled import load_default_seoul

ADMISSION = Path(waitlist.__file__).resolve().parent


@pytest.mark.slow
def test_bench_rank_smoke(make_database: Any) -> None:
    engine = make_database("bench_rank")
    load_default_seoul(engine)
    assert bench_load.seed_parents(engine, parents=4, entries=2) == 4
    old = bench_rank.load_old(ADMISSION)
    assert old is not waitlist and old.my_ranks is not waitlist.my_ranks
    result = bench_rank.measure(engine, {"old": old, "new": waitlist}, parents=4, rounds=2, state="seen")
    assert (result["identical"], result["compared"]) == (4, 4)
    assert len(result["old"]) == len(result["new"]) == 2
    assert all(client > 0 and db >= 0 for client, db in result["old"] + result["new"])
    with engine.connect() as conn:  # the committed first look of each parent's entries, nothing from the rounds
        views = conn.execute(text("SELECT count(*) FROM waitlist_rank_views")).scalar_one()
    assert views == 8
