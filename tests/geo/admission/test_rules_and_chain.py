"""Priority rules as data, the ranking and its explanations, and the verifiable chain (tamper detection)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pytest

from geo.admission import rules as rules_module
from geo.admission.chain import (
    ChainRow,
    build_chain,
    inclusion_proof,
    verify_chain,
    verify_inclusion,
)
from geo.admission.ranking import RankedEntry, explain_changes, rank, tie_break
from geo.admission.rules import GENERAL_TIER, Centre, Evidence, childcare_year, rules_for
from geo.errors import InvalidQuery, NotFound

V = Evidence.verified_record


def test_published_points() -> None:
    rules = rules_for(2026)
    assert rules.priority([("dual_income", V)]).points == 200
    both = rules.priority([("dual_income", V), ("multi_child", Evidence.claimed)])
    assert (both.tier, both.points) == (1, 700) and "dual_income_and_multi_child" in both.reasons
    assert rules.priority([("basic_livelihood", V)]).points == 100
    here = Centre(code="c1", facility_type="private")
    sibling = rules.priority([("sibling_enrolled", V, "c1")], centre=here)
    assert (sibling.tier, sibling.points) == (2, 50)
    # A 1순위 family's 2순위 items do not add; a rejected claim does not count at all.
    assert rules.priority([("dual_income", V), ("sibling_enrolled", V, "c1")], centre=here).points == 200
    assert rules.priority([("dual_income", Evidence.rejected)]).tier == GENERAL_TIER
    with pytest.raises(InvalidQuery, match="unknown priority category"):
        rules.priority([("lottery_winner", V)])


def test_rules_are_data_versioned_by_year(tmp_path, monkeypatch) -> None:
    raw = json.loads((rules_module.RULES_DIR / "2026.json").read_text(encoding="utf-8"))
    raw["year"] = 2027
    next(c for c in raw["categories"] if c["code"] == "sibling_enrolled")["points"] = 80
    (tmp_path / "2026.json").write_text((rules_module.RULES_DIR / "2026.json").read_text(encoding="utf-8"))
    (tmp_path / "2027.json").write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setattr(rules_module, "RULES_DIR", tmp_path)
    rules_for.cache_clear()
    try:
        here = Centre(code="c1", facility_type="private")
        assert rules_for(2027).priority([("sibling_enrolled", V, "c1")], centre=here).points == 80
        assert rules_for(2026).priority([("sibling_enrolled", V, "c1")], centre=here).points == 50
        assert rules_for(2030).year == 2027  # carried over until a new file
        with pytest.raises(NotFound):
            rules_for(2020)
    finally:
        rules_for.cache_clear()


def test_childcare_year_starts_in_march() -> None:
    assert childcare_year(date(2027, 2, 28)) == 2026 and childcare_year(date(2027, 3, 1)) == 2027


def _entry(pid: str, codes: list[str], day: int, hour: int = 9) -> RankedEntry:
    return RankedEntry(pid, rules_for(2026).priority([(c, V, "c1") for c in codes],
                                                     centre=Centre(code="c1", facility_type="private")),
                       datetime(2026, 11, day, hour))


def test_ranking_order_and_ties() -> None:
    a = _entry("a", [], 1)
    b = _entry("b", ["sibling_enrolled"], 3)
    c = _entry("c", ["dual_income"], 5)
    d = _entry("d", ["dual_income", "multi_child"], 6)
    e = _entry("e", ["dual_income"], 5)  # same priority and time as c: the published tie-break decides
    order = [x.public_id for x in rank([a, b, c, d, e], year=2026)]
    first, second = sorted(["c", "e"], key=lambda p: tie_break(2026, p))
    assert order == ["d", first, second, "b", "a"]


def test_every_rank_change_has_a_reason() -> None:
    before = rank([_entry("a", [], 1), _entry("b", [], 2), _entry("c", [], 3)], year=2026)
    newcomer = _entry("n", ["dual_income"], 26)
    joined = rank([*before, newcomer], year=2026)
    reasons = explain_changes(before, joined)
    assert set(reasons) == {"a", "b", "c"}  # everyone moved down one place
    assert all(any("1순위" in line and "dual_income" in line and "11-26" in line for line in reasons[p])
               for p in reasons)
    left = rank([e for e in joined if e.public_id != "a"], year=2026)
    reasons = explain_changes(joined, left)
    assert set(reasons) == {"b", "c"} and all("left the list" in reasons[p][0] for p in reasons)
    # One left ahead and one joined ahead: same rank, nothing to explain.
    swapped = rank([e for e in before if e.public_id != "a"] + [newcomer], year=2026)
    assert "c" not in explain_changes(before, swapped)


def test_chain_detects_every_edit_and_proves_inclusion() -> None:
    events = [{"type": "apply", "entry": f"e{i}", "nonce": f"{i:032x}", "at": (datetime(2026, 11, 1)
              + timedelta(hours=i)).isoformat()} for i in range(6)]
    rows = build_chain(events)
    assert verify_chain(rows) == []
    # Edited content: named by its sequence number.
    edited = [*rows[:2], ChainRow(3, {**rows[2].event, "type": "withdraw"}, rows[2].digest, rows[2].hash), *rows[3:]]
    assert [p.seq for p in verify_chain(edited)] == [3]
    # A removed row breaks the link of the next one and leaves a gap.
    removed = [*rows[:3], *rows[4:]]
    assert {p.seq for p in verify_chain(removed)} == {5}
    # Inclusion: the proof verifies against the published head and fails for any other event.
    proof = inclusion_proof(rows, seq=2)
    assert verify_inclusion(proof, published_head=rows[-1].hash)
    assert "entry" not in json.dumps(list(proof.later_digests))  # only digests of other events
    forged = type(proof)(**{**proof.__dict__, "event": {**proof.event, "entry": "e9"}})
    assert not verify_inclusion(forged, published_head=rows[-1].hash)
