"""The waitlist log as the source of truth (#21): the replay of a centre's log equals its live tables and served
queues, every edit of the tables or the log is named (entry, field, expected, found), ``rebuild`` makes the tables
the log's projection again, and the public log does not link a child across centres or reveal categories."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, text

from geo.admission import waitlist as wl
from geo.admission.events import child_pseudonym, openings, rules_event, secret
from geo.admission.projection import Difference, differences, live_tables, rebuild
from geo.admission.replay import commitment, fold, rank_mismatches
from geo.admission.replay import public_queue as replayed_public_queue
from geo.admission.rules import rules_for
from geo.admission.seeding import seed_applications
from tests.geo.admission.waitutil import NOW, centres, child, parent, set_free

CLAIMS = [(), ("dual_income",), ("dual_income", "multi_child"), (), ("multi_child",), ("single_parent_protected",),
          (), ("dual_income",)]


def _populate(conn: Connection) -> dict[str, Any]:
    """Eight children at centre a (three also at b), in order of application; one claim verified, one rejected,
    an offer accepted, one withdrawn."""
    a, b = centres(conn, 2)
    set_free(conn, a.id, {"0": 1})
    kids, entries = [], []
    for i, claims in enumerate(CLAIMS):
        mum = parent(conn, f"log{i}@example.kr")
        kid = child(conn, mum, claims=claims, name=f"아이{i}")
        at = NOW + timedelta(hours=i)
        entries.append(wl.apply(conn, parent_user_id=mum, child_id=kid["id"], facility_code=a.code, now=at)["entry"])
        if i < 3:
            wl.apply(conn, parent_user_id=mum, child_id=kid["id"], facility_code=b.code, now=at)
        kids.append((mum, kid))
    later = NOW + timedelta(days=1)
    wl.set_evidence(conn, facility_id=a.id, child_public_id=kids[1][1]["public_id"], category="dual_income",
                    evidence="verified_centre", actor_user_id=None, now=later)
    wl.set_evidence(conn, facility_id=a.id, child_public_id=kids[4][1]["public_id"], category="multi_child",
                    evidence="rejected", actor_user_id=None, now=later)
    wl.set_evidence(conn, facility_id=a.id, child_public_id=kids[2][1]["public_id"], category="dual_income",
                    evidence="verified_record", actor_user_id=None, now=later)
    wl.set_evidence(conn, facility_id=a.id, child_public_id=kids[2][1]["public_id"], category="multi_child",
                    evidence="verified_record", actor_user_id=None, now=later)
    offer = wl.offer_next(conn, facility_id=a.id, age_class=0, actor_user_id=None, now=later)["offer"]
    wl.accept(conn, parent_user_id=kids[2][0], offer_id=offer["id"], now=later + timedelta(hours=1))
    wl.withdraw(conn, parent_user_id=kids[6][0], entry_public_id=entries[6], now=later + timedelta(hours=2))
    return {"a": a, "b": b, "kids": kids, "entries": entries}


def _named(found: list[Difference], entry: str, field: str) -> list[Difference]:
    return [d for d in found if d.entry == entry and d.field == field]


def test_the_replay_equals_the_live_tables_and_served_queues(conn: Connection) -> None:
    world = _populate(conn)
    ids = [world["a"].id, world["b"].id]
    assert differences(conn, ids) == []
    events = [r.event for r in wl.chain_rows(conn, world["a"].id)]
    assert rank_mismatches(events) == []
    state = fold(events)
    assert state.problems == [] and state.rules == {2026: {k: v for k, v in rules_event(2026).items()
                                                           if k in ("version", "sha256")}}
    # The replay's queue is the served queue, rank by rank, and so is the public view.
    served = [q.ranked.public_id for q in wl.queue(conn, world["a"].id, year=2026, age_class=0)]
    assert [e.entry for e in state.queue(2026, 0)] == served and len(served) == len(CLAIMS) - 2
    assert wl.public_queue(conn, world["a"].code, year=2026, age_class=0) == replayed_public_queue(state, 2026, 0)


def test_moving_applied_at_is_named_and_the_chain_alone_missed_it(conn: Connection) -> None:
    world = _populate(conn)
    a, victim = world["a"], world["entries"][7]
    before = [q.ranked.public_id for q in wl.queue(conn, a.id, year=2026, age_class=0)]
    conn.execute(text("UPDATE waitlist_entries SET applied_at = '2025-06-01T00:00:00+09:00' WHERE public_id = :e"),
                 {"e": victim})
    after = [q.ranked.public_id for q in wl.queue(conn, a.id, year=2026, age_class=0)]
    assert after.index(victim) < before.index(victim)  # the edit moved the served rank up
    assert wl.verify_centre(conn, a.id) == []  # the issue: the hash chain alone still verifies
    found = differences(conn, [a.id])
    moved = _named(found, victim, "applied_at")
    assert len(moved) == 1 and moved[0].expected == (NOW + timedelta(hours=7)).isoformat()
    assert moved[0].found.startswith("2025-05-31T15:00:00")
    ranks = _named(found, victim, "rank in queue 2026/0")
    assert ranks and ranks[0].expected == before.index(victim) + 1 and ranks[0].found == after.index(victim) + 1


def test_a_claim_inserted_in_the_database_is_named(conn: Connection) -> None:
    world = _populate(conn)
    a, (_, kid), victim = world["a"], world["kids"][3], world["entries"][3]
    conn.execute(text("""INSERT INTO claims (child_id, category, evidence, verified_at)
                         VALUES (:c, 'basic_livelihood', 'verified_record', now())"""), {"c": kid["id"]})
    assert wl.verify_centre(conn, a.id) == []
    found = differences(conn, [a.id])
    assert _named(found, victim, "claim basic_livelihood") == [
        Difference(a.code, victim, "claim basic_livelihood", "absent", "verified_record")]
    tier = _named(found, victim, "tier")
    assert tier and (tier[0].expected, tier[0].found) == (3, rules_for(2026).categories["basic_livelihood"].tier)
    assert _named(found, victim, "rank in queue 2026/0")
    # And at the child's other centres? Child 3 applied only at a: b is untouched.
    assert differences(conn, [world["b"].id]) == []


def test_an_edited_rank_event_is_named(conn: Connection) -> None:
    world = _populate(conn)
    a = world["a"]
    seq, order = conn.execute(text("""SELECT seq, event->'order' FROM waitlist_chain WHERE facility_id = :f
                                      AND event->>'type' = 'rank' ORDER BY seq DESC LIMIT 1"""),
                              {"f": a.id}).one()
    conn.execute(text("""UPDATE waitlist_chain SET event = jsonb_set(event, '{order}', CAST(:o AS jsonb))
                         WHERE facility_id = :f AND seq = :s"""),
                 {"o": json.dumps([order[1], order[0], *order[2:]]), "f": a.id, "s": seq})
    found = differences(conn, [a.id])
    assert Difference(a.code, f"link {seq}", "chain", "intact",
                      "event content does not match its digest (edited)") in found
    assert Difference(a.code, f"link {seq}", "rank 1 of queue 2026/0", order[0], order[1]) in found
    assert Difference(a.code, f"link {seq}", "rank 2 of queue 2026/0", order[1], order[0]) in found


def test_rebuild_restores_the_projection_and_rebuilds_from_the_log_alone(conn: Connection) -> None:
    world = _populate(conn)
    a, b = world["a"], world["b"]
    snapshot = _tables(conn, [a.id, b.id])
    conn.execute(text("UPDATE waitlist_entries SET applied_at = '2025-06-01T00:00:00+09:00' WHERE public_id = :e"),
                 {"e": world["entries"][7]})
    conn.execute(text("""INSERT INTO claims (child_id, category, evidence) VALUES (:c, 'basic_livelihood',
                         'verified_record')"""), {"c": world["kids"][3][1]["id"]})
    assert rebuild(conn, [a.id, b.id], dry_run=True)
    assert _tables(conn, [a.id, b.id]) != snapshot  # a dry run writes nothing
    assert rebuild(conn, [a.id, b.id])
    assert differences(conn, [a.id, b.id]) == [] and _tables(conn, [a.id, b.id]) == snapshot
    # From the log alone: the centres' entries, offers and the evidence of their claims gone, rebuilt the same.
    conn.execute(text("DELETE FROM waitlist_offers WHERE facility_id = ANY(:f)"), {"f": [a.id, b.id]})
    conn.execute(text("DELETE FROM waitlist_entries WHERE facility_id = ANY(:f)"), {"f": [a.id, b.id]})
    conn.execute(text("UPDATE claims SET evidence = 'claimed'"))
    rebuild(conn, [a.id, b.id])
    assert _tables(conn, [a.id, b.id]) == snapshot and differences(conn, [a.id, b.id]) == []


_tables = live_tables


def test_the_public_log_reveals_order_not_families(conn: Connection) -> None:
    world = _populate(conn)
    a, b = world["a"], world["b"]
    logs = {c.id: [r.event for r in wl.chain_rows(conn, c.id)] for c in (a, b)}
    pseudonyms = {f: {e["child"] for e in events if e["type"] == "apply"} for f, events in logs.items()}
    commitments = {f: [c["commitment"] for e in events for c in e.get("claims", ())] for f, events in logs.items()}
    # No pseudonym or commitment repeats across centres (three children applied at both).
    assert len(pseudonyms[a.id]) == len(CLAIMS) and len(pseudonyms[b.id]) == 3
    assert not pseudonyms[a.id] & pseudonyms[b.id]
    assert commitments[a.id] and commitments[b.id] and not set(commitments[a.id]) & set(commitments[b.id])
    # Nor the child's public id, name, birth date or any category code anywhere in the public log.
    text_of_logs = json.dumps(logs, ensure_ascii=False)
    for _, kid in world["kids"]:
        assert kid["public_id"] not in text_of_logs and kid["name"] not in text_of_logs
        assert kid["birth_date"].isoformat() not in text_of_logs
    assert not [code for code in rules_for(2026).categories if f'"{code}"' in text_of_logs]
    # The parent opens their own commitments; the pseudonym is the keyed hash of the child at that centre.
    mum, kid = world["kids"][1]
    mine = openings(conn, parent_user_id=mum)
    assert {o["centre"] for o in mine} == {a.code, b.code}
    for o in mine:
        facility = a if o["centre"] == a.code else b
        apply_event = next(e for e in logs[facility.id] if e["type"] == "apply" and e["entry"] == o["entry"])
        assert o["child"] == apply_event["child"] == child_pseudonym(secret(conn), kid["public_id"], facility.id)
        assert [x["category"] for x in o["claims"]] == ["dual_income"]
        assert commitment(o["claims"][0]["salt"], "dual_income") in {c["commitment"] for c in apply_event["claims"]}


def test_rank_mismatches_names_the_position() -> None:
    t0 = NOW.isoformat()
    events = [rules_event(2026) | {"at": t0}]
    for i, (pid, tier, points) in enumerate([("x", 3, 0), ("y", 1, 200), ("z", 3, 0)]):
        events.append({"type": "apply", "entry": pid, "was": "new", "status": "waiting", "child": f"c{i}",
                       "year": 2026, "age_class": 0, "applied_at": (NOW + timedelta(hours=i)).isoformat(),
                       "preference": 1, "tier": tier, "points": points, "claims": [], "at": t0})
    events.append({"type": "rank", "year": 2026, "age_class": 0, "order": ["y", "x", "z"], "at": t0})
    assert rank_mismatches(events) == []
    events.append({"type": "priority", "entry": "z", "tier": 1, "points": 300, "claims": [], "at": t0})
    events.append({"type": "rank", "year": 2026, "age_class": 0, "order": ["y", "x", "z"], "at": t0})
    named = [(m.seq, m.position, m.expected, m.found) for m in rank_mismatches(events)]
    assert named == [(7, 1, "z", "y"), (7, 2, "y", "x"), (7, 3, "x", "z")]
    events.append({"type": "withdraw", "entry": "q", "was": "waiting", "status": "withdrawn", "at": t0})
    assert [p.seq for p in fold(events).problems] == [8]


def test_seeded_applications_carry_their_log(conn: Connection) -> None:
    """Bulk-seeded applications (COPY) write the log too: verify replays it and finds the tables its projection;
    rebuild from the log alone gives the same tables (the 72k Seoul run: tests/geo/admission/test_log_scale.py)."""
    seeded = seed_applications(conn, count=600, year=2026, seed=11)
    ids = list(conn.execute(text("SELECT DISTINCT facility_id FROM waitlist_entries")).scalars())
    assert seeded.links >= seeded.entries + len(ids)
    assert differences(conn, ids) == []
    snapshot = _tables(conn, ids)
    conn.execute(text("DELETE FROM waitlist_entries WHERE facility_id = ANY(:f)"), {"f": ids})
    conn.execute(text("UPDATE claims SET evidence = 'claimed'"))
    found = rebuild(conn, ids)
    assert {d.field for d in found} >= {"entry"}
    assert _tables(conn, ids) == snapshot and differences(conn, ids) == []


def test_the_replay_is_importable_without_a_database() -> None:
    """A watcher re-ranks public queues with ``geo.admission.replay`` alone: no database driver, no web layer."""
    import subprocess
    import sys

    loaded = subprocess.run([sys.executable, "-c", "import sys, geo.admission.replay; print(' '.join(sys.modules))"],
                            capture_output=True, text=True, check=True).stdout.split()
    assert not [m for m in loaded if m.split(".")[0] in ("sqlalchemy", "psycopg", "fastapi", "starlette")]
