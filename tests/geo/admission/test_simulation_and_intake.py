"""The intake round on the database and the simulation on real centres, checked with the stability and
waste checks of ``geo.admission.matching`` and by recounting seats."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

from sqlalchemy import Connection, Engine, text

from geo.admission import waitlist as wl
from geo.admission.matching import deferred_acceptance, justified_envy, wasted_seats
from geo.admission.simulation import build_market, run_round, run_sequential
from tests.geo.admission.waitutil import NOW, centres, child, parent, set_free


def test_simulation_on_real_centres(seoul_engine: Engine) -> None:
    with seoul_engine.connect() as conn:
        market = build_market(conn, area="11110", applicant_rate=0.1, seed=3)
        free = conn.execute(text("""SELECT sum((free_by_age->>'0')::int + (free_by_age->>'1')::int
                                           + (free_by_age->>'2')::int + (free_by_age->>'3')::int
                                           + (free_by_age->>'4')::int + (free_by_age->>'5')::int)
                                    FROM facilities WHERE status = 'active' AND district_code = '11110'""")
                            ).scalar_one()
    assert sum(market.capacities.values()) == free and market.preferences
    assert all(1 <= len(p) <= 3 for p in market.preferences.values())
    round_ = run_round(market)
    assignment = deferred_acceptance(market.preferences, market.capacities, market.priorities)
    assert justified_envy(assignment, market.preferences, market.priorities) == []
    assert wasted_seats(assignment, market.preferences, market.capacities, market.priorities) == []
    assert round_.filled == sum(1 for s in assignment.values() if s is not None)
    assert round_.filled + round_.unplaced == len(market.preferences)
    seq = run_sequential(market)
    assert seq.filled + seq.unplaced == len(market.preferences) and seq.filled <= seq.seats
    # The sequential run is reproducible from its seed.
    assert run_sequential(market) == seq


def test_intake_round_offers_a_stable_assignment(seoul_engine: Engine, connection: Connection) -> None:
    conn = connection
    a, b = centres(conn, 2)
    set_free(conn, a.id, {"0": 1})
    set_free(conn, b.id, {"0": 1})
    people = [parent(conn, f"i{i}@example.kr") for i in range(3)]
    kids = [child(conn, people[0], claims=()), child(conn, people[1], claims=()),
            child(conn, people[2], claims=())]
    # Child 0 wants a then b, child 1 a then b, child 2 b only; child 0 applied first.
    wl.apply(conn, parent_user_id=people[0], child_id=kids[0]["id"], facility_code=a.code, now=NOW)
    wl.apply(conn, parent_user_id=people[0], child_id=kids[0]["id"], facility_code=b.code, now=NOW)
    wl.apply(conn, parent_user_id=people[1], child_id=kids[1]["id"], facility_code=a.code,
             now=NOW + timedelta(hours=1))
    wl.apply(conn, parent_user_id=people[1], child_id=kids[1]["id"], facility_code=b.code,
             now=NOW + timedelta(hours=1))
    wl.apply(conn, parent_user_id=people[2], child_id=kids[2]["id"], facility_code=b.code,
             now=NOW + timedelta(hours=2))
    result = wl.intake_round(conn, year=2026, now=NOW + timedelta(days=1))
    # By hand: 0 takes a (first at a); 1 then 2 compete for b, 1 applied earlier.
    expected = {kids[0]["id"]: (a.id, 0), kids[1]["id"]: (b.id, 0), kids[2]["id"]: None}
    assert result["assignment"] == expected and result["offers"] == 2
    offered = conn.execute(text("SELECT child_id, facility_id FROM waitlist_offers WHERE status = 'open'")).all()
    assert Counter(r.child_id for r in offered) == Counter({kids[0]["id"]: 1, kids[1]["id"]: 1})
    assert wl.verify_centre(conn, a.id) == [] and wl.verify_centre(conn, b.id) == []
    assert date(2025, 5, 1).isoformat() not in str([r.event for r in wl.chain_rows(conn, a.id)])
