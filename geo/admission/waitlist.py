"""The admission waitlist on the database: children and claims, applications, ranks, offers, renewal and the
per-centre hash chain. Every function takes a connection first and writes inside the caller's transaction.

Concurrency: writes to one centre's queue, offers and chain are serialised by a transaction-level advisory lock on
the centre (``_lock_centre``), so two staff cannot hand out the same free place twice, and an offer is answered
once (``SELECT ... FOR UPDATE`` on the offer). Unique partial indexes back
the rules "one active entry per child and centre" and "one live offer per child".

The chain holds no names or birth dates: entries and children appear by random public ids, every event carries a
random nonce.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from geo.admission.chain import GENESIS, ChainProblem, ChainRow, digest, inclusion_proof, link, verify_chain
from geo.admission.matching import deferred_acceptance
from geo.admission.ranking import RankedEntry, explain_changes, rank
from geo.admission.rules import Evidence, Priority, childcare_year, rules_for
from geo.domain import is_operating
from geo.errors import Conflict, Forbidden, InvalidQuery, NotFound

SEOUL = ZoneInfo("Asia/Seoul")
ACTIVE = ("waiting", "offered")
LOCK_NAMESPACE = 7010  # first key of the advisory lock of a centre's waitlist (second key: facility id)


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise InvalidQuery("times must carry a time zone", param="now")
    return now


def _new_id() -> str:
    return secrets.token_hex(8)


def _lock_centre(conn: Connection, facility_id: int) -> None:
    conn.execute(text("SELECT pg_advisory_xact_lock(:ns, :id)"), {"ns": LOCK_NAMESPACE, "id": facility_id})


# --- the chain -----------------------------------------------------------------------------------------------


def append_event(conn: Connection, facility_id: int, event: dict[str, Any], *, now: datetime | None = None) -> ChainRow:
    """Append ``event`` (plus its time and a random nonce) to the centre's chain and move the day's head."""
    at = _now(now)
    _lock_centre(conn, facility_id)
    full = {**event, "at": at.isoformat(), "nonce": secrets.token_hex(16)}
    last = conn.execute(text("SELECT seq, hash FROM waitlist_chain WHERE facility_id = :f ORDER BY seq DESC LIMIT 1"),
                        {"f": facility_id}).first()
    seq = (last.seq if last else 0) + 1
    d = digest(full)
    h = link(last.hash if last else GENESIS, d)
    conn.execute(text("""INSERT INTO waitlist_chain (facility_id, seq, event, digest, hash, created_at)
                         VALUES (:f, :seq, CAST(:event AS jsonb), :d, :h, :at)"""),
                 {"f": facility_id, "seq": seq, "event": _json(full), "d": d, "h": h, "at": at})
    conn.execute(text("""INSERT INTO waitlist_chain_heads (facility_id, day, seq, hash) VALUES (:f, :day, :seq, :h)
                         ON CONFLICT (facility_id, day) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash"""),
                 {"f": facility_id, "day": at.astimezone(SEOUL).date(), "seq": seq, "h": h})
    return ChainRow(seq=seq, event=full, digest=d, hash=h)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


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


def facility_by_code(conn: Connection, code: str) -> Any:
    """``id, code, district_code, status`` of a centre; ``NotFound`` otherwise."""
    row = conn.execute(text("SELECT id, code, district_code, status FROM facilities WHERE code = :c"),
                       {"c": code}).first()
    if row is None:
        raise NotFound(f"no centre with code {code!r}", param="code", value=code)
    return row


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


# --- children and claims -------------------------------------------------------------------------------------


def _verified_parent(conn: Connection, user_id: int) -> None:
    row = conn.execute(text("SELECT role, verified_at FROM users WHERE id = :u"), {"u": user_id}).first()
    if row is None or row.role != "parent":
        raise Forbidden("only a parent account registers children and applies", action="apply_waitlist")
    if row.verified_at is None:
        raise Forbidden("verify your identity (본인인증) before registering a child or applying",
                        action="apply_waitlist", reason="identity_not_verified")


def register_child(conn: Connection, *, parent_user_id: int, name: str, birth_date: date,
                   claims: Sequence[str] = (), enrolled: bool = False, now: datetime | None = None) -> dict[str, Any]:
    """Register a child of a verified parent with claimed priority categories (evidence ``claimed``)."""
    at = _now(now)
    _verified_parent(conn, parent_user_id)
    if not name.strip():
        raise InvalidQuery("the child's name is empty", param="name")
    if birth_date > at.astimezone(SEOUL).date():
        raise InvalidQuery("birth date in the future", param="birth_date", value=birth_date.isoformat())
    rules = rules_for(childcare_year(at.astimezone(SEOUL).date()))
    unknown = [c for c in claims if c not in rules.categories]
    if unknown:
        raise InvalidQuery(f"unknown priority categories {unknown}", param="claims", value=unknown)
    child_id = conn.execute(text("""INSERT INTO children (public_id, parent_user_id, name, birth_date, enrolled)
                                    VALUES (:pid, :p, :n, :b, :e) RETURNING id"""),
                            {"pid": _new_id(), "p": parent_user_id, "n": name.strip(), "b": birth_date,
                             "e": enrolled}).scalar_one()
    for code in dict.fromkeys(claims):
        conn.execute(text("INSERT INTO claims (child_id, category) VALUES (:c, :cat)"), {"c": child_id, "cat": code})
    return child_view(conn, child_id)


def child_view(conn: Connection, child_id: int) -> dict[str, Any]:
    """A child with its claims (for its parent and its centres' staff)."""
    child = conn.execute(text("SELECT id, public_id, parent_user_id, name, birth_date, enrolled FROM children "
                              "WHERE id = :c"), {"c": child_id}).mappings().one()
    claims = conn.execute(text("SELECT category, evidence, verified_at FROM claims WHERE child_id = :c "
                               "ORDER BY category"), {"c": child_id}).mappings().all()
    return {**dict(child), "claims": [dict(c) for c in claims]}


def _child_of(conn: Connection, child_id: int, parent_user_id: int, *, lock: bool = False) -> Any:
    sql = "SELECT id, public_id, parent_user_id, birth_date, enrolled FROM children WHERE id = :c"
    row = conn.execute(text(sql + " FOR UPDATE" if lock else sql), {"c": child_id}).first()
    if row is None or row.parent_user_id != parent_user_id:
        raise NotFound(f"no child {child_id} of yours", param="child_id", value=child_id)
    return row


def set_evidence(conn: Connection, *, facility_id: int, child_public_id: str, category: str, evidence: Evidence | str,
                 actor_user_id: int | None, now: datetime | None = None) -> dict[str, Any]:
    """Record the checked state of a claim (staff of a centre the child applies to, or a linked record), log it on
    the chains of the child's centres and re-rank their queues."""
    at = _now(now)
    state = Evidence(evidence)
    child = conn.execute(text("""SELECT ch.id FROM children ch WHERE ch.public_id = :pid AND EXISTS (
            SELECT 1 FROM waitlist_entries e WHERE e.child_id = ch.id AND e.facility_id = :f
            AND e.status IN ('waiting', 'offered'))"""), {"pid": child_public_id, "f": facility_id}).first()
    if child is None:
        raise NotFound(f"no child {child_public_id} on this centre's waitlist", param="child", value=child_public_id)
    updated = conn.execute(text("""UPDATE claims SET evidence = :ev, verified_by = :u, verified_at = :at
                                   WHERE child_id = :c AND category = :cat RETURNING id"""),
                           {"ev": state.value, "u": actor_user_id, "at": at, "c": child.id, "cat": category}).first()
    if updated is None:
        raise NotFound(f"no claim {category!r} for child {child_public_id}", param="category", value=category)
    for q in _active_queues_of_child(conn, child.id):
        append_event(conn, q.facility_id, {"type": "verify", "child": child_public_id, "category": category,
                                           "evidence": state.value}, now=at)
        _record_ranks(conn, q.facility_id, q.year, q.age_class, now=at)
    return child_view(conn, child.id)


def _active_queues_of_child(conn: Connection, child_id: int) -> list[Any]:
    return list(conn.execute(text("""SELECT DISTINCT facility_id, year, age_class FROM waitlist_entries
                                     WHERE child_id = :c AND status IN ('waiting', 'offered')
                                     ORDER BY facility_id"""), {"c": child_id}).all())


# --- queues and ranks ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueEntry:
    """An entry of a queue with what ranking needs and what offers need."""

    ranked: RankedEntry
    entry_id: int
    child_id: int
    child_public_id: str
    status: str
    unverified: tuple[str, ...]  # counting categories still only claimed


def queue(conn: Connection, facility_id: int, *, year: int, age_class: int,
          statuses: Sequence[str] = ACTIVE) -> list[QueueEntry]:
    """The ranked queue of a centre's age class in a 보육연도 (rank 1 first), computed from the year's rules."""
    return queues(conn, [(facility_id, year, age_class)], statuses=statuses)[(facility_id, year, age_class)]


QueueKey = tuple[int, int, int]  # facility id, 보육연도, age class


def queues(conn: Connection, keys: Sequence[QueueKey], *,
           statuses: Sequence[str] = ACTIVE) -> dict[QueueKey, list[QueueEntry]]:
    """The ranked queues of several (centre, year, age class) at once: one query, not one per queue (a parent's
    rank check reads all the queues of their entries)."""
    wanted = list(dict.fromkeys(keys))
    rows = conn.execute(text("""
        SELECT e.facility_id, e.year, e.age_class, e.id, e.public_id, e.child_id, ch.public_id AS child_pid,
               e.applied_at, e.status,
               COALESCE(array_agg(c.category) FILTER (WHERE c.id IS NOT NULL), '{}') AS cats,
               COALESCE(array_agg(c.evidence) FILTER (WHERE c.id IS NOT NULL), '{}') AS evs
        FROM unnest(CAST(:f AS int[]), CAST(:y AS int[]), CAST(:a AS int[])) AS k(facility_id, year, age_class)
        JOIN waitlist_entries e ON e.facility_id = k.facility_id AND e.year = k.year AND e.age_class = k.age_class
        JOIN children ch ON ch.id = e.child_id
        LEFT JOIN claims c ON c.child_id = e.child_id
        WHERE e.status = ANY(:st)
        GROUP BY e.id, ch.public_id
    """), {"f": [k[0] for k in wanted], "y": [k[1] for k in wanted], "a": [k[2] for k in wanted],
           "st": list(statuses)}).all()
    items: dict[QueueKey, dict[str, QueueEntry]] = {k: {} for k in wanted}
    for r in rows:
        claims = tuple(zip(r.cats, r.evs, strict=True))
        priority, unverified = _priority(r.year, claims)
        items[(r.facility_id, r.year, r.age_class)][r.public_id] = QueueEntry(
            RankedEntry(r.public_id, priority, r.applied_at), r.id, r.child_id, r.child_pid, r.status, unverified)
    return {k: [by_id[e.public_id] for e in rank((i.ranked for i in by_id.values()), year=k[1])]
            for k, by_id in items.items()}


@lru_cache(maxsize=4096)
def _priority(year: int, claims: tuple[tuple[str, str], ...]) -> tuple[Priority, tuple[str, ...]]:
    """The priority and the counting categories still only claimed, of one set of claims: few distinct sets
    recur across a whole queue, so they are computed once (an unknown code raises and is not cached)."""
    priority = rules_for(year).priority((c, Evidence(ev)) for c, ev in claims)
    return priority, tuple(sorted(c for c, ev in claims if Evidence(ev) is Evidence.claimed))


def _record_ranks(conn: Connection, facility_id: int, year: int, age_class: int, *, now: datetime) -> None:
    order = [q.ranked.public_id for q in queue(conn, facility_id, year=year, age_class=age_class)]
    append_event(conn, facility_id, {"type": "rank", "year": year, "age_class": age_class, "order": order}, now=now)


def public_queue(conn: Connection, code: str, *, year: int, age_class: int) -> list[dict[str, Any]]:
    """A centre's queue for everyone: rank, score band and application date only."""
    facility = facility_by_code(conn, code)
    return [{"rank": i, "band": q.ranked.priority.band, "applied_on": q.ranked.applied_at.astimezone(SEOUL).date(),
             "status": q.status}
            for i, q in enumerate(queue(conn, facility.id, year=year, age_class=age_class), start=1)]


def staff_queue(conn: Connection, facility_id: int, *, year: int, age_class: int) -> list[dict[str, Any]]:
    """A centre's queue for its staff: with the child's name, claims and what still needs checking."""
    out = []
    for i, q in enumerate(queue(conn, facility_id, year=year, age_class=age_class), start=1):
        name = conn.execute(text("SELECT name FROM children WHERE id = :c"), {"c": q.child_id}).scalar_one()
        out.append({"rank": i, "entry": q.ranked.public_id, "child": q.child_public_id, "name": name,
                    "tier": q.ranked.priority.tier, "points": q.ranked.priority.points,
                    "reasons": list(q.ranked.priority.reasons), "unverified": list(q.unverified),
                    "applied_at": q.ranked.applied_at, "status": q.status})
    return out


def _snapshot(entries: Sequence[QueueEntry]) -> list[dict[str, Any]]:
    return [{"id": q.ranked.public_id, "tier": q.ranked.priority.tier, "points": q.ranked.priority.points,
             "reasons": list(q.ranked.priority.reasons), "applied_at": q.ranked.applied_at.isoformat()}
            for q in entries]


def _from_snapshot(snapshot: Sequence[dict[str, Any]]) -> list[RankedEntry]:
    return [RankedEntry(s["id"], Priority(s["tier"], s["points"], tuple(s["reasons"])),
                        datetime.fromisoformat(s["applied_at"])) for s in snapshot]


def my_ranks(conn: Connection, *, parent_user_id: int, now: datetime | None = None) -> list[dict[str, Any]]:
    """Each active entry of the parent's children: rank, score and band now, and the reasons of every change since
    the parent last looked (the view is then remembered).

    Cost (a rank check is the most frequent request of 신학기): the entries with the views last seen, then all
    their queues in one query, then one upsert of the views that changed. A queue unchanged since the last look
    has nothing to explain and nothing to write, so repeated checks between two changes only read.
    """
    at = _now(now)
    entries = conn.execute(text("""
        SELECT e.id, e.public_id, e.facility_id, f.code, e.year, e.age_class, e.status, ch.id AS child_id, ch.name,
               v.snapshot AS seen
        FROM waitlist_entries e JOIN children ch ON ch.id = e.child_id JOIN facilities f ON f.id = e.facility_id
        LEFT JOIN waitlist_rank_views v ON v.entry_id = e.id
        WHERE ch.parent_user_id = :p AND e.status IN ('waiting', 'offered') ORDER BY ch.id, e.preference, e.id
    """), {"p": parent_user_id}).all()
    if not entries:
        return []
    current_of = queues(conn, [(e.facility_id, e.year, e.age_class) for e in entries])
    snapshot_of = {k: _snapshot(q) for k, q in current_of.items()}
    changed: list[tuple[int, str]] = []
    out = []
    for e in entries:
        key = (e.facility_id, e.year, e.age_class)
        current = current_of[key]
        position = next(i for i, q in enumerate(current) if q.entry_id == e.id)
        mine = current[position].ranked
        changes: list[str] = []
        if e.seen != snapshot_of[key]:
            if e.seen is not None:
                changes = explain_changes(_from_snapshot(e.seen), [q.ranked for q in current]).get(e.public_id, [])
            changed.append((e.id, _json(snapshot_of[key])))
        out.append({"entry": e.public_id, "child_id": e.child_id, "child_name": e.name, "centre": e.code,
                    "year": e.year, "age_class": e.age_class, "status": e.status, "rank": position + 1,
                    "of": len(current), "tier": mine.priority.tier, "points": mine.priority.points,
                    "band": mine.priority.band, "changes": changes})
    if changed:
        # One statement, rows in entry order (the order the per-entry upserts took their row locks in before).
        conn.execute(text("""INSERT INTO waitlist_rank_views (entry_id, seen_at, snapshot)
                             SELECT v.entry_id, :at, CAST(v.snapshot AS jsonb)
                             FROM unnest(CAST(:e AS int[]), CAST(:s AS text[])) WITH ORDINALITY
                                  AS v(entry_id, snapshot, n)
                             ORDER BY v.n
                             ON CONFLICT (entry_id) DO UPDATE SET seen_at = EXCLUDED.seen_at,
                                                                  snapshot = EXCLUDED.snapshot"""),
                     {"at": at, "e": [c[0] for c in changed], "s": [c[1] for c in changed]})
    return out


# --- applications --------------------------------------------------------------------------------------------


def age_class_in(year: int, birth_date: date) -> int:
    """The 반 age of a child in a 보육연도: born the year before = 0세반 (2026: born 2025 = 0세, 2020 = 5세)."""
    return year - birth_date.year - 1


def apply(conn: Connection, *, parent_user_id: int, child_id: int, facility_code: str,
          now: datetime | None = None) -> dict[str, Any]:
    """Apply for a child to a centre (the 반 of the current 보육연도); limits from the year's rules."""
    at = _now(now)
    _verified_parent(conn, parent_user_id)
    child = _child_of(conn, child_id, parent_user_id, lock=True)  # serialises one child's applications
    facility = facility_by_code(conn, facility_code)
    if not is_operating(facility.status):
        raise Conflict(f"centre {facility_code} is not operating", param="code", value=facility_code)
    year = childcare_year(at.astimezone(SEOUL).date())
    rules = rules_for(year)
    age_class = age_class_in(year, child.birth_date)
    if not 0 <= age_class <= 5:
        raise InvalidQuery(f"a child born {child.birth_date} has no 0-5세 class in {year}", param="child_id",
                           value=child_id)
    active = conn.execute(text("SELECT facility_id FROM waitlist_entries WHERE child_id = :c "
                               "AND status IN ('waiting', 'offered')"), {"c": child.id}).scalars().all()
    limit = rules.max_applications_if_enrolled if child.enrolled else rules.max_applications
    if facility.id in active:
        raise Conflict(f"the child already has an active entry at {facility_code}", param="code")
    if len(active) >= limit:
        raise Conflict(f"at most {limit} active applications per child", limit=limit)
    _lock_centre(conn, facility.id)
    public_id = _new_id()
    entry_id = conn.execute(text("""
        INSERT INTO waitlist_entries (public_id, child_id, facility_id, year, age_class, preference, applied_at,
                                      status, status_at)
        VALUES (:pid, :c, :f, :y, :a, :pref, :at, 'waiting', :at) RETURNING id
    """), {"pid": public_id, "c": child.id, "f": facility.id, "y": year, "a": age_class, "pref": len(active) + 1,
           "at": at}).scalar_one()
    append_event(conn, facility.id, {"type": "apply", "entry": public_id, "child": child.public_id, "year": year,
                                     "age_class": age_class, "applied_at": at.isoformat()}, now=at)
    _record_ranks(conn, facility.id, year, age_class, now=at)
    return entry_view(conn, entry_id)


def entry_view(conn: Connection, entry_id: int) -> dict[str, Any]:
    """An entry as its parent sees it."""
    row = conn.execute(text("""SELECT e.public_id AS entry, f.code AS centre, e.child_id, e.year, e.age_class,
                                      e.preference, e.applied_at, e.status, e.lapse_at
                               FROM waitlist_entries e JOIN facilities f ON f.id = e.facility_id
                               WHERE e.id = :e"""), {"e": entry_id}).mappings().one()
    return dict(row)


def _own_entry(conn: Connection, entry_public_id: str, parent_user_id: int) -> Any:
    row = conn.execute(text("""SELECT e.id, e.public_id, e.facility_id, e.year, e.age_class, e.status, e.child_id
                               FROM waitlist_entries e JOIN children ch ON ch.id = e.child_id
                               WHERE e.public_id = :pid AND ch.parent_user_id = :p FOR UPDATE OF e"""),
                       {"pid": entry_public_id, "p": parent_user_id}).first()
    if row is None:
        raise NotFound(f"no entry {entry_public_id} of yours", param="entry", value=entry_public_id)
    return row


def _set_status(conn: Connection, entry: Any, status: str, *, at: datetime, event: dict[str, Any]) -> None:
    conn.execute(text("UPDATE waitlist_entries SET status = :s, status_at = :at WHERE id = :e"),
                 {"s": status, "at": at, "e": entry.id})
    append_event(conn, entry.facility_id, {**event, "entry": entry.public_id, "status": status}, now=at)
    _record_ranks(conn, entry.facility_id, entry.year, entry.age_class, now=at)


def withdraw(conn: Connection, *, parent_user_id: int, entry_public_id: str,
             now: datetime | None = None) -> dict[str, Any]:
    """The parent withdraws an active entry (an open offer on it is declined)."""
    at = _now(now)
    entry = _own_entry(conn, entry_public_id, parent_user_id)
    if entry.status not in ACTIVE:
        raise Conflict(f"entry {entry_public_id} is {entry.status}, not active", state=entry.status)
    conn.execute(text("UPDATE waitlist_offers SET status = 'declined', answered_at = :at "
                      "WHERE entry_id = :e AND status = 'open'"), {"e": entry.id, "at": at})
    _set_status(conn, entry, "withdrawn", at=at, event={"type": "withdraw"})
    return entry_view(conn, entry.id)


def keep_entries(conn: Connection, *, parent_user_id: int, entry_public_id: str) -> dict[str, Any]:
    """Keep an entry that would lapse after the child's admission elsewhere."""
    entry = _own_entry(conn, entry_public_id, parent_user_id)
    conn.execute(text("UPDATE waitlist_entries SET lapse_at = NULL WHERE id = :e"), {"e": entry.id})
    return entry_view(conn, entry.id)


def renew(conn: Connection, *, parent_user_id: int, entry_public_id: str,
          now: datetime | None = None) -> dict[str, Any]:
    """Renew a waiting entry for the next 보육연도 (its 반 age moves up by one); ranks keep the application time."""
    at = _now(now)
    entry = _own_entry(conn, entry_public_id, parent_user_id)
    target = childcare_year(at.astimezone(SEOUL).date()) + 1
    if entry.status != "waiting" or entry.year >= target:
        raise Conflict(f"entry {entry_public_id} cannot be renewed for {target}", state=entry.status)
    if entry.age_class + (target - entry.year) > 5:
        raise Conflict("the child is past the 5세 class next year", param="entry")
    conn.execute(text("UPDATE waitlist_entries SET year = :y, age_class = age_class + :d WHERE id = :e"),
                 {"y": target, "d": target - entry.year, "e": entry.id})
    append_event(conn, entry.facility_id, {"type": "renew", "entry": entry.public_id, "year": target}, now=at)
    _record_ranks(conn, entry.facility_id, target, entry.age_class + target - entry.year, now=at)
    _record_ranks(conn, entry.facility_id, entry.year, entry.age_class, now=at)
    return entry_view(conn, entry.id)


def drop_unrenewed(conn: Connection, *, year: int, now: datetime | None = None) -> int:
    """At the start of 보육연도 ``year``: waiting entries of earlier years not renewed are dropped, with a notice
    to the parent. Returns how many."""
    at = _now(now)
    rows = conn.execute(text("""SELECT e.id, e.public_id, e.facility_id, e.year, e.age_class, e.status, e.child_id,
                                       ch.parent_user_id, f.code
                                FROM waitlist_entries e JOIN children ch ON ch.id = e.child_id
                                JOIN facilities f ON f.id = e.facility_id
                                WHERE e.status = 'waiting' AND e.year < :y ORDER BY e.facility_id, e.id
                                FOR UPDATE OF e"""), {"y": year}).all()
    for r in rows:
        _set_status(conn, r, "dropped", at=at, event={"type": "drop_unrenewed", "year": year})
        _notice(conn, r.parent_user_id, r.id, "dropped",
                f"your entry at {r.code} was not renewed for {year} and has been dropped")
    return len(rows)


def _notice(conn: Connection, parent_user_id: int, entry_id: int | None, kind: str, message: str) -> None:
    conn.execute(text("INSERT INTO waitlist_notices (parent_user_id, entry_id, kind, message) "
                      "VALUES (:p, :e, :k, :m)"), {"p": parent_user_id, "e": entry_id, "k": kind, "m": message})


def notices(conn: Connection, *, parent_user_id: int) -> list[dict[str, Any]]:
    """The parent's notices, newest first."""
    rows = conn.execute(text("SELECT kind, message, created_at FROM waitlist_notices WHERE parent_user_id = :p "
                             "ORDER BY id DESC"), {"p": parent_user_id}).mappings().all()
    return [dict(r) for r in rows]


def correct(conn: Connection, *, entry_public_id: str, status: str, reason: str, actor_user_id: int,
            now: datetime | None = None) -> dict[str, Any]:
    """An administrator's correction of an entry's status, with its reason, logged on the chain."""
    at = _now(now)
    if status not in ("waiting", "withdrawn", "dropped", "lapsed"):
        raise InvalidQuery(f"a correction sets waiting, withdrawn, dropped or lapsed, not {status!r}", param="status")
    if not reason.strip():
        raise InvalidQuery("a correction needs a reason", param="reason")
    entry = conn.execute(text("SELECT id, public_id, facility_id, year, age_class, status, child_id "
                              "FROM waitlist_entries WHERE public_id = :pid FOR UPDATE"),
                         {"pid": entry_public_id}).first()
    if entry is None:
        raise NotFound(f"no entry {entry_public_id}", param="entry", value=entry_public_id)
    _set_status(conn, entry, status, at=at, event={"type": "correction", "reason": reason.strip(),
                                                   "by": actor_user_id, "was": entry.status})
    return entry_view(conn, entry.id)


# --- offers --------------------------------------------------------------------------------------------------


def free_places(conn: Connection, facility_id: int, age_class: int) -> int:
    """Free places of an age class (the centre's ``free_by_age``) minus its open offers."""
    row = conn.execute(text("SELECT free_by_age FROM facilities WHERE id = :f"), {"f": facility_id}).first()
    if row is None:
        raise NotFound(f"no centre {facility_id}")
    free = int((row.free_by_age or {}).get(str(age_class)) or 0)
    open_offers = conn.execute(text("SELECT count(*) FROM waitlist_offers WHERE facility_id = :f AND age_class = :a "
                                    "AND status = 'open'"), {"f": facility_id, "a": age_class}).scalar_one()
    return free - int(open_offers)


def offer_next(conn: Connection, *, facility_id: int, age_class: int, actor_user_id: int | None,
               now: datetime | None = None) -> dict[str, Any]:
    """Offer a free place of an age class to the first eligible waiting entry of the current 보육연도.

    An entry is skipped (with a reason) when its child holds a live offer elsewhere or when a category that
    counts for its rank is still only claimed. ``Conflict`` when there is no free place.
    """
    at = _now(now)
    year = childcare_year(at.astimezone(SEOUL).date())
    rules = rules_for(year)
    _lock_centre(conn, facility_id)  # serialises staff: the second sees the first one's open offer
    if free_places(conn, facility_id, age_class) <= 0:
        raise Conflict(f"no free place for age {age_class} (free places minus open offers)", param="age_class")
    skipped: list[dict[str, str]] = []
    for q in queue(conn, facility_id, year=year, age_class=age_class, statuses=("waiting",)):
        live = conn.execute(text("SELECT 1 FROM waitlist_offers WHERE child_id = :c AND status = 'open'"),
                            {"c": q.child_id}).first()
        if live is not None:
            skipped.append({"entry": q.ranked.public_id, "reason": "the child holds a live offer elsewhere"})
            continue
        if q.unverified and set(q.unverified) & set(q.ranked.priority.reasons):
            skipped.append({"entry": q.ranked.public_id,
                            "reason": f"priority claims not verified yet: {', '.join(q.unverified)}"})
            continue
        deadline = at + timedelta(days=rules.offer_days)
        try:
            # Another centre may offer this child a place at the same moment: the unique partial index on live
            # offers decides, and the loser moves on to its next entry.
            with conn.begin_nested():
                offer_id = conn.execute(text("""
                    INSERT INTO waitlist_offers (entry_id, child_id, facility_id, age_class, deadline, status,
                                                 offered_by, created_at)
                    VALUES (:e, :c, :f, :a, :d, 'open', :u, :at) RETURNING id
                """), {"e": q.entry_id, "c": q.child_id, "f": facility_id, "a": age_class, "d": deadline,
                       "u": actor_user_id, "at": at}).scalar_one()
        except IntegrityError:
            skipped.append({"entry": q.ranked.public_id, "reason": "the child holds a live offer elsewhere"})
            continue
        conn.execute(text("UPDATE waitlist_entries SET status = 'offered', status_at = :at WHERE id = :e"),
                     {"e": q.entry_id, "at": at})
        append_event(conn, facility_id, {"type": "offer", "entry": q.ranked.public_id, "offer": offer_id,
                                         "deadline": deadline.isoformat(),
                                         "skipped": [s["entry"] for s in skipped]}, now=at)
        parent = conn.execute(text("SELECT parent_user_id FROM children WHERE id = :c"),
                              {"c": q.child_id}).scalar_one()
        _notice(conn, parent, q.entry_id, "offer", f"a place is offered to you until {deadline.isoformat()}")
        return {"offer": offer_view(conn, offer_id), "skipped": skipped}
    return {"offer": None, "skipped": skipped}


def offer_view(conn: Connection, offer_id: int) -> dict[str, Any]:
    """An offer with its entry's public id and centre code."""
    row = conn.execute(text("""SELECT o.id, e.public_id AS entry, f.code AS centre, o.age_class, o.deadline,
                                      o.status, o.created_at, o.answered_at
                               FROM waitlist_offers o JOIN waitlist_entries e ON e.id = o.entry_id
                               JOIN facilities f ON f.id = o.facility_id WHERE o.id = :o"""),
                       {"o": offer_id}).mappings().one()
    return dict(row)


def _own_offer(conn: Connection, offer_id: int, parent_user_id: int) -> Any:
    row = conn.execute(text("""SELECT o.id, o.status, o.deadline, o.facility_id, o.age_class, o.entry_id,
                                      o.child_id
                               FROM waitlist_offers o JOIN children ch ON ch.id = o.child_id
                               WHERE o.id = :o AND ch.parent_user_id = :p FOR UPDATE OF o"""),
                       {"o": offer_id, "p": parent_user_id}).first()
    if row is None:
        raise NotFound(f"no offer {offer_id} of yours", param="offer_id", value=offer_id)
    if row.status != "open":
        raise Conflict(f"offer {offer_id} is already {row.status}", state=row.status)
    return row


def _entry(conn: Connection, entry_id: int) -> Any:
    return conn.execute(text("SELECT id, public_id, facility_id, year, age_class, status, child_id "
                             "FROM waitlist_entries WHERE id = :e FOR UPDATE"), {"e": entry_id}).one()


def accept(conn: Connection, *, parent_user_id: int, offer_id: int, now: datetime | None = None) -> dict[str, Any]:
    """Accept an open offer before its deadline: the child is admitted, the place taken, and the child's other
    entries lapse after ``keep_other_entries_days`` unless the parent keeps them."""
    at = _now(now)
    offer = _own_offer(conn, offer_id, parent_user_id)
    if at > offer.deadline:
        raise Conflict(f"offer {offer_id} expired at {offer.deadline.isoformat()}", state="expired")
    rules = rules_for(childcare_year(at.astimezone(SEOUL).date()))
    conn.execute(text("UPDATE waitlist_offers SET status = 'accepted', answered_at = :at WHERE id = :o"),
                 {"o": offer_id, "at": at})
    conn.execute(text("""UPDATE facilities SET free_by_age = jsonb_set(free_by_age, ARRAY[:a],
                             to_jsonb(GREATEST(COALESCE((free_by_age->>:a)::int, 0) - 1, 0)))
                         WHERE id = :f AND free_by_age IS NOT NULL"""),
                 {"a": str(offer.age_class), "f": offer.facility_id})
    conn.execute(text("UPDATE children SET enrolled = true WHERE id = :c"), {"c": offer.child_id})
    _set_status(conn, _entry(conn, offer.entry_id), "admitted", at=at, event={"type": "accept", "offer": offer_id})
    conn.execute(text("""UPDATE waitlist_entries SET lapse_at = :until WHERE child_id = :c AND id <> :e
                         AND status IN ('waiting', 'offered')"""),
                 {"until": at + timedelta(days=rules.keep_other_entries_days), "c": offer.child_id,
                  "e": offer.entry_id})
    return offer_view(conn, offer_id)


def decline(conn: Connection, *, parent_user_id: int, offer_id: int, now: datetime | None = None) -> dict[str, Any]:
    """Decline an open offer: the entry is withdrawn and the place goes to the next eligible entry."""
    at = _now(now)
    offer = _own_offer(conn, offer_id, parent_user_id)
    conn.execute(text("UPDATE waitlist_offers SET status = 'declined', answered_at = :at WHERE id = :o"),
                 {"o": offer_id, "at": at})
    _set_status(conn, _entry(conn, offer.entry_id), "withdrawn", at=at, event={"type": "decline", "offer": offer_id})
    _move_on(conn, offer.facility_id, offer.age_class, at=at)
    return offer_view(conn, offer_id)


def _move_on(conn: Connection, facility_id: int, age_class: int, *, at: datetime) -> None:
    try:
        offer_next(conn, facility_id=facility_id, age_class=age_class, actor_user_id=None, now=at)
    except Conflict:
        pass  # no free place left: nothing to move on to


def expire_offers(conn: Connection, *, now: datetime | None = None) -> dict[str, int]:
    """Open offers past their deadline expire (their entries lapse) and the places go to the next entries;
    entries past their ``lapse_at`` (the child admitted elsewhere, not kept) lapse."""
    at = _now(now)
    offers = conn.execute(text("SELECT id, entry_id, facility_id, age_class FROM waitlist_offers "
                               "WHERE status = 'open' AND deadline < :at ORDER BY id FOR UPDATE"), {"at": at}).all()
    for o in offers:
        conn.execute(text("UPDATE waitlist_offers SET status = 'expired', answered_at = :at WHERE id = :o"),
                     {"o": o.id, "at": at})
        _set_status(conn, _entry(conn, o.entry_id), "lapsed", at=at, event={"type": "offer_expired", "offer": o.id})
    for o in offers:
        _move_on(conn, o.facility_id, o.age_class, at=at)
    lapsing = conn.execute(text("SELECT id FROM waitlist_entries WHERE lapse_at IS NOT NULL AND lapse_at <= :at "
                                "AND status = 'waiting' ORDER BY id"), {"at": at}).scalars().all()
    for entry_id in lapsing:
        _set_status(conn, _entry(conn, entry_id), "lapsed", at=at, event={"type": "lapse_after_admission"})
    return {"offers_expired": len(offers), "entries_lapsed": len(lapsing)}


# --- the intake round ----------------------------------------------------------------------------------------


def intake_round(conn: Connection, *, year: int, now: datetime | None = None,
                 actor_user_id: int | None = None) -> dict[str, Any]:
    """The March round: every waiting entry of ``year`` and every free place at once, by deferred acceptance with
    one seat pool per centre and age class; each placed child gets one offer. Entries with unverified counting
    claims are not eligible."""
    at = _now(now)
    rules = rules_for(year)
    seats = conn.execute(text("""SELECT DISTINCT facility_id, age_class FROM waitlist_entries
                                 WHERE year = :y AND status = 'waiting' ORDER BY facility_id, age_class"""),
                         {"y": year}).all()
    capacities: dict[tuple[int, int], int] = {}
    priorities: dict[tuple[int, int], list[int]] = {}
    entry_of: dict[tuple[int, tuple[int, int]], QueueEntry] = {}
    for s in seats:
        seat = (s.facility_id, s.age_class)
        _lock_centre(conn, s.facility_id)
        capacities[seat] = max(free_places(conn, s.facility_id, s.age_class), 0)
        order = []
        for q in queue(conn, s.facility_id, year=year, age_class=s.age_class, statuses=("waiting",)):
            if q.unverified and set(q.unverified) & set(q.ranked.priority.reasons):
                continue
            order.append(q.child_id)
            entry_of[(q.child_id, seat)] = q
        priorities[seat] = order
    prefs_rows = conn.execute(text("""SELECT child_id, facility_id, age_class FROM waitlist_entries
                                      WHERE year = :y AND status = 'waiting'
                                      AND NOT EXISTS (SELECT 1 FROM waitlist_offers o WHERE o.child_id =
                                                      waitlist_entries.child_id AND o.status = 'open')
                                      ORDER BY child_id, preference, applied_at"""), {"y": year}).all()
    preferences: dict[int, list[tuple[int, int]]] = {}
    for r in prefs_rows:
        preferences.setdefault(r.child_id, []).append((r.facility_id, r.age_class))
    assignment = deferred_acceptance(preferences, capacities, priorities)
    offers = 0
    for child_id, assigned in sorted(assignment.items(), key=lambda kv: kv[0]):
        if assigned is None:
            continue
        seat = assigned
        q = entry_of[(child_id, seat)]
        deadline = at + timedelta(days=rules.offer_days)
        offer_id = conn.execute(text("""INSERT INTO waitlist_offers (entry_id, child_id, facility_id, age_class,
                                                                     deadline, status, offered_by, created_at)
                                        VALUES (:e, :c, :f, :a, :d, 'open', :u, :at) RETURNING id"""),
                                {"e": q.entry_id, "c": child_id, "f": seat[0], "a": seat[1], "d": deadline,
                                 "u": actor_user_id, "at": at}).scalar_one()
        conn.execute(text("UPDATE waitlist_entries SET status = 'offered', status_at = :at WHERE id = :e"),
                     {"e": q.entry_id, "at": at})
        append_event(conn, seat[0], {"type": "intake_offer", "entry": q.ranked.public_id, "offer": offer_id,
                                     "year": year, "deadline": deadline.isoformat()}, now=at)
        offers += 1
    return {"year": year, "children": len(preferences), "seats": sum(capacities.values()), "offers": offers,
            "unplaced": sum(1 for s in assignment.values() if s is None),
            "assignment": {child: seat for child, seat in assignment.items()}}
