"""The waitlist on the real PostGIS: who may apply and how often, ranks from the rule table, ties and evidence
states, what a parent and the public see, offers and deadlines, admission and lapses, renewal, corrections and
tamper detection of the chain."""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta

import pytest
from sqlalchemy import Connection, text

from geo.admission import waitlist as wl
from geo.admission.chain import InclusionProof, verify_inclusion
from geo.admission.rules import rules_for
from geo.errors import Conflict, Forbidden, InvalidQuery, NotFound
from tests.geo.admission.waitutil import NOW, centres, child, parent, set_free


def test_only_verified_parents_apply_within_the_limits(conn: Connection) -> None:
    c = centres(conn, 4)
    unverified = parent(conn, "u@example.kr", verified=False)
    with pytest.raises(Forbidden, match="본인인증"):
        child(conn, unverified)
    mum = parent(conn, "m@example.kr")
    with pytest.raises(InvalidQuery, match="unknown priority"):
        child(conn, mum, claims=("lottery",))
    # 반 age by birth year (reference notes: in 2026, born 2025 = 0세반 ... 2020 = 5세반).
    for born, age in [(date(2025, 12, 31), 0), (date(2024, 1, 1), 1), (date(2020, 6, 1), 5)]:
        kid = child(conn, mum, born=born)
        entry = wl.apply(conn, parent_user_id=mum, child_id=kid["id"], facility_code=c[0].code, now=NOW)
        assert (entry["year"], entry["age_class"]) == (2026, age)
    too_old = child(conn, mum, born=date(2019, 12, 31))
    with pytest.raises(InvalidQuery, match="no 0-5세 class"):
        wl.apply(conn, parent_user_id=mum, child_id=too_old["id"], facility_code=c[0].code, now=NOW)
    kid = child(conn, mum)
    limit = rules_for(2026).max_applications
    for centre in c[:limit]:
        wl.apply(conn, parent_user_id=mum, child_id=kid["id"], facility_code=centre.code, now=NOW)
    with pytest.raises(Conflict, match=f"at most {limit}"):
        wl.apply(conn, parent_user_id=mum, child_id=kid["id"], facility_code=c[limit].code, now=NOW)
    with pytest.raises(Conflict, match="already has an active entry"):
        wl.apply(conn, parent_user_id=mum, child_id=kid["id"], facility_code=c[0].code, now=NOW)
    enrolled = wl.register_child(conn, parent_user_id=mum, name="둘째", birth_date=date(2024, 3, 3), enrolled=True,
                                 now=NOW)
    small = rules_for(2026).max_applications_if_enrolled
    for centre in c[:small]:
        wl.apply(conn, parent_user_id=mum, child_id=enrolled["id"], facility_code=centre.code, now=NOW)
    with pytest.raises(Conflict, match=f"at most {small}"):
        wl.apply(conn, parent_user_id=mum, child_id=enrolled["id"], facility_code=c[small].code, now=NOW)
    # Someone else's child is not yours to apply for.
    other = parent(conn, "o@example.kr")
    with pytest.raises(NotFound):
        wl.apply(conn, parent_user_id=other, child_id=kid["id"], facility_code=c[3].code, now=NOW)


def _expected_order(rows: list[tuple[str, int, int, object]]) -> list[str]:
    """Independent ranking: tier asc, points desc, applied_at, SHA-256("2026:<id>")."""
    return [r[0] for r in sorted(rows, key=lambda r: (r[1], -r[2], r[3],
                                                      hashlib.sha256(f"2026:{r[0]}".encode()).hexdigest()))]


def test_ranks_follow_the_rule_table_ties_and_evidence(conn: Connection) -> None:
    centre = centres(conn, 1)[0]
    people = {name: parent(conn, f"{name}@example.kr") for name in ("a", "b", "c", "d")}
    claims = {"a": (), "b": ("dual_income",), "c": ("dual_income", "multi_child"), "d": ()}
    # a and d apply at the same instant: the published tie-break decides.
    times = {"a": NOW, "b": NOW + timedelta(hours=1), "c": NOW + timedelta(hours=2), "d": NOW}
    entries, kids = {}, {}
    for name in ("a", "d", "b", "c"):
        kids[name] = child(conn, people[name], claims=claims[name], name=f"아이{name}")
        entries[name] = wl.apply(conn, parent_user_id=people[name], child_id=kids[name]["id"],
                                 facility_code=centre.code, now=times[name])["entry"]
    first_look = wl.my_ranks(conn, parent_user_id=people["a"], now=NOW)
    q = wl.queue(conn, centre.id, year=2026, age_class=0)
    expected = _expected_order([(entries["a"], 3, 0, times["a"]), (entries["d"], 3, 0, times["d"]),
                                (entries["b"], 1, 200, times["b"]), (entries["c"], 1, 700, times["c"])])
    assert [x.ranked.public_id for x in q] == expected
    assert first_look[0]["rank"] == expected.index(entries["a"]) + 1 and first_look[0]["changes"] == []
    public = wl.public_queue(conn, centre.code, year=2026, age_class=0)
    assert [p["rank"] for p in public] == [1, 2, 3, 4]
    assert public[0]["band"] == "1순위 700-799" and public[1]["band"] == "1순위 200-299"
    assert all(set(p) == {"rank", "band", "applied_on", "status"} for p in public)
    # The centre rejects b's 맞벌이 claim: b falls behind a and d (general tier, applied later).
    staff_user = None
    wl.set_evidence(conn, facility_id=centre.id, child_public_id=kids["b"]["public_id"], category="dual_income",
                    evidence="rejected", actor_user_id=staff_user, now=NOW + timedelta(days=1))
    after = [x.ranked.public_id for x in wl.queue(conn, centre.id, year=2026, age_class=0)]
    assert after == [entries["c"], *[e for e in expected if e in (entries["a"], entries["d"])], entries["b"]]
    look = wl.my_ranks(conn, parent_user_id=people["a"], now=NOW + timedelta(days=1))[0]
    assert look["rank"] == after.index(entries["a"]) + 1
    assert look["changes"] and any("ranks below you" in line for line in look["changes"])
    b_look = wl.my_ranks(conn, parent_user_id=people["b"], now=NOW + timedelta(days=1))[0]
    assert b_look["band"] == "일반 0-99" and b_look["rank"] == 4
    # A later 1순위 application: a is told who came above, with its band and categories.
    e = parent(conn, "e@example.kr")
    ekid = child(conn, e, claims=("basic_livelihood",))
    wl.apply(conn, parent_user_id=e, child_id=ekid["id"], facility_code=centre.code, now=NOW + timedelta(days=2))
    again = wl.my_ranks(conn, parent_user_id=people["a"], now=NOW + timedelta(days=2))[0]
    assert again["rank"] == look["rank"] + 1
    assert any("1순위 100-199 (basic_livelihood)" in line and "ranked above you" in line for line in again["changes"])
    # The chain holds no names or birth dates.
    chain_text = json.dumps([r.event for r in wl.chain_rows(conn, centre.id)], ensure_ascii=False)
    assert "아이" not in chain_text and "2025-05-01" not in chain_text
    assert wl.verify_centre(conn, centre.id) == []


def _views(conn: Connection, entry_ids: list[int]) -> dict[int, tuple[object, object]]:
    rows = conn.execute(text("SELECT entry_id, seen_at, snapshot FROM waitlist_rank_views WHERE entry_id = ANY(:e)"),
                        {"e": entry_ids}).all()
    return {r.entry_id: (r.seen_at, r.snapshot) for r in rows}


def test_rank_check_over_several_queues_remembers_every_view(conn: Connection) -> None:
    """Two children of one parent in two queues (both in one of them): ranks and sizes as each queue alone gives
    them; a look with nothing changed explains nothing and writes nothing; a change in one queue is explained to
    its entries only and replaces only their views."""
    c = centres(conn, 2)
    mum, other = parent(conn, "mum@example.kr"), parent(conn, "other@example.kr")
    older = child(conn, mum, claims=("dual_income",), born=date(2024, 4, 1), name="첫째")
    younger = child(conn, mum, name="둘째")
    rival = child(conn, other, born=date(2024, 6, 1))
    for i, (who, kid, centre) in enumerate([(other, rival, c[0]), (mum, older, c[0]), (mum, older, c[1]),
                                            (mum, younger, c[0])]):
        wl.apply(conn, parent_user_id=who, child_id=kid["id"], facility_code=centre.code,
                 now=NOW + timedelta(minutes=i))
    keys = [(c[0].id, 2026, 1), (c[1].id, 2026, 1), (c[0].id, 2026, 0)]
    together = wl.queues(conn, keys)
    assert {k: [q.entry_id for q in v] for k, v in together.items()} == {
        k: [q.entry_id for q in wl.queue(conn, k[0], year=k[1], age_class=k[2])] for k in keys}
    first = wl.my_ranks(conn, parent_user_id=mum, now=NOW + timedelta(hours=1))
    assert [(m["child_name"], m["centre"]) for m in first] == [("첫째", c[0].code), ("첫째", c[1].code),
                                                                 ("둘째", c[0].code)]
    for m in first:
        ranked = [q.ranked.public_id for q in together[(conn.execute(text(
            "SELECT id FROM facilities WHERE code = :c"), {"c": m["centre"]}).scalar_one(), 2026, m["age_class"])]]
        assert (m["rank"], m["of"], m["changes"]) == (ranked.index(m["entry"]) + 1, len(ranked), [])
    assert first[0]["rank"] == 1 and first[0]["of"] == 2  # 맞벌이 (claimed) ranks above the earlier rival
    ids = {m["entry"]: conn.execute(text("SELECT id FROM waitlist_entries WHERE public_id = :p"),
                                    {"p": m["entry"]}).scalar_one() for m in first}
    before = _views(conn, list(ids.values()))
    again = wl.my_ranks(conn, parent_user_id=mum, now=NOW + timedelta(hours=2))
    assert [{**m, "changes": None} for m in again] == [{**m, "changes": None} for m in first]
    assert all(m["changes"] == [] for m in again)
    assert _views(conn, list(ids.values())) == before
    assert {v[0] for v in before.values()} == {NOW + timedelta(hours=1)}
    # A stronger 1순위 application to the first centre's 1세반: the older child there is told, the others are not.
    latecomer = parent(conn, "late@example.kr")
    late = child(conn, latecomer, claims=("dual_income", "multi_child"), born=date(2024, 7, 1))
    wl.apply(conn, parent_user_id=latecomer, child_id=late["id"], facility_code=c[0].code,
             now=NOW + timedelta(hours=3))
    third = wl.my_ranks(conn, parent_user_id=mum, now=NOW + timedelta(hours=4))
    assert third[0]["rank"] == 2 and third[0]["of"] == 3
    assert any("1순위 700-799" in line and "ranked above you" in line for line in third[0]["changes"])
    assert third[1]["changes"] == [] and third[2]["changes"] == []
    after = _views(conn, list(ids.values()))
    moved = ids[third[0]["entry"]]
    assert after[moved][1] != before[moved][1] and len(after[moved][1]) == 3
    assert after[moved][0] == NOW + timedelta(hours=4)
    assert all(after[ids[m["entry"]]] == before[ids[m["entry"]]] for m in third[1:])


def test_offers_skip_unverified_claims_and_move_on_at_deadlines(conn: Connection) -> None:
    centre = centres(conn, 1)[0]
    set_free(conn, centre.id, {"0": 1})
    names = ("claimer", "first", "second", "third")
    ids = {n: parent(conn, f"{n}@example.kr") for n in names}
    kids = {"claimer": child(conn, ids["claimer"], claims=("dual_income",))}
    for n in names[1:]:
        kids[n] = child(conn, ids[n])
    entry = {}
    for i, n in enumerate(names):
        entry[n] = wl.apply(conn, parent_user_id=ids[n], child_id=kids[n]["id"], facility_code=centre.code,
                            now=NOW + timedelta(minutes=i))["entry"]
    made = wl.offer_next(conn, facility_id=centre.id, age_class=0, actor_user_id=None, now=NOW)
    assert made["skipped"] == [{"entry": entry["claimer"], "reason": "priority claims not verified yet: dual_income"}]
    assert made["offer"]["entry"] == entry["first"]
    deadline = NOW + timedelta(days=rules_for(2026).offer_days)
    assert made["offer"]["deadline"] == deadline
    # The one free place is out on offer: no second offer.
    with pytest.raises(Conflict, match="no free place"):
        wl.offer_next(conn, facility_id=centre.id, age_class=0, actor_user_id=None, now=NOW)
    # Too late to accept; expiry moves the place on to the next eligible entry.
    with pytest.raises(Conflict, match="expired"):
        wl.accept(conn, parent_user_id=ids["first"], offer_id=made["offer"]["id"],
                  now=deadline + timedelta(seconds=1))
    assert wl.expire_offers(conn, now=deadline + timedelta(seconds=1)) == {"offers_expired": 1, "entries_lapsed": 0}
    status = dict(conn.execute(text("SELECT public_id, status FROM waitlist_entries WHERE facility_id = :f"),
                               {"f": centre.id}).all())
    assert status[entry["first"]] == "lapsed" and status[entry["second"]] == "offered"
    second_offer = conn.execute(text("SELECT o.id FROM waitlist_offers o JOIN waitlist_entries e ON e.id = o.entry_id "
                                     "WHERE e.public_id = :p"), {"p": entry["second"]}).scalar_one()
    # A decline moves on as well.
    wl.decline(conn, parent_user_id=ids["second"], offer_id=second_offer, now=deadline + timedelta(days=1))
    third_offer = conn.execute(text("SELECT o.id FROM waitlist_offers o JOIN waitlist_entries e ON e.id = o.entry_id "
                                    "WHERE e.public_id = :p AND o.status = 'open'"),
                               {"p": entry["third"]}).scalar_one()
    # Someone else cannot answer it; the parent accepts once, not twice.
    with pytest.raises(NotFound):
        wl.accept(conn, parent_user_id=ids["first"], offer_id=third_offer, now=deadline + timedelta(days=1))
    wl.accept(conn, parent_user_id=ids["third"], offer_id=third_offer, now=deadline + timedelta(days=1))
    with pytest.raises(Conflict, match="already accepted"):
        wl.accept(conn, parent_user_id=ids["third"], offer_id=third_offer, now=deadline + timedelta(days=1))
    free = conn.execute(text("SELECT free_by_age FROM facilities WHERE id = :f"), {"f": centre.id}).scalar_one()
    assert free["0"] == 0
    # Once the claim is verified the claimer is eligible, but there is no place left.
    wl.set_evidence(conn, facility_id=centre.id, child_public_id=kids["claimer"]["public_id"],
                    category="dual_income", evidence="verified_centre", actor_user_id=None, now=NOW)
    with pytest.raises(Conflict, match="no free place"):
        wl.offer_next(conn, facility_id=centre.id, age_class=0, actor_user_id=None, now=NOW)
    types = [r.event["type"] for r in wl.chain_rows(conn, centre.id) if r.event["type"] != "rank"]
    assert types.count("offer") == 3 and "offer_expired" in types and "decline" in types and "accept" in types
    assert wl.verify_centre(conn, centre.id) == []


def test_admission_lapses_other_entries_unless_kept(conn: Connection) -> None:
    c = centres(conn, 3)
    set_free(conn, c[0].id, {"0": 1})
    mum = parent(conn, "m@example.kr")
    kid = child(conn, mum)
    entries = [wl.apply(conn, parent_user_id=mum, child_id=kid["id"], facility_code=x.code, now=NOW)["entry"]
               for x in c]
    offer = wl.offer_next(conn, facility_id=c[0].id, age_class=0, actor_user_id=None, now=NOW)["offer"]
    wl.accept(conn, parent_user_id=mum, offer_id=offer["id"], now=NOW)
    wl.keep_entries(conn, parent_user_id=mum, entry_public_id=entries[2])
    keep_days = rules_for(2026).keep_other_entries_days
    assert wl.expire_offers(conn, now=NOW + timedelta(days=keep_days) - timedelta(minutes=1))["entries_lapsed"] == 0
    assert wl.expire_offers(conn, now=NOW + timedelta(days=keep_days, minutes=1))["entries_lapsed"] == 1
    status = dict(conn.execute(text("SELECT public_id, status FROM waitlist_entries WHERE child_id = :c"),
                               {"c": kid["id"]}).all())
    assert [status[e] for e in entries] == ["admitted", "lapsed", "waiting"]


def test_renewal_at_year_end_and_dropped_with_notice(conn: Connection) -> None:
    c = centres(conn, 2)
    mum = parent(conn, "m@example.kr")
    kid = child(conn, mum)
    kept, lost = (wl.apply(conn, parent_user_id=mum, child_id=kid["id"], facility_code=x.code, now=NOW)["entry"]
                  for x in c)
    february = NOW.replace(year=2027, month=2, day=10)
    renewed = wl.renew(conn, parent_user_id=mum, entry_public_id=kept, now=february)
    assert (renewed["year"], renewed["age_class"]) == (2027, 1)
    with pytest.raises(Conflict):
        wl.renew(conn, parent_user_id=mum, entry_public_id=kept, now=february)
    assert wl.drop_unrenewed(conn, year=2027, now=NOW.replace(year=2027, month=3, day=1)) == 1
    status = dict(conn.execute(text("SELECT public_id, status FROM waitlist_entries WHERE child_id = :c"),
                               {"c": kid["id"]}).all())
    assert status == {kept: "waiting", lost: "dropped"}
    notes = wl.notices(conn, parent_user_id=mum)
    assert notes[0]["kind"] == "dropped" and c[1].code in notes[0]["message"]


def test_tamper_detection_names_the_row_and_proofs_verify(conn: Connection) -> None:
    centre = centres(conn, 1)[0]
    ids = [parent(conn, f"p{i}@example.kr") for i in range(3)]
    for i, uid in enumerate(ids):
        wl.apply(conn, parent_user_id=uid, child_id=child(conn, uid)["id"], facility_code=centre.code,
                 now=NOW + timedelta(minutes=i))
    rows = wl.chain_rows(conn, centre.id)
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    heads = wl.daily_heads(conn, centre.id)
    assert heads[-1]["hash"] == rows[-1].hash
    # Proofs of parent 0's entries verify against the published head and show only their own events.
    proofs = wl.inclusion_proofs(conn, parent_user_id=ids[0])
    own_entry = conn.execute(text("SELECT e.public_id FROM waitlist_entries e JOIN children c ON c.id = e.child_id "
                                  "WHERE c.parent_user_id = :p"), {"p": ids[0]}).scalar_one()
    assert proofs and all(p["event"]["entry"] == own_entry for p in proofs)
    for p in proofs:
        proof = InclusionProof(seq=p["seq"], previous_hash=p["previous_hash"], event=p["event"],
                               later_digests=tuple(p["later_digests"]), head_seq=p["head_seq"],
                               head_hash=p["head_hash"])
        assert verify_inclusion(proof, published_head=heads[-1]["hash"])
    # An admin correction is logged with its reason.
    wl.correct(conn, entry_public_id=own_entry, status="withdrawn", reason="duplicate application by phone",
               actor_user_id=ids[1], now=NOW + timedelta(hours=1))
    assert any(r.event.get("reason") == "duplicate application by phone" for r in wl.chain_rows(conn, centre.id))
    assert wl.verify_centre(conn, centre.id) == []
    # Edit an event in place: that row is named.
    conn.execute(text("""UPDATE waitlist_chain SET event = jsonb_set(event, '{applied_at}', '"2026-01-01"')
                         WHERE facility_id = :f AND seq = 3"""), {"f": centre.id})
    problems = wl.verify_centre(conn, centre.id)
    assert [(p.seq, "edited" in p.reason) for p in problems] == [(3, True)]
    # Remove a row: the gap and the broken link after it are named.
    conn.execute(text("DELETE FROM waitlist_chain WHERE facility_id = :f AND seq = 5"), {"f": centre.id})
    seqs = {p.seq for p in wl.verify_centre(conn, centre.id)}
    assert {3, 6} <= seqs
