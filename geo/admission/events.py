"""What the waitlist log says about families, and how it stays private: per-centre child pseudonyms, salted
commitments to priority categories, the entry's priority as logged, and the rule table a centre's log uses.

The private key (``waitlist_secrets``, one row drawn by migration 0017) never leaves the database. Under it:

- a child's pseudonym at a centre is HMAC-SHA256(key, ``child|<child public id>|<facility id>``) truncated to 128
  bits: different at every centre, and without the key nobody can tell that two centres' pseudonyms are one child;
- the salt of a claim at a centre is HMAC-SHA256(key, ``salt|<child public id>|<facility id>|<category>``), and the
  log holds only the commitment SHA-256(salt || category) (``replay.commitment``): the parent is given the
  opening of their own (``openings``), nobody else can tell the category, and no commitment repeats across
  centres or children.

Pseudonyms are also kept in ``waitlist_pseudonyms`` (private) so that rebuilding maps a centre's log back to
children without trying every child; ``verify`` checks that map against the key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, text

from geo.admission.chain import append_event
from geo.admission.replay import commitment
from geo.admission.rules import RULES_DIR, Centre, Evidence, Rules, available_years, rules_for


def secret(conn: Connection) -> bytes:
    """The private key of the log (``RuntimeError`` if the migration did not draw one)."""
    key = conn.execute(text("SELECT secret FROM waitlist_secrets WHERE id = 1")).scalar_one_or_none()
    if key is None:
        raise RuntimeError("no waitlist secret: run the migrations (0017_waitlist_events)")
    return bytes(key)


def child_pseudonym(key: bytes, child_public_id: str, facility_id: int) -> str:
    """A child's pseudonym in one centre's log (32 hex digits)."""
    return hmac.new(key, f"child|{child_public_id}|{facility_id}".encode(), hashlib.sha256).hexdigest()[:32]


def claim_salt(key: bytes, child_public_id: str, facility_id: int, category: str) -> str:
    """The salt (32 bytes, hex) of a child's claim of ``category`` at one centre."""
    return hmac.new(key, f"salt|{child_public_id}|{facility_id}|{category}".encode(), hashlib.sha256).hexdigest()


@lru_cache(maxsize=16)
def rules_sha256(version: int) -> str:
    """SHA-256 of the published rules file of ``version`` (the file's year)."""
    return hashlib.sha256((RULES_DIR / f"{version}.json").read_bytes()).hexdigest()


def rules_event(year: int) -> dict[str, Any]:
    """The ``rules`` event of a 보육연도: the version (file year) in force and the file's SHA-256."""
    version = rules_for(year).year
    if version not in available_years():  # pragma: no cover - rules_for only returns files that exist
        raise RuntimeError(f"no rules file {version}")
    return {"type": "rules", "year": year, "version": version, "sha256": rules_sha256(version)}


def ensure_rules_event(conn: Connection, facility_id: int, year: int, *, at: datetime) -> None:
    """Log the rule table of ``year`` on the centre's chain unless it already is (call under the centre's lock)."""
    logged = conn.execute(text("""SELECT 1 FROM waitlist_chain WHERE facility_id = :f AND event->>'type' = 'rules'
                                  AND event->>'year' = :y LIMIT 1"""), {"f": facility_id, "y": str(year)}).first()
    if logged is None:
        append_event(conn, facility_id, rules_event(year), now=at)


def priority_fields(key: bytes, rules: Rules, centre: Centre, facility_id: int, child_public_id: str,
                    claims: Iterable[tuple[str, str, str | None]]) -> dict[str, Any]:
    """``tier``, ``points`` and the committed ``claims`` of a child's entry at a centre: one commitment (with the
    evidence state) per claim whose category may count at this centre, sorted by commitment."""
    claims = list(claims)
    priority = rules.priority(((c, Evidence(ev), d) for c, ev, d in claims), centre=centre)
    committed = sorted(({"commitment": commitment(claim_salt(key, child_public_id, facility_id, c), c),
                         "evidence": ev} for c, ev, d in claims if rules.categories[c].counts_at(centre, d)),
                       key=lambda x: x["commitment"])
    return {"tier": priority.tier, "points": priority.points, "claims": committed}


def child_claims(conn: Connection, child_id: int) -> list[tuple[str, str, str | None]]:
    """A child's claims: (category, evidence, detail)."""
    return [(r.category, r.evidence, r.detail) for r in conn.execute(
        text("SELECT category, evidence, detail FROM claims WHERE child_id = :c ORDER BY category"),
        {"c": child_id})]


def centre_of(conn: Connection, facility_id: int) -> Centre:
    """What the rules need to know of a centre."""
    row = conn.execute(text("SELECT code, facility_type FROM facilities WHERE id = :f"), {"f": facility_id}).one()
    return Centre(row.code, row.facility_type)


def entry_priority(conn: Connection, key: bytes, *, facility_id: int, child_id: int, child_public_id: str,
                   year: int) -> dict[str, Any]:
    """The priority fields of a child's entry at a centre, from the live claims."""
    return priority_fields(key, rules_for(year), centre_of(conn, facility_id), facility_id, child_public_id,
                           child_claims(conn, child_id))


def register_pseudonym(conn: Connection, key: bytes, *, facility_id: int, child_id: int,
                       child_public_id: str) -> str:
    """The child's pseudonym at the centre, remembered in the private map."""
    pseudonym = child_pseudonym(key, child_public_id, facility_id)
    conn.execute(text("""INSERT INTO waitlist_pseudonyms (facility_id, pseudonym, child_id) VALUES (:f, :p, :c)
                         ON CONFLICT DO NOTHING"""), {"f": facility_id, "p": pseudonym, "c": child_id})
    return pseudonym


def log_priority(conn: Connection, key: bytes, *, facility_id: int, entry_public_id: str, child_id: int,
                 child_public_id: str, year: int, at: datetime) -> None:
    """Append a ``priority`` event with the entry's priority from the live claims (after a claim's evidence
    changed)."""
    fields = entry_priority(conn, key, facility_id=facility_id, child_id=child_id, child_public_id=child_public_id,
                            year=year)
    append_event(conn, facility_id, {"type": "priority", "entry": entry_public_id, **fields}, now=at)


def openings(conn: Connection, *, parent_user_id: int) -> list[dict[str, Any]]:
    """For each entry of the parent's children: the centre, the child's pseudonym there and the opening (category,
    salt, commitment) of each committed claim, so the parent can check their own events (and only they can)."""
    key = secret(conn)
    rows = conn.execute(text("""
        SELECT e.public_id, e.facility_id, e.year, f.code, f.facility_type, ch.id AS child_id,
               ch.public_id AS child_pid
        FROM waitlist_entries e JOIN children ch ON ch.id = e.child_id JOIN facilities f ON f.id = e.facility_id
        WHERE ch.parent_user_id = :p ORDER BY f.code, e.id"""), {"p": parent_user_id}).all()
    out = []
    for r in rows:
        rules = rules_for(r.year)
        centre = Centre(r.code, r.facility_type)
        claims = [{"category": c, "salt": (salt := claim_salt(key, r.child_pid, r.facility_id, c)),
                   "commitment": commitment(salt, c)}
                  for c, _ev, d in child_claims(conn, r.child_id) if rules.categories[c].counts_at(centre, d)]
        out.append({"entry": r.public_id, "centre": r.code,
                    "child": child_pseudonym(key, r.child_pid, r.facility_id), "claims": claims})
    return out
