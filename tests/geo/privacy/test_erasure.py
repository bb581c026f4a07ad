"""Deleting an account whose child holds an open offer: the offer is declined and the place moves on to the next
family's child (not to another child of the same account); everything is audited; the chain only grows."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Connection, text

from geo.admission import waitlist as wl
from geo.admission.rules import childcare_year
from geo.auth.accounts import create_user
from geo.errors import Forbidden
from geo.privacy.erasure import delete_account
from geo.settings import Settings
from tests.accounts_util import PASSWORD, pick_centres

BORN = date(childcare_year(date.today()) - 1, 6, 1)  # 0세반 this year


def _parent(conn: Connection, email: str) -> int:
    user_id = create_user(conn, email=email, password=PASSWORD, role="parent")
    conn.execute(text("UPDATE users SET verified_at = now() WHERE id = :u"), {"u": user_id})
    return user_id


def test_open_offer_moves_on_to_the_next_family(settings: Settings, conn: Connection) -> None:
    centre, _ = pick_centres(conn)
    leaving, staying = _parent(conn, "leaving@example.kr"), _parent(conn, "staying@example.kr")
    entries = {}
    # The leaving family applies first (with two children), the staying family after.
    for parent, name in ((leaving, "첫째"), (leaving, "둘째"), (staying, "이웃")):
        child = wl.register_child(conn, parent_user_id=parent, name=name, birth_date=BORN)
        entries[name] = wl.apply(conn, parent_user_id=parent, child_id=child["id"], facility_code=centre.code)["entry"]
    conn.execute(text("UPDATE facilities SET free_by_age = '{\"0\": 1}' WHERE id = :f"), {"f": centre.id})
    offer = wl.offer_next(conn, facility_id=centre.id, age_class=0, actor_user_id=None)
    status = {r.public_id: r.status for r in conn.execute(text("SELECT public_id, status FROM waitlist_entries"))}
    assert (status[entries["첫째"]], status[entries["둘째"]], status[entries["이웃"]]) == (
        "offered", "waiting", "waiting"), offer
    before = wl.chain_rows(conn, centre.id)

    with pytest.raises(Forbidden):
        delete_account(conn, Settings(DATABASE_URL=None), user_id=leaving, password="wrong password")
    out = delete_account(conn, Settings(DATABASE_URL=None), user_id=leaving, password=PASSWORD)

    assert (out["entries_withdrawn"], out["children_deleted"]) == (2, 2)
    open_offers = conn.execute(text("SELECT ch.parent_user_id FROM waitlist_offers o JOIN children ch "
                                    "ON ch.id = o.child_id WHERE o.status = 'open'")).scalars().all()
    assert open_offers == [staying]
    withdrawn = conn.execute(text("SELECT entity_id, before->>'status' FROM audit_log "
                                  "WHERE action = 'waitlist.withdraw' ORDER BY entity_id")).all()
    assert sorted(map(tuple, withdrawn)) == sorted([(entries["첫째"], "offered"), (entries["둘째"], "waiting")])
    after = wl.chain_rows(conn, centre.id)
    assert after[:len(before)] == before and wl.verify_centre(conn, centre.id) == []
    assert {r.event.get("entry") for r in after[len(before):]} >= {entries["첫째"], entries["둘째"]}
