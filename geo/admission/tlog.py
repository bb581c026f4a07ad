"""The waitlist's transparency log, pure: an RFC 6962 / RFC 9162 Merkle tree with its inclusion and consistency
proofs, and C2SP signed notes (``signed-note``), checkpoints (``tlog-checkpoint``) and Ed25519 cosignatures
(``tlog-cosignature``, ``cosignature/v1``), so the transparency-log community's witnesses and tools read them.

No database and no web here: the watcher (``geo.watch``) and the browser module (api/static/tlog.js) check the
same things with this code's rules. Hashes are raw 32-byte ``bytes``.

- leaf hash ``SHA-256(0x00 || data)``, node hash ``SHA-256(0x01 || left || right)``, the tree hash of ``n`` leaves
  splits at the largest power of two below ``n`` (RFC 9162 §2.1.1);
- a tree is read through "stored hashes" (as golang.org/x/mod/sumdb/tlog): the hash of every full, aligned subtree
  ``(level, index)`` covering leaves ``[index * 2**level, (index + 1) * 2**level)``; the root and every proof of
  any size need only O(log n) of them (``*_coordinates`` name which, so a store reads them in one query).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

EMPTY_ROOT = hashlib.sha256(b"").digest()
#: The largest log size (and index) the API accepts: 2^40, a trillion entries, far beyond any city's waitlist
#: (Seoul's simulated intake writes about 230,000 events a year) and within PostgreSQL's bigint.
MAX_LOG_SIZE = 2**40
HashReader = Callable[[int, int], bytes]  # (level, index) -> the stored hash of that full subtree
Coordinate = tuple[int, int]


def entry_bytes(centre: str, seq: int, event: dict[str, object]) -> bytes:
    """The bytes of a log entry: canonical JSON (sorted keys, no whitespace, UTF-8) of the centre's code, the
    event's position on the centre's chain and the event itself (opaque here)."""
    return json.dumps({"centre": centre, "seq": seq, "event": event}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash of an entry's bytes."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """The tree hash of leaves given by their leaf hashes (RFC 9162 §2.1.1), straight from the definition."""
    if not leaf_hashes:
        return EMPTY_ROOT
    if len(leaf_hashes) == 1:
        return leaf_hashes[0]
    k = _split(len(leaf_hashes))
    return node_hash(root_of(leaf_hashes[:k]), root_of(leaf_hashes[k:]))


# --- stored hashes ---------------------------------------------------------------------------------------------


def stored_hashes_for(index: int, leaf: bytes, read: HashReader) -> list[tuple[int, int, bytes]]:
    """The stored hashes ``(level, index, hash)`` that appending leaf ``index`` (hash ``leaf``) creates: the leaf
    itself and every full subtree it completes (reading their left siblings through ``read``)."""
    out = [(0, index, leaf)]
    level, i, h = 0, index, leaf
    while i & 1:
        h = node_hash(read(level, i - 1), h)
        level, i = level + 1, i >> 1
        out.append((level, i, h))
    return out


def appended_sibling_coordinates(index: int) -> list[Coordinate]:
    """The stored hashes ``stored_hashes_for(index, ...)`` reads."""
    out, level, i = [], 0, index
    while i & 1:
        out.append((level, i - 1))
        level, i = level + 1, i >> 1
    return out


def _range_hash(start: int, end: int, read: HashReader) -> bytes:
    """The hash of leaves ``[start, end)`` where ``start`` is aligned to the subtree that holds the range."""
    n = end - start
    if n & (n - 1) == 0 and start % n == 0:
        return read(n.bit_length() - 1, start // n)
    k = _split(n)
    return node_hash(_range_hash(start, start + k, read), _range_hash(start + k, end, read))


def tree_hash(size: int, read: HashReader) -> bytes:
    """The root of the first ``size`` leaves from stored hashes."""
    return EMPTY_ROOT if size == 0 else _range_hash(0, size, read)


def inclusion_proof(index: int, size: int, read: HashReader) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 §2.1.3.1 from stored hashes."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")

    def path(m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = _split(n)
        if m < start + k:
            return [*path(m, start, start + k), _range_hash(start + k, end, read)]
        return [*path(m, start + k, end), _range_hash(start, start + k, read)]

    return path(index, 0, size)


def consistency_proof(old_size: int, new_size: int, read: HashReader) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]) of RFC 9162 §2.1.4.1 from stored hashes (empty when a size is 0 or both
    are equal)."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from {old_size} to {new_size}")
    if old_size in (0, new_size):
        return []

    def subproof(m: int, start: int, end: int, whole: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if whole else [_range_hash(start, end, read)]
        k = _split(n)
        if m <= k:
            return [*subproof(m, start, start + k, whole), _range_hash(start + k, end, read)]
        return [*subproof(m - k, start + k, end, False), _range_hash(start, start + k, read)]

    return subproof(old_size, 0, new_size, True)


def coordinates(compute: Callable[[HashReader], object]) -> list[Coordinate]:
    """The stored hashes a computation reads (which ones does not depend on their values): run it once on
    placeholders, so a store can fetch them all in one query before running it for real."""
    seen: list[Coordinate] = []

    def record(level: int, index: int) -> bytes:
        seen.append((level, index))
        return bytes(32)

    compute(record)
    return list(dict.fromkeys(seen))


def memory_reader(leaf_hashes: Sequence[bytes]) -> HashReader:
    """A ``HashReader`` over leaves held in memory (the watcher's copy, tests)."""
    levels: list[list[bytes]] = [list(leaf_hashes)]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])

    def read(level: int, index: int) -> bytes:
        return levels[level][index]

    return read


# --- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) -----------------------------------------------------------


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Whether ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree of ``size`` leaves with ``root``."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """Whether ``proof`` shows the tree ``(new_size, new_root)`` extends ``(old_size, old_root)``."""
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


# --- signed notes (c2sp.org/signed-note) ----------------------------------------------------------------------

ED25519 = 0x01  # signature type of a note signature
COSIGNATURE_V1 = 0x04  # signature type of an Ed25519 cosignature/v1 (c2sp.org/tlog-cosignature)
_NAME = re.compile(r"^[^\s+]+$")
_DASH = "\u2014 "


class NoteError(ValueError):
    """A note, key or checkpoint that is malformed, or whose signatures do not verify."""


def key_id(name: str, sig_type: int, public_key: bytes) -> bytes:
    """The 4-byte key ID: ``SHA-256(name || "\\n" || type || public key)[:4]``."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()[:4]


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class Verifier:
    """A verifier key: a name, a signature type (0x01 note, 0x04 cosignature) and an Ed25519 public key."""

    name: str
    sig_type: int
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        """The key ID a signature line starts with."""
        return key_id(self.name, self.sig_type, self.public_key)

    def text(self) -> str:
        """``<name>+<hex key ID>+<base64(type || public key)>``."""
        material = base64.b64encode(bytes([self.sig_type]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{material}"

    def check(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``message``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


def parse_verifier(vkey: str) -> Verifier:
    """A verifier key from its text form (a note key, type 0x01, or a cosignature key, type 0x04)."""
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3 or not _NAME.match(parts[0]) or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
        raise NoteError(f"malformed verifier key {vkey!r}")
    try:
        material = base64.b64decode(parts[2], validate=True)
    except binascii.Error:
        raise NoteError(f"malformed verifier key {vkey!r}") from None
    if len(material) != 33 or material[0] not in (ED25519, COSIGNATURE_V1):
        raise NoteError(f"verifier key {parts[0]!r} is not an Ed25519 note or cosignature/v1 key")
    verifier = Verifier(parts[0], material[0], material[1:])
    if verifier.key_id.hex() != parts[1]:
        raise NoteError(f"verifier key {parts[0]!r}: key ID does not match the key")
    return verifier


@dataclass(frozen=True)
class Signer:
    """A private signing key with its name (note signatures, type 0x01, or cosignatures, type 0x04)."""

    name: str
    private_key: Ed25519PrivateKey = field(repr=False)
    sig_type: int = ED25519

    @classmethod
    def generate(cls, name: str, sig_type: int = ED25519) -> Signer:
        """A new random key."""
        if not _NAME.match(name):
            raise NoteError(f"key name {name!r} must be non-empty, without spaces or '+'")
        return cls(name, Ed25519PrivateKey.generate(), sig_type)

    @property
    def verifier(self) -> Verifier:
        """The matching verifier key."""
        return Verifier(self.name, self.sig_type, _raw_public(self.private_key.public_key()))

    def text(self) -> str:
        """``PRIVATE+KEY+<name>+<hex key ID>+<base64(type || seed)>`` (golang.org/x/mod/sumdb/note's form)."""
        seed = self.private_key.private_bytes_raw()
        material = base64.b64encode(bytes([self.sig_type]) + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id.hex()}+{material}"

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature of ``message``."""
        return self.private_key.sign(message)


def parse_signer(skey: str) -> Signer:
    """A signer from its ``PRIVATE+KEY+...`` text form."""
    parts = skey.strip().split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"] or not _NAME.match(parts[2]):
        raise NoteError("malformed private key (expected PRIVATE+KEY+<name>+<id>+<key>)")
    try:
        material = base64.b64decode(parts[4], validate=True)
    except binascii.Error:
        raise NoteError("malformed private key") from None
    if len(material) != 33 or material[0] not in (ED25519, COSIGNATURE_V1):
        raise NoteError("private key is not an Ed25519 note or cosignature key")
    signer = Signer(parts[2], Ed25519PrivateKey.from_private_bytes(material[1:]), material[0])
    if signer.verifier.key_id.hex() != parts[3]:
        raise NoteError(f"private key {parts[2]!r}: key ID does not match the key")
    return signer


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a note: the key name, key ID and the signature bytes after the key ID."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        """``— <name> <base64(key ID || signature)>`` with its newline."""
        return f"{_DASH}{self.name} {base64.b64encode(self.key_id + self.signature).decode()}\n"


def _check_text(text: str) -> None:
    if not text.endswith("\n") or "\n\n" in text or any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("note text must be non-empty lines, each ending in a newline, without control characters")


def split_note(note: str) -> tuple[str, list[NoteSignature]]:
    """The text and signature lines of a signed note (not verified)."""
    cut = note.rfind("\n\n")
    if cut < 0 or not note.endswith("\n"):
        raise NoteError("malformed note: no blank line before its signatures")
    text, block = note[: cut + 1], note[cut + 2:]
    _check_text(text)
    signatures = []
    for line in block.splitlines():
        if not line.startswith(_DASH):
            raise NoteError(f"malformed signature line {line!r}")
        name, _, blob = line[len(_DASH):].partition(" ")
        try:
            raw = base64.b64decode(blob, validate=True)
        except binascii.Error:
            raise NoteError(f"malformed signature of {name!r}") from None
        if not _NAME.match(name) or len(raw) < 5:
            raise NoteError(f"malformed signature line {line!r}")
        signatures.append(NoteSignature(name, raw[:4], raw[4:]))
    if not signatures:
        raise NoteError("a note needs at least one signature")
    return text, signatures


def sign_note(text: str, signers: Iterable[Signer]) -> str:
    """The signed note of ``text`` with one signature line per signer (several during a key rotation)."""
    _check_text(text)
    lines = []
    for signer in signers:
        if signer.sig_type != ED25519:
            raise NoteError(f"{signer.name!r} is a cosignature key, not a note key")
        lines.append(NoteSignature(signer.name, signer.verifier.key_id, signer.sign(text.encode())).line())
    if not lines:
        raise NoteError("a note needs at least one signer")
    return text + "\n" + "".join(lines)


def add_signatures(note: str, lines: Iterable[str]) -> str:
    """``note`` with more signature lines (cosignatures) appended, each line once."""
    have = set(note.splitlines(keepends=True))
    out = note
    for line in lines:
        line = line if line.endswith("\n") else line + "\n"
        if line not in have:
            have.add(line)
            out += line
    return out


@dataclass(frozen=True)
class Cosignature:
    """A verified witness cosignature: the witness's key name and the time it signed (POSIX seconds)."""

    name: str
    timestamp: int
    line: str


def cosigned_message(text: str, timestamp: int) -> bytes:
    """What an Ed25519 cosignature/v1 signs: header line, time line, then the checkpoint text."""
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


def cosign(text: str, signer: Signer, timestamp: int) -> str:
    """A witness's cosignature line of a checkpoint text (for tests and for a witness of our own)."""
    if signer.sig_type != COSIGNATURE_V1:
        raise NoteError(f"{signer.name!r} is not a cosignature/v1 key")
    signature = struct.pack(">Q", timestamp) + signer.sign(cosigned_message(text, timestamp))
    return NoteSignature(signer.name, signer.verifier.key_id, signature).line()


def open_note(note: str, verifiers: Sequence[Verifier]) -> tuple[str, list[str], list[Cosignature]]:
    """Verify a signed note: its text, the names of the note keys whose signatures verify, and the verified
    cosignatures. Lines of unknown keys are ignored; a line of a known key that does not verify, or no verified
    note signature at all, raises ``NoteError``."""
    text, signatures = split_note(note)
    known = {(v.name, v.key_id): v for v in verifiers}
    signed: list[str] = []
    cosigned: list[Cosignature] = []
    for sig in signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            continue
        if verifier.sig_type == COSIGNATURE_V1:
            if len(sig.signature) != 72:
                raise NoteError(f"malformed cosignature of {sig.name}")
            (timestamp,) = struct.unpack(">Q", sig.signature[:8])
            if not verifier.check(cosigned_message(text, timestamp), sig.signature[8:]):
                raise NoteError(f"cosignature of {sig.name} does not verify")
            cosigned.append(Cosignature(sig.name, timestamp, sig.line()))
        elif verifier.check(text.encode(), sig.signature):
            signed.append(sig.name)
        else:
            raise NoteError(f"signature of {sig.name} does not verify")
    if not signed:
        raise NoteError("no signature of a known log key")
    return text, signed, cosigned


# --- checkpoints (c2sp.org/tlog-checkpoint) -------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint body: origin, tree size, root hash and optional extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        """The note text of the checkpoint."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode(), *self.extensions]
        return "".join(line + "\n" for line in lines)


def parse_checkpoint(text: str) -> Checkpoint:
    """A checkpoint from its note text."""
    _check_text(text)
    lines = text.splitlines()
    if len(lines) < 3 or not lines[0] or not re.fullmatch(r"0|[1-9][0-9]*", lines[1]):
        raise NoteError("malformed checkpoint: origin, decimal tree size and root hash expected")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except binascii.Error:
        raise NoteError("malformed checkpoint root hash") from None
    if len(root) != 32:
        raise NoteError("checkpoint root hash is not 32 bytes")
    return Checkpoint(lines[0], int(lines[1]), root, tuple(lines[3:]))


def open_checkpoint(note: str, verifiers: Sequence[Verifier], *,
                    origin: str | None = None) -> tuple[Checkpoint, list[str], list[Cosignature]]:
    """Verify a signed checkpoint: the checkpoint, the log keys that signed it and the verified cosignatures."""
    text, signed, cosigned = open_note(note, verifiers)
    checkpoint = parse_checkpoint(text)
    if origin is not None and checkpoint.origin != origin:
        raise NoteError(f"checkpoint of {checkpoint.origin!r}, expected {origin!r}")
    return checkpoint, signed, cosigned
