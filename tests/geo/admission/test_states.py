"""The admission transition table: sound as written, a broken row is named, and what it does not allow is refused
with ``IllegalTransition`` (HTTP 409) without writing anything."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import Connection, Engine, text

from api.errors import _status_for
from geo.admission import states
from geo.admission import waitlist as wl
from geo.admission.states import TABLE, Transition, check_table
from geo.errors import IllegalTransition
from tests.geo.admission.waitutil import NOW, centres, child, parent, set_free


@pytest.fixture()
def conn(seoul_engine: Engine, connection: Connection) -> Connection:
    """The rolled-back connection on the database with the real Seoul centres."""
    return connection


def test_the_table_is_sound_and_a_broken_row_is_named() -> None:
    assert check_table(TABLE) == []
    # Leaving ``offered`` without saying what becomes of the offer is the bug class of #19 A.
    broken = (*TABLE, Transition("offered", "oops", "withdrawn"))
    assert check_table(broken) == ["offered --oops--> withdrawn: leaving offered closes the offer, and only that does"]
    opens_twice = (*TABLE, Transition("waiting", "keep", "waiting", offer="open"))
    assert any("twice" in p for p in check_table(opens_twice))
    assert any("opens exactly" in p for p in check_table(opens_twice))
    assert _status_for(IllegalTransition("x")) == 409
    # Every event a caller uses has a row.
    assert {t.event for t in TABLE} >= {"apply", "offer", "intake_offer", "accept", "decline", "withdraw",
                                        "offer_expired", "lapse_after_admission", "keep", "renew",
                                        "drop_unrenewed", "transfer", "correction"}


def test_illegal_transitions_are_refused_and_write_nothing(conn: Connection) -> None:
    centre = centres(conn, 1)[0]
    set_free(conn, centre.id, {"0": 1})
    mum, admin = parent(conn, "m@example.kr"), parent(conn, "admin@example.kr")
    kid = child(conn, mum, claims=("dual_income",))
    entry = wl.apply(conn, parent_user_id=mum, child_id=kid["id"], facility_code=centre.code, now=NOW)["entry"]
    wl.withdraw(conn, parent_user_id=mum, entry_public_id=entry, now=NOW)
    chain_before = len(wl.chain_rows(conn, centre.id))
    with pytest.raises(IllegalTransition, match="withdrawn: withdraw is not allowed"):
        wl.withdraw(conn, parent_user_id=mum, entry_public_id=entry, now=NOW)
    with pytest.raises(IllegalTransition, match="keep is not allowed"):
        wl.keep_entries(conn, parent_user_id=mum, entry_public_id=entry, now=NOW)
    with pytest.raises(IllegalTransition, match="correction to withdrawn"):
        wl.correct(conn, entry_public_id=entry, status="withdrawn", reason="again", actor_user_id=admin, now=NOW)
    assert len(wl.chain_rows(conn, centre.id)) == chain_before
    # Reinstated by a correction, admitted, then an admission can only be corrected to withdrawn (place freed).
    wl.correct(conn, entry_public_id=entry, status="waiting", reason="withdrawn by mistake", actor_user_id=admin,
               now=NOW)
    wl.set_evidence(conn, facility_id=centre.id, child_public_id=kid["public_id"], category="dual_income",
                    evidence="verified_record", actor_user_id=None, now=NOW)
    with pytest.raises(IllegalTransition, match="verified_record: it cannot become verified_centre"):
        wl.set_evidence(conn, facility_id=centre.id, child_public_id=kid["public_id"], category="dual_income",
                        evidence="verified_centre", actor_user_id=None, now=NOW)
    offer = wl.offer_next(conn, facility_id=centre.id, age_class=0, actor_user_id=None, now=NOW)["offer"]
    wl.accept(conn, parent_user_id=mum, offer_id=offer["id"], now=NOW)
    with pytest.raises(IllegalTransition, match="admitted: correction to lapsed"):
        wl.correct(conn, entry_public_id=entry, status="lapsed", reason="x", actor_user_id=admin, now=NOW)
    wl.correct(conn, entry_public_id=entry, status="withdrawn", reason="left in the first week", actor_user_id=admin,
               now=NOW + timedelta(days=3))
    assert conn.execute(text("SELECT (free_by_age->>'0')::int FROM facilities WHERE id = :f"),
                        {"f": centre.id}).scalar_one() == 1
    # Every change of this entry's state is one chain event naming where it came from and where it went (the
    # entry's other events are ``priority`` events: the claim's evidence changed).
    moves = [(r.event["was"], r.event["type"], r.event["status"]) for r in wl.chain_rows(conn, centre.id)
             if r.event.get("entry") == entry and r.event["type"] != "priority"]
    assert moves == [("new", "apply", "waiting"), ("waiting", "withdraw", "withdrawn"),
                     ("withdrawn", "correction", "waiting"), ("waiting", "offer", "offered"),
                     ("offered", "accept", "admitted"), ("admitted", "correction", "withdrawn")]
    assert all(states.allowed(was, event) for was, event, _ in moves)


def test_a_stale_read_cannot_skip_a_state(conn: Connection) -> None:
    centre = centres(conn, 1)[0]
    mum = parent(conn, "m@example.kr")
    kid = wl.register_child(conn, parent_user_id=mum, name="아기", birth_date=date(2025, 1, 2), now=NOW)
    entry = wl.apply(conn, parent_user_id=mum, child_id=kid["id"], facility_code=centre.code, now=NOW)["entry"]
    entry_id = conn.execute(text("SELECT id FROM waitlist_entries WHERE public_id = :p"), {"p": entry}).scalar_one()
    stale = states.lock_entry(conn, entry_id)
    wl.withdraw(conn, parent_user_id=mum, entry_public_id=entry, now=NOW)
    with pytest.raises(IllegalTransition, match="no longer waiting"):
        states.transition(conn, stale, "drop_unrenewed", at=NOW)
