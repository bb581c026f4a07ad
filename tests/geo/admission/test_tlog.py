"""The transparency log's pure parts against published vectors and an independent brute force: RFC 6962 roots
(certificate-transparency / transparency-dev test data), inclusion and consistency proofs of every pair of sizes,
and C2SP signed notes (golang.org/x/mod/sumdb/note's PeterNeumann vector), checkpoints and cosignatures."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from geo.admission import tlog

# RFC 6962 reference leaves and the root of each size 0..8 (certificate-transparency-go / transparency-dev/merkle).
CT_LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = [  # (index, size, path)
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]
CT_CONSISTENCY = [  # (old, new, proof)
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]

# golang.org/x/mod/sumdb/note's example (note_test.go, package documentation).
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_NOTE = GO_TEXT + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"


def _leaves() -> list[bytes]:
    return [tlog.leaf_hash(bytes.fromhex(x)) for x in CT_LEAVES]


# An independent implementation: the recursive definitions of RFC 6962 §2.1 over plain lists, no stored hashes.
def _mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = 1
    while k * 2 < len(d):
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(d[:k]) + _mth(d[k:])).digest()


def _path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = 1
    while k * 2 < len(d):
        k *= 2
    return _path(m, d[:k]) + [_mth(d[k:])] if m < k else _path(m - k, d[k:]) + [_mth(d[:k])]


def _subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [_mth(d)]
    k = 1
    while k * 2 < len(d):
        k *= 2
    return _subproof(m, d[:k], b) + [_mth(d[k:])] if m <= k else _subproof(m - k, d[k:], False) + [_mth(d[:k])]


def test_roots_match_rfc6962_vectors() -> None:
    leaves = _leaves()
    for n in range(9):
        assert tlog.root_of(leaves[:n]).hex() == CT_ROOTS[n]
        assert tlog.tree_hash(n, tlog.memory_reader(leaves)).hex() == CT_ROOTS[n]


def test_proofs_match_published_vectors() -> None:
    leaves = _leaves()
    read = tlog.memory_reader(leaves)
    for index, size, path in CT_INCLUSION:
        assert [p.hex() for p in tlog.inclusion_proof(index, size, read)] == path
        assert tlog.verify_inclusion(leaves[index], index, size, [bytes.fromhex(p) for p in path],
                                     bytes.fromhex(CT_ROOTS[size]))
    for old, new, proof in CT_CONSISTENCY:
        assert [p.hex() for p in tlog.consistency_proof(old, new, read)] == proof
        raw = [bytes.fromhex(p) for p in proof]
        assert tlog.verify_consistency(old, new, bytes.fromhex(CT_ROOTS[old]), bytes.fromhex(CT_ROOTS[new]), raw)
        assert not tlog.verify_consistency(old, new, bytes.fromhex(CT_ROOTS[old - 1]),
                                           bytes.fromhex(CT_ROOTS[new]), raw)


def test_every_proof_of_every_size_against_brute_force() -> None:
    leaves = [tlog.leaf_hash(bytes([i, i * 7 % 256])) for i in range(40)]
    read = tlog.memory_reader(leaves)
    for n in range(1, len(leaves) + 1):
        root = _mth(leaves[:n])
        assert tlog.tree_hash(n, read) == root
        for i in range(n):
            proof = tlog.inclusion_proof(i, n, read)
            assert proof == _path(i, leaves[:n])
            assert tlog.verify_inclusion(leaves[i], i, n, proof, root)
            assert n == 1 or not tlog.verify_inclusion(leaves[i], i, n, proof, _mth(leaves[:n - 1]))
            assert not tlog.verify_inclusion(leaves[(i + 1) % n], i, n, proof, root) or n == 1
            if i + 1 < n:
                assert not tlog.verify_inclusion(leaves[i], i + 1, n, proof, root)
        for m in range(1, n + 1):
            proof = tlog.consistency_proof(m, n, read)
            assert proof == ([] if m == n else _subproof(m, leaves[:n], True))
            assert tlog.verify_consistency(m, n, _mth(leaves[:m]), root, proof)
            if m < n:
                assert not tlog.verify_consistency(m, n, _mth(leaves[:m]), _mth(leaves[:n - 1]), proof)
                assert not tlog.verify_consistency(m, n, leaves[0] if m > 1 else leaves[1], root, proof)
                assert not tlog.verify_consistency(m, n, _mth(leaves[:m]), root, proof[:-1])


@given(st.lists(st.binary(max_size=8), min_size=1, max_size=70))
def test_stored_hashes_build_the_same_tree(data: list[bytes]) -> None:
    """Appending through ``stored_hashes_for`` (what the database keeps) gives the definition's root."""
    stored: dict[tuple[int, int], bytes] = {}
    for i, d in enumerate(data):
        assert {c for c in tlog.appended_sibling_coordinates(i)} <= set(stored)
        for level, index, h in tlog.stored_hashes_for(i, tlog.leaf_hash(d), lambda lv, ix: stored[(lv, ix)]):
            stored[(level, index)] = h
        size = i + 1

        def read(level: int, index: int) -> bytes:
            return stored[(level, index)]

        assert tlog.tree_hash(size, read) == _mth([tlog.leaf_hash(x) for x in data[:size]])
        coords = tlog.coordinates(lambda r, s=size: tlog.tree_hash(s, r))  # type: ignore[misc]
        assert len(coords) <= 2 * size.bit_length()


def test_go_note_vector_signs_and_verifies() -> None:
    signer = tlog.parse_signer(GO_SKEY)
    assert signer.verifier.text() == GO_VKEY
    assert signer.text() == GO_SKEY
    assert tlog.sign_note(GO_TEXT, [signer]) == GO_NOTE  # Ed25519 is deterministic: byte for byte
    text, signed, cosigned = tlog.open_note(GO_NOTE, [tlog.parse_verifier(GO_VKEY)])
    assert (text, signed, cosigned) == (GO_TEXT, ["PeterNeumann"], [])
    with pytest.raises(tlog.NoteError, match="does not verify"):
        tlog.open_note(GO_NOTE.replace("cryptography", "cryptographY"), [tlog.parse_verifier(GO_VKEY)])


def test_wrong_or_unknown_key_is_refused() -> None:
    other = tlog.Signer.generate("PeterNeumann")
    with pytest.raises(tlog.NoteError, match="no signature of a known log key"):
        tlog.open_note(GO_NOTE, [other.verifier])  # same name, other key: another key ID, so ignored
    forged = tlog.Verifier("PeterNeumann", tlog.ED25519, other.verifier.public_key)
    assert forged.key_id != tlog.parse_verifier(GO_VKEY).key_id
    with pytest.raises(tlog.NoteError):
        tlog.parse_verifier(GO_VKEY.replace("c74f20a3", "c74f20a4"))
    with pytest.raises(tlog.NoteError):
        tlog.parse_verifier("PeterNeumann+c74f20a3+AR")


def test_checkpoint_rotation_and_cosignature() -> None:
    old, new = tlog.Signer.generate("dolbom.test/log"), tlog.Signer.generate("dolbom.test/log")
    witness = tlog.Signer.generate("witness.example/w1", tlog.COSIGNATURE_V1)
    checkpoint = tlog.Checkpoint("dolbom.test/log", 8, bytes.fromhex(CT_ROOTS[8]))
    assert checkpoint.text() == f"dolbom.test/log\n8\n{base64.b64encode(bytes.fromhex(CT_ROOTS[8])).decode()}\n"
    note = tlog.sign_note(checkpoint.text(), [old, new])  # both keys sign during a rotation
    for verifiers in ([old.verifier], [new.verifier]):
        assert tlog.open_checkpoint(note, verifiers)[0] == checkpoint
    line = tlog.cosign(checkpoint.text(), witness, 1_700_000_000)
    cosigned = tlog.add_signatures(note, [line, line])
    assert cosigned.count(line) == 1
    cp, signed, cosigs = tlog.open_checkpoint(cosigned, [new.verifier, witness.verifier], origin="dolbom.test/log")
    assert (cp, signed) == (checkpoint, ["dolbom.test/log"])
    assert [(c.name, c.timestamp) for c in cosigs] == [("witness.example/w1", 1_700_000_000)]
    assert tlog.parse_verifier(witness.verifier.text()).sig_type == tlog.COSIGNATURE_V1
    other_text = tlog.Checkpoint("dolbom.test/log", 7, bytes.fromhex(CT_ROOTS[7])).text()
    stolen = tlog.add_signatures(tlog.sign_note(other_text, [new]), [line])  # a cosignature of another checkpoint
    with pytest.raises(tlog.NoteError, match="cosignature of witness.example/w1 does not verify"):
        tlog.open_checkpoint(stolen, [new.verifier, witness.verifier])
    with pytest.raises(tlog.NoteError, match="expected"):
        tlog.open_checkpoint(note, [new.verifier], origin="elsewhere")
