"""Snapshots in any order give the same state and the same history (README, Data): all 6 orders of the three real
Seoul OA-20300 snapshots (2022-10-26, 2026-07-01, 2026-07-21) are imported and compared: every centre's row and
every history row. Each order's last import runs here, into a copy of the state its first two made (a template
shared with the other tests that need that state, ``make_database(snapshots=...)``): those are the same imports in
the same order, made once per state instead of once per order and per test file.

Before history was derived from per-snapshot observations, the 112 centres listed in 2022 but not in 2026 got a
data date and a history row that depended on the order, and a file imported after a newer one recorded no history
at all (07-21, 2022, 07-01 never recorded the 07-01 -> 07-21 changes).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from geo.ingest.childcare import import_seoul_oa20300

FILES = {"2022": "seoul_childcare_OA-20300_20221026_full.csv", "0701": "seoul_childcare_OA-20300_20260701_full.csv",
         "0721": "seoul_childcare_OA-20300_20260721_full.csv"}
ORDERS = list(itertools.permutations(FILES))


def _state(engine: Engine) -> tuple[dict, set]:
    with engine.connect() as conn:
        facilities = {r[0]: tuple(json.dumps(v, sort_keys=True, default=str) for v in r[1:]) for r in conn.execute(
            text("""SELECT code, status, data_date, name, address, capacity, enrolled, enrolled_by_age,
                           classes_by_age, free_by_age, ST_AsText(geom_4326) FROM facilities"""))}
        history = {tuple(json.dumps(v, sort_keys=True, default=str) for v in r) for r in conn.execute(text("""
            SELECT f.code, e.observed_on, e.previous_data_date, e.status_before, e.status_after, e.enrolled_before,
                   e.enrolled_after, e.capacity_before, e.capacity_after, e.enrolled_by_age_before,
                   e.enrolled_by_age_after, e.classes_by_age_before, e.classes_by_age_after
            FROM enrollment_changes e JOIN facilities f ON f.id = e.facility_id"""))}
    return facilities, history


@pytest.mark.slow
def test_every_order_gives_the_same_state_and_history(make_database, shared_data: Path) -> None:
    states = {}
    for number, order in enumerate(ORDERS):
        engine = make_database(f"snap_order_{number}", snapshots=order[:-1])
        result = import_seoul_oa20300(engine, shared_data / "childcare" / FILES[order[-1]])
        with engine.connect() as conn:
            runs = conn.execute(text("SELECT source_name FROM import_runs WHERE kind = 'seoul_oa20300' "
                                     "ORDER BY id")).scalars().all()
        # The state is the three imports of the order, the last one made here.
        assert runs == [FILES[key] for key in order]
        assert result.rows_read > 1000
        states[order] = _state(engine)
        engine.dispose()
    first, (facilities, history) = ORDERS[0], states[ORDERS[0]]
    unlisted = {order: sum(1 for row in s[0].values() if row[0] == '"unlisted"') for order, s in states.items()}
    print("unlisted per order:", unlisted, "history rows per order:", {o: len(s[1]) for o, s in states.items()})
    assert len(history) > 1000
    # The 07-01 -> 07-21 changes are in the history whatever the order.
    assert any(row[1] == '"2026-07-21"' and row[2] == '"2026-07-01"' for row in history)
    for order in ORDERS[1:]:
        other_facilities, other_history = states[order]
        differing = {c for c in facilities if facilities[c] != other_facilities.get(c)}
        assert set(facilities) == set(other_facilities)
        assert not differing, f"{order} vs {first}: {len(differing)} centres differ, e.g. {sorted(differing)[:3]}"
        assert history == other_history, (f"{order} vs {first}: {len(history - other_history)} history rows "
                                          f"missing, {len(other_history - history)} extra")
