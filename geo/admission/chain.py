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
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from geo.admission.common import SEOUL, lock_centre, resolve_now, to_json

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


# --- the chain on the database -------------------------------------------------------------------------------


def append_event(conn: Connection, facility_id: int, event: dict[str, Any], *, now: datetime | None = None) -> ChainRow:
    """Append ``event`` (plus its time and a random nonce) to the centre's chain and move the day's head."""
    at = resolve_now(now)
    lock_centre(conn, facility_id)
    full = {**event, "at": at.isoformat(), "nonce": secrets.token_hex(16)}
    last = conn.execute(text("SELECT seq, hash FROM waitlist_chain WHERE facility_id = :f ORDER BY seq DESC LIMIT 1"),
                        {"f": facility_id}).first()
    seq = (last.seq if last else 0) + 1
    d = digest(full)
    h = link(last.hash if last else GENESIS, d)
    conn.execute(text("""INSERT INTO waitlist_chain (facility_id, seq, event, digest, hash, created_at)
                         VALUES (:f, :seq, CAST(:event AS jsonb), :d, :h, :at)"""),
                 {"f": facility_id, "seq": seq, "event": to_json(full), "d": d, "h": h, "at": at})
    conn.execute(text("""INSERT INTO waitlist_chain_heads (facility_id, day, seq, hash) VALUES (:f, :day, :seq, :h)
                         ON CONFLICT (facility_id, day) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash"""),
                 {"f": facility_id, "day": at.astimezone(SEOUL).date(), "seq": seq, "h": h})
    return ChainRow(seq=seq, event=full, digest=d, hash=h)


def chain_rows(conn: Connection, facility_id: int) -> list[ChainRow]:
    """The centre's chain in sequence order."""
    rows = conn.execute(text("SELECT seq, event, digest, hash FROM waitlist_chain WHERE facility_id = :f "
                             "ORDER BY seq"), {"f": facility_id}).all()
    return [ChainRow(seq=r.seq, event=r.event, digest=r.digest, hash=r.hash) for r in rows]


def daily_heads(conn: Connection, facility_id: int) -> list[dict[str, Any]]:
    """The published head of each day (Korean date), oldest first."""
    rows = conn.execute(text("SELECT day, seq, hash FROM waitlist_chain_heads WHERE facility_id = :f ORDER BY day"),
                        {"f": facility_id}).mappings().all()
    return [dict(r) for r in rows]


def verify_centre(conn: Connection, facility_id: int) -> list[ChainProblem]:
    """Every problem of a centre's chain (edited, removed or re-linked rows by ``seq``) and of its daily heads."""
    rows = chain_rows(conn, facility_id)
    problems = verify_chain(rows)
    by_seq = {r.seq: r for r in rows}
    for head in daily_heads(conn, facility_id):
        row = by_seq.get(head["seq"])
        if row is None or row.hash != head["hash"]:
            problems.append(ChainProblem(head["seq"], f"published head of {head['day']} does not match the chain"))
    return problems


def centres_with_chains(conn: Connection) -> list[Any]:
    """``id, code`` of every centre that has a chain."""
    return list(conn.execute(text("SELECT DISTINCT f.id, f.code FROM waitlist_chain c JOIN facilities f "
                                  "ON f.id = c.facility_id ORDER BY f.code")).all())


def inclusion_proofs(conn: Connection, *, parent_user_id: int) -> list[dict[str, Any]]:
    """Inclusion proofs of every chain event about the parent's own entries, up to each centre's latest head."""
    rows = conn.execute(text("""
        SELECT DISTINCT c.facility_id, c.seq, f.code FROM waitlist_chain c
        JOIN waitlist_entries e ON e.facility_id = c.facility_id AND c.event->>'entry' = e.public_id
        JOIN children ch ON ch.id = e.child_id
        JOIN facilities f ON f.id = c.facility_id
        WHERE ch.parent_user_id = :p ORDER BY f.code, c.seq
    """), {"p": parent_user_id}).all()
    chains: dict[int, list[ChainRow]] = {}
    out = []
    for r in rows:
        chain = chains.setdefault(r.facility_id, chain_rows(conn, r.facility_id))
        proof = inclusion_proof(chain, seq=r.seq)
        out.append({"centre": r.code, **proof.as_dict()})
    return out
