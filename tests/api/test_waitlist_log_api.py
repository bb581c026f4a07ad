"""The public transparency log over HTTP: an application's signed receipt, the signed checkpoint as text, the
parent's own inclusion proofs checked against it, entries and consistency proofs that recompute the published
roots, and witness cosignatures accepted only from configured witnesses."""

from __future__ import annotations

import base64
from datetime import date
from pathlib import Path

from sqlalchemy import Connection, text

from api.deps import get_session, get_write_tx
from geo.admission import tlog, tlog_store
from geo.admission.rules import childcare_year
from geo.settings import Settings
from tests.accounts_util import make_cast
from tests.api.test_waitlist_api import _tx_session_on
from tests.dbutil import client_on
from tests.problem_util import problem as _problem


def test_receipt_checkpoint_proofs_and_cosignatures(settings: Settings, conn: Connection, tmp_path: Path) -> None:
    key = tmp_path / "log.key"
    tlog_store.write_key(key, "dolbom.test/waitlist")
    witness = tlog.Signer.generate("witness.example/w1", tlog.COSIGNATURE_V1)
    settings = settings.updated(DOLBOM_LOG_KEY_FILE=str(key), DOLBOM_LOG_ORIGIN="dolbom.test/waitlist",
                                DOLBOM_LOG_WITNESS_KEYS=witness.verifier.text())
    cast = make_cast(conn, settings)
    client = client_on(settings, conn)
    for dependency in (get_session, get_write_tx):
        client.app.dependency_overrides[dependency] = _tx_session_on(conn)  # type: ignore[attr-defined]
    h = cast.headers
    keys = client.get("/waitlist/log/keys").json()
    assert keys["origin"] == "dolbom.test/waitlist" and keys["witnesses"] == [witness.verifier.text()]
    verifiers = [tlog.parse_verifier(k) for k in keys["log"]]
    # The checkpoint before: earlier tests that committed to this database may have had it signed by their own
    # key (the log is not re-signed while its size stays), so only its size and root are read here.
    before = tlog.parse_checkpoint(tlog.split_note(client.get("/waitlist/log/checkpoint").text)[0])

    conn.execute(text("UPDATE users SET verified_at = now() WHERE id = :u"), {"u": cast.ids["parent"]})
    born = date(childcare_year(date.today()) - 1, 6, 1)
    kid = client.post("/waitlist/children", json={"name": "홍길순", "birth_date": born.isoformat()},
                      headers=h["parent"]).json()
    entry = client.post("/waitlist/entries", json={"child_id": kid["id"], "centre": cast.own.code},
                        headers=h["parent"])
    assert entry.status_code == 201, entry.text
    receipt = entry.json()["receipt"]
    assert f"entry {entry.json()['entry']}\n" in tlog.open_note(receipt["note"], verifiers)[0]

    answer = client.get("/waitlist/log/checkpoint")
    assert answer.headers["content-type"].startswith("text/plain")
    now, signed, _ = tlog.open_checkpoint(answer.text, verifiers, origin="dolbom.test/waitlist")
    assert now.size > before.size and signed == ["dolbom.test/waitlist"]
    # The parent's device checks its own events against the checkpoint.
    mine = client.get("/waitlist/log/mine", headers=h["parent"]).json()
    cp = tlog.open_checkpoint(mine["checkpoint"], verifiers)[0]
    assert mine["events"] and all(e["index"] is not None for e in mine["events"])
    for e in mine["events"]:
        leaf = tlog.leaf_hash(tlog.entry_bytes(e["centre"], e["seq"], e["event"]))
        assert tlog.verify_inclusion(leaf, e["index"], cp.size, [base64.b64decode(p) for p in e["proof"]],
                                     cp.root_hash)
    (ranked,) = [e for e in mine["events"] if e.get("rank_of")]
    assert ranked["event"]["type"] == "rank" and ranked["rank_of"] == entry.json()["entry"]
    rank_now = client.get("/waitlist/me", headers=h["parent"]).json()[0]["rank"]
    assert ranked["rank"] == ranked["event"]["order"].index(ranked["rank_of"]) + 1 == rank_now
    applied = next(e for e in mine["events"] if e["event"]["type"] == "apply")
    assert base64.b64encode(tlog.leaf_hash(tlog.entry_bytes(applied["centre"], applied["seq"],
                                                            applied["event"]))).decode() == receipt["leaf_hash"]
    # Entries and a consistency proof: the new root follows from the old one.
    new_entries = client.get("/waitlist/log/entries", params={"start": before.size, "end": now.size}).json()
    assert [x["index"] for x in new_entries] == list(range(before.size, now.size))
    proof = client.get("/waitlist/log/proof/consistency", params={"old": before.size, "new": now.size}).json()
    assert tlog.verify_consistency(before.size, now.size, before.root_hash, now.root_hash,
                                   [base64.b64decode(p) for p in proof["proof"]])
    _problem(client.get("/waitlist/log/entries", params={"start": 0, "end": 5000}), 422)
    _problem(client.get("/waitlist/log/proof/inclusion", params={"index": 0, "size": now.size + 10}), 404)
    history = client.get("/waitlist/log/checkpoints", params={"after": before.size - 1}).json()
    assert [c["size"] for c in history][:1] == [before.size] and history[-1]["size"] == now.size
    # Cosignatures: a configured witness's is stored and shown, a stranger's refused.
    body = tlog.split_note(answer.text)[0]
    stranger = tlog.Signer.generate("stranger.example/w", tlog.COSIGNATURE_V1)
    _problem(client.post("/waitlist/log/cosignatures",
                         json={"size": now.size, "cosignatures": [tlog.cosign(body, stranger, 1_800_000_000)]}), 422)
    line = tlog.cosign(body, witness, 1_800_000_000)
    stored = client.post("/waitlist/log/cosignatures", json={"size": now.size, "cosignatures": [line]})
    assert stored.status_code == 200, stored.text
    shown = client.get("/waitlist/log/checkpoint").text
    assert shown.endswith(line)
    assert [c.name for c in tlog.open_checkpoint(shown, [*verifiers, witness.verifier])[2]] == ["witness.example/w1"]
