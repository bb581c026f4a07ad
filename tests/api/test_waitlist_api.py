"""The waitlist over HTTP: a verified parent applies and sees their rank and proofs, the public sees the queue
anonymised, staff of the centre check claims and offer places, every other role gets a 403 problem."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from api.deps import get_session, get_write_tx
from geo.admission.chain import InclusionProof, verify_inclusion
from geo.admission.replay import commitment
from geo.admission.rules import childcare_year
from geo.settings import Settings
from tests.accounts_util import make_cast
from tests.dbutil import client_on
from tests.problem_util import problem as _problem


def _tx_session_on(connection: Connection) -> Callable[[], Iterator[Session]]:
    """The write session of a request inside the test's transaction (committed as a savepoint)."""

    def tx_session() -> Iterator[Session]:
        with Session(bind=connection, join_transaction_mode="create_savepoint") as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    return tx_session


def test_waitlist_roles_flow_and_privacy(settings: Settings, conn: Connection) -> None:
    cast = make_cast(conn, settings)
    client = client_on(settings, conn)
    # Read and write sessions both commit their savepoints: the read session (authentication) opens the outer
    # savepoint, and rolling it back would undo the write session's inner one.
    for dependency in (get_session, get_write_tx):
        client.app.dependency_overrides[dependency] = _tx_session_on(conn)  # type: ignore[attr-defined]
    h = cast.headers
    today = date.today()
    born = date(childcare_year(today) - 1, 6, 1)  # 0세반 this year
    child_body = {"name": "홍길순", "birth_date": born.isoformat(), "claims": ["dual_income"]}
    # Not logged in: 401; unverified parent: 403; staff, officer: 403.
    _problem(client.post("/waitlist/children", json=child_body), 401)
    assert "본인인증" in _problem(client.post("/waitlist/children", json=child_body, headers=h["parent"]),
                                  403)["detail"]
    for role in ("staff", "officer"):
        _problem(client.post("/waitlist/children", json=child_body, headers=h[role]), 403)
    conn.execute(text("UPDATE users SET verified_at = now() WHERE id = :u"), {"u": cast.ids["parent"]})
    kid = client.post("/waitlist/children", json=child_body, headers=h["parent"])
    assert kid.status_code == 201, kid.text
    # 형제자매 재원 names the centre where the sibling is enrolled (it counts only there): without it, a 422.
    sibling = {**child_body, "name": "홍둘째", "claims": ["sibling_enrolled"]}
    assert _problem(client.post("/waitlist/children", json=sibling, headers=h["parent"]), 422)["param"] \
        == "claim_details"
    named = client.post("/waitlist/children", json={**sibling, "claim_details": {"sibling_enrolled": cast.own.code}},
                        headers=h["parent"])
    assert named.status_code == 201, named.text
    assert [(c["category"], c["detail"]) for c in named.json()["claims"]] == [("sibling_enrolled", cast.own.code)]
    entry = client.post("/waitlist/entries", json={"child_id": kid.json()["id"], "centre": cast.own.code},
                        headers=h["parent"])
    assert entry.status_code == 201, entry.text
    _problem(client.post("/waitlist/entries", json={"child_id": kid.json()["id"], "centre": cast.own.code},
                         headers=h["parent"]), 409)
    mine = client.get("/waitlist/me", headers=h["parent"]).json()
    assert [(m["centre"], m["rank"], m["band"]) for m in mine] == [(cast.own.code, 1, "1순위 200-299")]
    # The wait forecast: no history at this centre yet, so it rests on similar centres or the fallback prior.
    forecast = mine[0]["forecast"]
    assert [lv["probability"] for lv in forecast["levels"]] == [0.5, 0.9]
    assert forecast["basis"]["offers_seen"] == 0 and set(forecast["words"]) == {"ko", "en", "zh", "vi"}
    # The public queue has no names or ids.
    public = client.get(f"/waitlist/centres/{cast.own.code}/queue", params={"age_class": 0})
    assert public.status_code == 200 and "홍길순" not in public.text and entry.json()["entry"] not in public.text
    # Names: the centre's staff and its 구's officer; not the parent, not another centre's staff.
    for role, status in (("staff", 200), ("officer", 200), ("admin", 200), ("parent", 403)):
        resp = client.get(f"/waitlist/centres/{cast.own.code}/applicants", params={"age_class": 0},
                          headers=h[role])
        assert resp.status_code == status, (role, resp.text)
        if status == 200:
            assert resp.json()[0]["name"] == "홍길순"
    _problem(client.get(f"/waitlist/centres/{cast.other.code}/applicants", params={"age_class": 0},
                        headers=h["staff"]), 403)
    # Offers: staff of the centre only; the unverified 맞벌이 claim is skipped with its reason, then verified.
    conn.execute(text("UPDATE facilities SET free_by_age = '{\"0\": 1}' WHERE id = :f"), {"f": cast.own.id})
    for role in ("parent", "officer"):
        _problem(client.post(f"/waitlist/centres/{cast.own.code}/offers", json={"age_class": 0}, headers=h[role]),
                 403)
    skipped = client.post(f"/waitlist/centres/{cast.own.code}/offers", json={"age_class": 0}, headers=h["staff"])
    assert skipped.status_code == 201 and skipped.json()["offer"] is None
    assert "not verified" in skipped.json()["skipped"][0]["reason"]
    evidence = {"child": kid.json()["public_id"], "category": "dual_income", "evidence": "verified_centre"}
    _problem(client.post(f"/waitlist/centres/{cast.own.code}/claims", json=evidence, headers=h["officer"]), 403)
    assert client.post(f"/waitlist/centres/{cast.own.code}/claims", json=evidence,
                       headers=h["staff"]).status_code == 200
    made = client.post(f"/waitlist/centres/{cast.own.code}/offers", json={"age_class": 0}, headers=h["staff"])
    offer_id = made.json()["offer"]["id"]
    _problem(client.post(f"/waitlist/offers/{offer_id}/accept", headers=h["staff"]), 403)
    assert client.post(f"/waitlist/offers/{offer_id}/accept", headers=h["parent"]).json()["status"] == "accepted"
    _problem(client.post(f"/waitlist/offers/{offer_id}/accept", headers=h["parent"]), 409)
    # Corrections are a city admin's.
    fix = {"status": "waiting", "reason": "accepted by mistake"}
    _problem(client.post(f"/waitlist/entries/{entry.json()['entry']}/correction", json=fix, headers=h["staff"]), 403)
    # What the admission transition table does not allow is a 409 problem naming the state.
    refused = _problem(client.post(f"/waitlist/entries/{entry.json()['entry']}/withdraw", headers=h["parent"]), 409)
    assert refused["title"] == "Not allowed in this state" and "admitted: withdraw" in refused["detail"]
    # Proofs verify against the chain's published head; the chain endpoint verifies.
    chain = client.get(f"/waitlist/centres/{cast.own.code}/chain").json()
    assert chain["ok"] and "홍길순" not in str(chain) and born.isoformat() not in str(chain)
    proofs = client.get("/waitlist/me/proofs", headers=h["parent"]).json()
    assert proofs and all(p["event"]["entry"] == entry.json()["entry"] for p in proofs)
    head = chain["heads"][-1]["hash"]
    assert all(verify_inclusion(InclusionProof(p["seq"], p["previous_hash"], p["event"],
                                               tuple(p["later_digests"]), p["head_seq"], p["head_hash"]),
                                published_head=head) for p in proofs)
    # The parent opens their own commitments (and sees their child's pseudonym at the centre); nobody else can.
    mine = client.get("/waitlist/me/openings", headers=h["parent"]).json()
    assert [o["entry"] for o in mine] == [entry.json()["entry"]]
    logged = {c["commitment"] for r in chain["links"] if r["event"].get("entry") == mine[0]["entry"]
              for c in r["event"].get("claims", ())}
    assert [c["category"] for c in mine[0]["claims"]] == ["dual_income"]
    assert all(commitment(c["salt"], c["category"]) == c["commitment"] in logged for c in mine[0]["claims"])
    _problem(client.get("/waitlist/me/openings"), 401)
    # Tampering shows in the endpoint, naming the row.
    conn.execute(text("UPDATE waitlist_chain SET event = event || '{\"entry\": \"forged\"}' "
                      "WHERE facility_id = :f AND seq = 1"), {"f": cast.own.id})
    chain = client.get(f"/waitlist/centres/{cast.own.code}/chain").json()
    assert not chain["ok"] and [p["seq"] for p in chain["problems"]] == [1]
    _problem(client.get("/waitlist/centres/NOPE/queue", params={"age_class": 0}), 404)
