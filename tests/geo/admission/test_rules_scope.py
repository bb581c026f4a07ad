"""Where a priority category counts: siblings only at the sibling's centre, 산업단지·기부채납·공동주택 only at those
centres; the points rule and the cap are data in the rules file (issue #21, Rules)."""

from __future__ import annotations

import json

from sqlalchemy import Connection

from geo.admission import waitlist as wl
from geo.admission.rules import RULES_DIR, Centre, Evidence, rules_for
from tests.geo.admission.waitutil import NOW, centres, child, parent

V = Evidence.verified_record
RULES = rules_for(2026)


def test_sibling_counts_only_at_the_centre_where_the_sibling_is_enrolled() -> None:
    here = Centre(code="11110000001", facility_type="private")
    there = Centre(code="11110000002", facility_type="private")
    claim = [("sibling_enrolled", V, here.code)]
    at_here = RULES.priority(claim, centre=here)
    assert (at_here.tier, at_here.points, at_here.reasons) == (2, 50, ("sibling_enrolled",))
    assert RULES.priority(claim, centre=there).tier == 3
    # A sibling claim that names no centre counts nowhere; nor does one ranked without a centre.
    assert RULES.priority([("sibling_enrolled", V)], centre=here).tier == 3
    assert RULES.priority(claim).tier == 3


def test_sibling_claim_ranks_only_in_the_named_centres_queue(conn: Connection) -> None:
    a, b = centres(conn, 2)
    mum, other = parent(conn, "sib@example.kr"), parent(conn, "other@example.kr")
    kid = wl.register_child(conn, parent_user_id=mum, name="둘째", birth_date=child_born(), now=NOW,
                            claims=["sibling_enrolled"], claim_details={"sibling_enrolled": a.code})
    rival = child(conn, other, born=child_born(), name="이웃")
    for centre in (a, b):  # the rival applies first at both centres
        wl.apply(conn, parent_user_id=other, child_id=rival["id"], facility_code=centre.code, now=NOW)
    for centre in (a, b):
        wl.apply(conn, parent_user_id=mum, child_id=kid["id"], facility_code=centre.code, now=NOW.replace(hour=2))
    first = {c.code: wl.queue(conn, c.id, year=2026, age_class=0)[0] for c in (a, b)}
    assert first[a.code].child_public_id == kid["public_id"] and first[a.code].ranked.priority.tier == 2
    assert first[b.code].child_public_id == rival["public_id"]
    assert kid["claims"][0]["detail"] == a.code


def test_sibling_claim_must_name_a_known_centre(conn: Connection) -> None:
    import pytest

    from geo.errors import InvalidQuery

    mum = parent(conn, "nosib@example.kr")
    with pytest.raises(InvalidQuery, match="needs the facility code"):
        wl.register_child(conn, parent_user_id=mum, name="셋째", birth_date=child_born(), now=NOW,
                          claims=["sibling_enrolled"])
    with pytest.raises(InvalidQuery, match="unknown centre"):
        wl.register_child(conn, parent_user_id=mum, name="셋째", birth_date=child_born(), now=NOW,
                          claims=["sibling_enrolled"], claim_details={"sibling_enrolled": "nope"})


def child_born():  # type: ignore[no-untyped-def]
    from datetime import date

    return date(2025, 5, 1)


def test_points_rule_and_cap_are_data_in_the_rules_file() -> None:
    raw = json.loads((RULES_DIR / "2026.json").read_text(encoding="utf-8"))
    assert raw["points_rule"] == "best_tier_sum_plus_bonuses" and RULES.points_rule == raw["points_rule"]
    assert RULES.max_points == raw["max_points"]
    every_first = [(c.code, V) for c in RULES.categories.values() if c.tier == 1]
    capped = RULES.priority(every_first, centre=Centre(code="x", facility_type="workplace"))
    assert capped.points == RULES.max_points and "cap" in capped.reasons[-1]
    assert RULES.priority([("dual_income", V), ("multi_child", V)]).points == 700  # the published maximum
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[3] / "docs" / "waitlist.md").read_text(encoding="utf-8")
    assert raw["points_rule"] in docs and f"max_points: {raw['max_points']}" in docs


def test_points_rule_unknown_is_refused(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from geo.admission import rules as rules_module

    raw = json.loads((RULES_DIR / "2026.json").read_text(encoding="utf-8"))
    raw["year"], raw["points_rule"] = 2031, "sum_everything"
    (tmp_path / "2031.json").write_text(json.dumps(raw), encoding="utf-8")
    monkeypatch.setattr(rules_module, "RULES_DIR", tmp_path)
    rules_module.rules_for.cache_clear()
    try:
        with pytest.raises(ValueError, match="points_rule"):
            rules_module.rules_for(2031)
    finally:
        rules_module.rules_for.cache_clear()


def test_industrial_complex_priority_only_at_designated_centres() -> None:
    claim = [("industrial_complex_resident", V)]
    workplace = Centre(code="11110000003", facility_type="workplace")
    private = Centre(code="11110000004", facility_type="private")
    assert RULES.priority(claim, centre=workplace).tier == 1
    assert RULES.priority(claim, centre=private).tier == 3
    listed = rules_for(2026).category_scope("industrial_complex_resident")
    assert "workplace" in listed.facility_types
