"""Regressions of issue #19 (the admission state machine): an offer left open by a correction, a child admitted at
two centres within the keep window, and an offered entry that never lapsed. Each failed on the code before its
fix."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

from geo.admission import waitlist as wl
from geo.admission.rules import rules_for
from geo.errors import Conflict
from tests.geo.admission.waitutil import NOW, centres, child, parent, set_free

RULES = rules_for(2026)


@pytest.fixture()
def conn(seoul_engine: Engine, connection: Connection) -> Connection:
    """The rolled-back connection on the database with the real Seoul centres."""
    return connection


def _statuses(conn: Connection, child_id: int) -> dict[int, str]:
    """The child's entries' statuses by centre id."""
    return dict(conn.execute(text("SELECT facility_id, status FROM waitlist_entries WHERE child_id = :c"),
                             {"c": child_id}).all())


def _free(conn: Connection, facility_id: int) -> int:
    return int(conn.execute(text("SELECT (free_by_age->>'0')::int FROM facilities WHERE id = :f"),
                            {"f": facility_id}).scalar_one())


def _admitted_at(conn: Connection, c: Any, mum: int, kid: dict[str, Any]) -> None:
    """Apply the child to every centre of ``c`` and admit it at the first (offer accepted at ``NOW``)."""
    for x in c:
        wl.apply(conn, parent_user_id=mum, child_id=kid["id"], facility_code=x.code, now=NOW)
    offer = wl.offer_next(conn, facility_id=c[0].id, age_class=0, actor_user_id=None, now=NOW)["offer"]
    wl.accept(conn, parent_user_id=mum, offer_id=offer["id"], now=NOW)


def test_a_correction_away_from_offered_closes_the_offer(conn: Connection) -> None:
    centre = centres(conn, 1)[0]
    set_free(conn, centre.id, {"0": 1})
    mum, admin = parent(conn, "m@example.kr"), parent(conn, "admin@example.kr")
    kid = child(conn, mum)
    entry = wl.apply(conn, parent_user_id=mum, child_id=kid["id"], facility_code=centre.code, now=NOW)["entry"]
    offer = wl.offer_next(conn, facility_id=centre.id, age_class=0, actor_user_id=None, now=NOW)["offer"]
    assert wl.free_places(conn, centre.id, 0) == 0
    wl.correct(conn, entry_public_id=entry, status="withdrawn", reason="applied twice by phone",
               actor_user_id=admin, now=NOW + timedelta(hours=1))
    # The place is no longer blocked and the offer cannot be accepted any more.
    assert conn.execute(text("SELECT status FROM waitlist_offers WHERE id = :o"),
                        {"o": offer["id"]}).scalar_one() != "open"
    assert wl.free_places(conn, centre.id, 0) == 1
    with pytest.raises(Conflict):
        wl.accept(conn, parent_user_id=mum, offer_id=offer["id"], now=NOW + timedelta(hours=2))
    assert _statuses(conn, kid["id"]) == {centre.id: "withdrawn"}
    assert _free(conn, centre.id) == 1


def test_b_no_second_admission_within_the_keep_window_unless_kept(conn: Connection) -> None:
    c = centres(conn, 2)
    for x in c:
        set_free(conn, x.id, {"0": 1})
    mum = parent(conn, "m@example.kr")
    kid = child(conn, mum)
    _admitted_at(conn, c, mum, kid)
    day = NOW + timedelta(days=1)  # inside the keep window
    second = wl.offer_next(conn, facility_id=c[1].id, age_class=0, actor_user_id=None, now=day)["offer"]
    with pytest.raises(Conflict, match="admitted"):
        wl.accept(conn, parent_user_id=mum, offer_id=second["id"], now=day)
    assert _statuses(conn, kid["id"]) == {c[0].id: "admitted", c[1].id: "offered"}
    assert (_free(conn, c[0].id), _free(conn, c[1].id)) == (0, 1)
    # Kept, the entry is a transfer: accepting moves the child, and the first place is free again.
    wl.keep_entries(conn, parent_user_id=mum, entry_public_id=second["entry"])
    wl.accept(conn, parent_user_id=mum, offer_id=second["id"], now=day)
    statuses = _statuses(conn, kid["id"])
    assert statuses[c[1].id] == "admitted" and statuses[c[0].id] != "admitted"
    assert (_free(conn, c[0].id), _free(conn, c[1].id)) == (1, 0)


def test_c_expire_lapses_an_offered_entry_past_its_lapse_date(conn: Connection) -> None:
    c = centres(conn, 2)
    for x in c:
        set_free(conn, x.id, {"0": 1})
    mum = parent(conn, "m@example.kr")
    kid = child(conn, mum)
    _admitted_at(conn, c, mum, kid)
    # An offer at the second centre late in the keep window runs past the entry's lapse date.
    late = NOW + timedelta(days=RULES.keep_other_entries_days - 1)
    offer = wl.offer_next(conn, facility_id=c[1].id, age_class=0, actor_user_id=None, now=late)["offer"]
    assert offer is not None and offer["deadline"] > NOW + timedelta(days=RULES.keep_other_entries_days)
    after = NOW + timedelta(days=RULES.keep_other_entries_days, hours=1)
    assert after < offer["deadline"]
    assert wl.expire_offers(conn, now=after)["entries_lapsed"] == 1
    assert _statuses(conn, kid["id"]) == {c[0].id: "admitted", c[1].id: "lapsed"}
    assert conn.execute(text("SELECT status FROM waitlist_offers WHERE id = :o"),
                        {"o": offer["id"]}).scalar_one() != "open"
    assert wl.free_places(conn, c[1].id, 0) == 1


def test_d_a_correction_does_not_revive_an_entry_past_its_lapse_date(conn: Connection) -> None:
    """Found by the stateful test: after the expiry job lapsed an entry, an administrator's correction back to
    ``waiting`` made it active again past its lapse date (the next run of the job would lapse it again, and
    meanwhile it held a rank). A correction to ``waiting`` is refused once the lapse date has passed."""
    c = centres(conn, 2)
    for x in c:
        set_free(conn, x.id, {"0": 1})
    mum, admin = parent(conn, "m@example.kr"), parent(conn, "admin@example.kr")
    kid = child(conn, mum)
    _admitted_at(conn, c, mum, kid)
    after = NOW + timedelta(days=RULES.keep_other_entries_days, hours=1)
    wl.expire_offers(conn, now=after)
    entry = conn.execute(text("SELECT public_id FROM waitlist_entries WHERE child_id = :c AND facility_id = :f"),
                         {"c": kid["id"], "f": c[1].id}).scalar_one()
    assert _statuses(conn, kid["id"])[c[1].id] == "lapsed"
    with pytest.raises(Conflict, match="lapse"):
        wl.correct(conn, entry_public_id=entry, status="waiting", reason="lapsed by mistake",
                   actor_user_id=admin, now=after + timedelta(hours=1))
    assert _statuses(conn, kid["id"])[c[1].id] == "lapsed"
