"""A per-centre hash chain of waitlist events that anyone can verify and nobody can edit unseen.

Each event is written as canonical JSON (sorted keys, no whitespace, UTF-8) holding no names or birth dates (only
pseudonymous ids and a random nonce, so a digest cannot be guessed). Its ``digest`` is SHA-256 of that text, and
the chain link is ``hash_i = SHA-256(hash_{i-1} || digest_i)`` (both as 32 raw bytes; the first ``hash_0`` is 64
zeros). The head of each day is published. A parent's inclusion proof is their own event, the hash before it and the
digests of the events after it up to a published head: it proves the event is in the chain without showing any
other event's content.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


def canonical(event: dict[str, Any]) -> str:
    """The canonical JSON text of an event."""
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(event: dict[str, Any]) -> str:
    """SHA-256 (hex) of the event's canonical JSON."""
    return hashlib.sha256(canonical(event).encode("utf-8")).hexdigest()


def link(previous_hash: str, event_digest: str) -> str:
    """The chain hash after an event: SHA-256 of the previous hash and the event digest (raw bytes)."""
    return hashlib.sha256(bytes.fromhex(previous_hash) + bytes.fromhex(event_digest)).hexdigest()


@dataclass(frozen=True)
class ChainRow:
    """A stored link: sequence number (1, 2, ...), the event, its digest and the hash after it."""

    seq: int
    event: dict[str, Any]
    digest: str
    hash: str


@dataclass(frozen=True)
class ChainProblem:
    """Where a chain fails to verify, and how."""

    seq: int
    reason: str


def verify_chain(rows: Sequence[ChainRow]) -> list[ChainProblem]:
    """Every problem of a chain in sequence order: gaps, an event whose content no longer matches its digest
    (edited), a hash that does not follow from the previous one (re-linked or removed). Empty when intact."""
    problems: list[ChainProblem] = []
    previous = GENESIS
    previous_seq = 0
    for row in rows:
        if row.seq != previous_seq + 1:
            problems.append(ChainProblem(row.seq, f"sequence gap: expected {previous_seq + 1}, found {row.seq}"))
        previous_seq = row.seq
        if digest(row.event) != row.digest:
            problems.append(ChainProblem(row.seq, "event content does not match its digest (edited)"))
        if link(previous, row.digest) != row.hash:
            problems.append(ChainProblem(row.seq, "hash does not follow from the previous link"))
        previous = row.hash
    return problems


@dataclass(frozen=True)
class InclusionProof:
    """Proof that ``event`` is link ``seq`` of a chain whose head (after ``head_seq``) is ``head_hash``."""

    seq: int
    previous_hash: str
    event: dict[str, Any]
    later_digests: tuple[str, ...]
    head_seq: int
    head_hash: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"seq": self.seq, "previous_hash": self.previous_hash, "event": self.event,
                "later_digests": list(self.later_digests), "head_seq": self.head_seq, "head_hash": self.head_hash}


def inclusion_proof(rows: Sequence[ChainRow], *, seq: int, head_seq: int | None = None) -> InclusionProof:
    """The proof for link ``seq`` up to ``head_seq`` (default: the last row)."""
    by_seq = {row.seq: row for row in rows}
    head = head_seq if head_seq is not None else max(by_seq)
    if seq not in by_seq or head not in by_seq or head < seq:
        raise KeyError(f"no link {seq} before head {head}")
    previous = by_seq[seq - 1].hash if seq > 1 else GENESIS
    later = tuple(by_seq[s].digest for s in range(seq + 1, head + 1))
    return InclusionProof(seq=seq, previous_hash=previous, event=by_seq[seq].event, later_digests=later,
                          head_seq=head, head_hash=by_seq[head].hash)


def verify_inclusion(proof: InclusionProof, *, published_head: str | None = None) -> bool:
    """Whether the proof leads from its event to its head (and to ``published_head`` when given)."""
    current = link(proof.previous_hash, digest(proof.event))
    for later in proof.later_digests:
        current = link(current, later)
    return current == proof.head_hash and (published_head is None or current == published_head)


def build_chain(events: Iterable[dict[str, Any]]) -> list[ChainRow]:
    """Rows of a new chain of ``events`` (for tests and for rebuilding an expected chain)."""
    rows: list[ChainRow] = []
    previous = GENESIS
    for seq, event in enumerate(events, start=1):
        d = digest(event)
        previous = link(previous, d)
        rows.append(ChainRow(seq=seq, event=event, digest=d, hash=previous))
    return rows
