"""The transparency log on the real PostGIS: chain rows queued by the trigger and integrated in order, roots and
proofs from stored hashes equal to a recomputation from the served entries, signed checkpoints that extend each
other, receipts naming the logged leaf, witness cosignatures accepted only from configured witnesses, and an
edited chain row showing against its logged leaf."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from geo.admission import tlog, tlog_store
from geo.admission import waitlist as wl
from geo.errors import InvalidQuery, NotFound
from geo.settings import Settings
from tests.geo.admission.waitutil import NOW, centres, child, parent


@pytest.fixture()
def log_settings(settings: Settings, tmp_path: Path) -> Settings:
    key = tmp_path / "log.key"
    tlog_store.write_key(key, "dolbom.test/waitlist")
    return settings.updated(DOLBOM_LOG_KEY_FILE=str(key), DOLBOM_LOG_ORIGIN="dolbom.test/waitlist")


def _apply_some(conn: Connection, n: int, *, tag: str) -> list[dict]:
    cs = centres(conn, 2)
    out = []
    for i in range(n):
        mum = parent(conn, f"{tag}{i}@example.kr")
        kid = child(conn, mum)
        out.append(wl.apply(conn, parent_user_id=mum, child_id=kid["id"], facility_code=cs[i % 2].code,
                            now=NOW + timedelta(minutes=i)))
    return out


def _leaves(entries: list[dict]) -> list[bytes]:
    return [tlog.leaf_hash(tlog.entry_bytes(e["centre"], e["seq"], e["event"])) for e in entries]


def test_checkpoints_proofs_and_receipts(conn: Connection, log_settings: Settings) -> None:
    verifiers = [tlog.parse_verifier(k) for k in tlog_store.verifier_keys(log_settings)]
    first = tlog_store.publish(conn, log_settings)
    assert first is not None
    applied = _apply_some(conn, 5, tag="a")
    assert conn.execute(text("SELECT count(*) FROM waitlist_log_pending")).scalar_one() > 0  # queued by the trigger
    second = tlog_store.publish(conn, log_settings)
    assert second is not None and second.size > first.size
    assert conn.execute(text("SELECT count(*) FROM waitlist_log_pending")).scalar_one() == 0
    cp, signed, _ = tlog.open_checkpoint(second.note, verifiers, origin="dolbom.test/waitlist")
    assert (cp.size, cp.root_hash, signed) == (second.size, second.root_hash, ["dolbom.test/waitlist"])
    # The root from stored hashes is the definition's root over the entries as served.
    served = tlog_store.entries(conn, start=0, end=second.size)
    assert [e["index"] for e in served] == list(range(second.size))
    leaves = _leaves(served)
    assert tlog.root_of(leaves) == second.root_hash
    for index in (0, first.size, second.size - 1):
        proof = tlog_store.inclusion_proof(conn, index=index, size=second.size)
        assert tlog.verify_inclusion(leaves[index], index, second.size, proof, second.root_hash)
    proof = tlog_store.consistency_proof(conn, old_size=first.size, new_size=second.size)
    assert tlog.verify_consistency(first.size, second.size, first.root_hash, second.root_hash, proof)
    # Publishing without a change signs nothing new; history is in order of size.
    assert tlog_store.publish(conn, log_settings) == second
    history = tlog_store.checkpoints(conn, after=first.size - 1)
    assert [h.size for h in history] == [first.size, second.size]
    # A receipt names the leaf the log holds for the application.
    receipt = tlog_store.receipt(conn, log_settings, entry=applied[0]["entry"])
    text_, signed_by, _ = tlog.open_note(receipt["note"], verifiers)
    assert f"entry {applied[0]['entry']}\n" in text_ and signed_by == ["dolbom.test/waitlist"]
    at = next(e["index"] for e in served if e["centre"] == receipt["centre"] and e["seq"] == receipt["seq"])
    assert base64.b64encode(leaves[at]).decode() == receipt["leaf_hash"]
    with pytest.raises(NotFound):
        tlog_store.inclusion_proof(conn, index=0, size=second.size + 1)
    with pytest.raises(InvalidQuery):
        tlog_store.consistency_proof(conn, old_size=second.size, new_size=first.size)


def test_cosignatures_only_from_configured_witnesses(conn: Connection, log_settings: Settings) -> None:
    _apply_some(conn, 1, tag="w")
    witness = tlog.Signer.generate("witness.example/w1", tlog.COSIGNATURE_V1)
    stranger = tlog.Signer.generate("stranger.example/w", tlog.COSIGNATURE_V1)
    with_witness = log_settings.updated(DOLBOM_LOG_WITNESS_KEYS=witness.verifier.text())
    published = tlog_store.publish(conn, with_witness)
    assert published is not None
    body = tlog.split_note(published.note)[0]
    with pytest.raises(InvalidQuery, match="configured witness"):
        tlog_store.add_cosignature(conn, with_witness, size=published.size,
                                   lines=[tlog.cosign(body, stranger, 1_800_000_000)])
    forged = tlog.cosign(body.replace(str(published.size), str(published.size + 1), 1), witness, 1_800_000_000)
    with pytest.raises(InvalidQuery, match="does not verify"):
        tlog_store.add_cosignature(conn, with_witness, size=published.size, lines=[forged])
    line = tlog.cosign(body, witness, 1_800_000_000)
    shown = tlog_store.add_cosignature(conn, with_witness, size=published.size, lines=[line])
    assert shown.note.endswith(line)
    verifiers = [*(s.verifier for s in tlog_store.signers(with_witness)), witness.verifier]
    assert [c.name for c in tlog.open_checkpoint(shown.note, verifiers)[2]] == ["witness.example/w1"]
    assert tlog_store.latest_checkpoint(conn) == shown


def test_an_edited_chain_row_no_longer_matches_its_leaf(conn: Connection, log_settings: Settings) -> None:
    applied = _apply_some(conn, 2, tag="t")
    published = tlog_store.publish(conn, log_settings)
    assert published is not None
    facility = wl.facility_by_code(conn, applied[0]["centre"])
    conn.execute(text("""UPDATE waitlist_chain SET event = jsonb_set(event, '{applied_at}', '"2026-01-01T00:00:00+00:00"')
                         WHERE facility_id = :f AND event->>'entry' = :e AND event->>'type' = 'apply'"""),
                 {"f": facility.id, "e": applied[0]["entry"]})
    served = tlog_store.entries(conn, start=0, end=published.size)
    assert tlog.root_of(_leaves(served)) != published.root_hash
    logged = {r.idx: bytes(r.leaf_hash) for r in conn.execute(text("SELECT idx, leaf_hash FROM waitlist_log_leaves"))}
    changed = [e for e, leaf in zip(served, _leaves(served), strict=True) if logged[e["index"]] != leaf]
    assert [(e["centre"], e["event"]["entry"]) for e in changed] == [(applied[0]["centre"], applied[0]["entry"])]


def test_key_rotation_signs_with_both_keys(conn: Connection, log_settings: Settings, tmp_path: Path) -> None:
    new_key = tmp_path / "new.key"
    tlog_store.write_key(new_key, "dolbom.test/waitlist")
    rotating = log_settings.updated(DOLBOM_LOG_EXTRA_KEY_FILES=str(new_key))
    old_v, new_v = (tlog.parse_verifier(k) for k in tlog_store.verifier_keys(rotating))
    _apply_some(conn, 1, tag="r")
    published = tlog_store.publish(conn, rotating)
    assert published is not None
    for pinned in ([old_v], [new_v]):  # watchers pinning either key accept the checkpoint during the rotation
        assert tlog.open_checkpoint(published.note, pinned)[1] == ["dolbom.test/waitlist"]
    wrong_name = tmp_path / "other.key"
    tlog_store.write_key(wrong_name, "someone.else/log")
    with pytest.raises(InvalidQuery, match="not the log's origin"):
        tlog_store.signers(log_settings.updated(DOLBOM_LOG_EXTRA_KEY_FILES=str(wrong_name)))



def _signers_in_process(data_dir: str, start: object, out: object) -> None:
    start.wait()  # type: ignore[attr-defined]
    try:
        key = tlog_store.signers(Settings(DATABASE_URL=None, DOLBOM_DATA_DIR=data_dir))[0].verifier.text()
    except Exception as exc:  # reported to the test
        key = f"failed: {exc!r}"
    out.put(key)  # type: ignore[attr-defined]


def test_processes_making_the_development_key_at_once_share_one(tmp_path: Path) -> None:
    """Several processes (API workers, pytest-xdist workers) reading the development key of a fresh data folder
    at the same moment: one makes it, every one of them reads that whole key (none fails on the file another
    is writing)."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    for attempt in range(5):
        data_dir = tmp_path / f"data{attempt}"
        start, out = ctx.Barrier(6), ctx.Queue()
        procs = [ctx.Process(target=_signers_in_process, args=(str(data_dir), start, out)) for _ in range(6)]
        for proc in procs:
            proc.start()
        keys = [out.get(timeout=60) for _ in procs]
        for proc in procs:
            proc.join(60)
        assert len(set(keys)) == 1 and not keys[0].startswith("failed"), keys
