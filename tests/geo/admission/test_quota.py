"""The 산업단지·기부채납·공동주택 입주자 quota (issue #21, Rules): within the share of the centre's 정원 such entries
keep their 1순위, beyond it they rank without it; places already held count against it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from geo.admission import rules as rules_module
from geo.admission import waitlist as wl
from geo.admission.quota import QuotaRoom, apply_quota
from geo.admission.rules import RULES_DIR, Centre, Evidence, Priority, rules_for
from tests.geo.admission.waitutil import NOW, child, parent

CODE = "industrial_complex_resident"


def test_apply_quota_keeps_the_first_claimants_in_rank_order() -> None:
    rules = rules_for(2026)
    centre = Centre("11110000003", "workplace")
    with_claim = rules.priority([(CODE, Evidence.verified_record)], centre=centre)
    plain = rules.priority([], centre=centre)
    ordered = ["a", "b", "c", "d"]
    given = {"a": with_claim, "b": plain, "c": with_claim, "d": with_claim}
    after = apply_quota(ordered, given, [QuotaRoom(CODE, places=3, held=1)], lambda e, c: plain)
    assert after["a"] == with_claim and after["c"] == with_claim and after["b"] == plain
    assert after["d"] == Priority(plain.tier, plain.points, (f"beyond_quota:{CODE}",))


def test_quota_by_code_must_lie_within_the_range(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = json.loads((RULES_DIR / "2026.json").read_text(encoding="utf-8"))
    raw["year"] = 2032
    scope = next(c for c in raw["categories"] if c["code"] == CODE)["applies_at"]
    scope["quota_by_code"] = {"x": 0.9}
    (tmp_path / "2032.json").write_text(json.dumps(raw), encoding="utf-8")
    monkeypatch.setattr(rules_module, "RULES_DIR", tmp_path)
    rules_module.rules_for.cache_clear()
    try:
        with pytest.raises(ValueError, match="quota_by_code outside"):
            rules_module.rules_for(2032)
    finally:
        rules_module.rules_for.cache_clear()


@pytest.fixture()
def small_workplace_centre(conn: Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    """The real operating 직장 centre with the smallest 정원, its agreed quota set to the low bound (30 %) in a
    copy of the 2026 rules."""
    row = conn.execute(text("""SELECT id, code, capacity FROM facilities WHERE facility_type = 'workplace'
                               AND status = 'active' AND capacity >= 7 ORDER BY capacity, code LIMIT 1""")).one()
    raw = json.loads((RULES_DIR / "2026.json").read_text(encoding="utf-8"))
    scope = next(c for c in raw["categories"] if c["code"] == CODE)["applies_at"]
    scope["quota_by_code"] = {row.code: scope["quota_share"][0]}
    (tmp_path / "2026.json").write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setattr(rules_module, "RULES_DIR", tmp_path)
    rules_module.rules_for.cache_clear()
    from geo.admission import queue as queue_module

    queue_module._priority.cache_clear()
    try:
        yield {"id": row.id, "code": row.code, "places": int(scope["quota_share"][0] * row.capacity)}
    finally:
        rules_module.rules_for.cache_clear()
        queue_module._priority.cache_clear()


def test_claimants_beyond_the_quota_rank_without_the_priority(conn: Connection, small_workplace_centre: dict
                                                              ) -> None:
    centre = small_workplace_centre
    places = centre["places"]
    assert places >= 2
    # An applicant without any category applies first; then places + 1 입주자 claimants, one an hour.
    early = parent(conn, "early@example.kr")
    general = child(conn, early, name="일반")
    wl.apply(conn, parent_user_id=early, child_id=general["id"], facility_code=centre["code"], now=NOW)
    claimants = []
    for k in range(places + 1):
        mum = parent(conn, f"resident{k}@example.kr")
        kid = child(conn, mum, claims=(CODE,), name=f"입주{k}")
        entry = wl.apply(conn, parent_user_id=mum, child_id=kid["id"], facility_code=centre["code"],
                         now=NOW + timedelta(hours=k + 1))
        claimants.append(entry["entry"])
    q = wl.queue(conn, centre["id"], year=2026, age_class=0)
    order = [e.ranked.public_id for e in q]
    # The first `places` claimants keep their 1순위; the last ranks without it, behind the earlier applicant.
    assert order[:places] == claimants[:places]
    assert order[places:] == [q[places].ranked.public_id, claimants[-1]]
    assert q[places].child_public_id == general["public_id"]
    last = q[-1].ranked.priority
    assert last.tier == 3 and last.reasons == (f"beyond_quota:{CODE}",)
    # A claimant admitted at the centre holds one of the places: one fewer claimant in the queue keeps it.
    holder = parent(conn, "holder@example.kr")
    held = child(conn, holder, claims=(CODE,), name="재원")
    entry = wl.apply(conn, parent_user_id=holder, child_id=held["id"], facility_code=centre["code"],
                     now=NOW + timedelta(days=1))
    conn.execute(text("UPDATE waitlist_entries SET status = 'admitted' WHERE public_id = :p"), {"p": entry["entry"]})
    after = wl.queue(conn, centre["id"], year=2026, age_class=0)
    kept = [e.ranked.public_id for e in after if e.ranked.priority.tier == 1]
    assert kept == claimants[: places - 1]
    # The rank check explains it to the second-to-last claimant.
    assert [e.ranked.priority.reasons for e in after if e.ranked.public_id == claimants[places - 1]] == [
        (f"beyond_quota:{CODE}",)]
