"""Queues and ranks: the ranked queue of a centre's age class in a 보육연도 (from the year's rules), the public and
the staff views of it, a parent's rank check with the reasons of every change, and the rank events of the chain."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, text

from geo.admission.chain import append_event
from geo.admission.common import ACTIVE, SEOUL, facility_by_code, resolve_now, to_json
from geo.admission.quota import apply_quota, quota_rooms
from geo.admission.ranking import RankedEntry, explain_changes, rank
from geo.admission.rules import Centre, Evidence, Priority, rules_for


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
        SELECT e.facility_id, f.code AS facility_code, f.facility_type, f.capacity, e.year, e.age_class, e.id,
               e.public_id, e.child_id, ch.public_id AS child_pid, e.applied_at, e.status,
               COALESCE(array_agg(c.category) FILTER (WHERE c.id IS NOT NULL), '{}') AS cats,
               COALESCE(array_agg(c.evidence) FILTER (WHERE c.id IS NOT NULL), '{}') AS evs,
               COALESCE(array_agg(c.detail) FILTER (WHERE c.id IS NOT NULL), '{}') AS details
        FROM unnest(CAST(:f AS int[]), CAST(:y AS int[]), CAST(:a AS int[])) AS k(facility_id, year, age_class)
        JOIN waitlist_entries e ON e.facility_id = k.facility_id AND e.year = k.year AND e.age_class = k.age_class
        JOIN children ch ON ch.id = e.child_id
        JOIN facilities f ON f.id = e.facility_id
        LEFT JOIN claims c ON c.child_id = e.child_id
        WHERE e.status = ANY(:st)
        GROUP BY e.id, ch.public_id, f.code, f.facility_type, f.capacity
    """), {"f": [k[0] for k in wanted], "y": [k[1] for k in wanted], "a": [k[2] for k in wanted],
           "st": list(statuses)}).all()
    items: dict[QueueKey, dict[str, QueueEntry]] = {k: {} for k in wanted}
    claims_of: dict[str, tuple[tuple[str, str, str | None], ...]] = {}
    centre_of: dict[int, tuple[Centre, int | None]] = {}
    for r in rows:
        claims = tuple(sorted(zip(r.cats, r.evs, r.details, strict=True)))
        centre_of[r.facility_id] = (Centre(r.facility_code, r.facility_type), r.capacity)
        claims_of[r.public_id] = claims
        priority, unverified = _priority(r.year, Centre(r.facility_code, r.facility_type), claims)
        items[(r.facility_id, r.year, r.age_class)][r.public_id] = QueueEntry(
            RankedEntry(r.public_id, priority, r.applied_at), r.id, r.child_id, r.child_pid, r.status, unverified)
    _apply_quotas(conn, items, claims_of, centre_of)
    return {k: [by_id[e.public_id] for e in rank((i.ranked for i in by_id.values()), year=k[1])]
            for k, by_id in items.items()}


def _apply_quotas(conn: Connection, items: dict[QueueKey, dict[str, QueueEntry]],
                  claims_of: dict[str, tuple[tuple[str, str, str | None], ...]],
                  centre_of: dict[int, tuple[Centre, int | None]]) -> None:
    """Entries beyond the quota of a centre-bound category rank without it (``geo.admission.quota``)."""
    for year in sorted({k[1] for k in items}):
        rooms = quota_rooms(conn, rules_for(year), {f: c for f, c in centre_of.items()
                                                    if any(k[0] == f and k[1] == year for k in items)})
        for key, by_id in items.items():
            if key[1] != year or key[0] not in rooms:
                continue
            centre = centre_of[key[0]][0]
            ordered = [e.public_id for e in rank((q.ranked for q in by_id.values()), year=year)]

            def without(entry: str, category: str, centre: Centre = centre, year: int = year) -> Priority:
                return _priority(year, centre, tuple(c for c in claims_of[entry] if c[0] != category))[0]

            after = apply_quota(ordered, {i: by_id[i].ranked.priority for i in ordered}, rooms[key[0]], without)
            for i, p in after.items():
                if p != by_id[i].ranked.priority:
                    q = by_id[i]
                    by_id[i] = replace(q, ranked=replace(q.ranked, priority=p))


@lru_cache(maxsize=4096)
def _priority(year: int, centre: Centre,
              claims: tuple[tuple[str, str, str | None], ...]) -> tuple[Priority, tuple[str, ...]]:
    """The priority at ``centre`` and the counting categories still only claimed, of one set of claims: few
    distinct sets recur across a whole queue, so they are computed once (an unknown code raises and is not
    cached). Claims of categories bound to other centres neither count nor need checking here."""
    rules = rules_for(year)
    priority = rules.priority(((c, Evidence(ev), d) for c, ev, d in claims), centre=centre)
    return priority, tuple(sorted(c for c, ev, d in claims if Evidence(ev) is Evidence.claimed
                                  and rules.categories[c].counts_at(centre, d)))


def record_ranks(conn: Connection, facility_id: int, year: int, age_class: int, *, now: datetime) -> None:
    order = [q.ranked.public_id for q in queue(conn, facility_id, year=year, age_class=age_class)]
    append_event(conn, facility_id, {"type": "rank", "year": year, "age_class": age_class, "order": order}, now=now)


def public_queue(conn: Connection, code: str, *, year: int, age_class: int) -> list[dict[str, Any]]:
    """A centre's queue for everyone: rank, score band and application date only."""
    facility = facility_by_code(conn, code)
    return public_rows(queue(conn, facility.id, year=year, age_class=age_class))


def public_rows(ranked: Sequence[QueueEntry]) -> list[dict[str, Any]]:
    """The public rows of a ranked queue (what ``public_queue`` serves, and what ``verify`` compares)."""
    return [{"rank": i, "band": q.ranked.priority.band, "applied_on": q.ranked.applied_at.astimezone(SEOUL).date(),
             "status": q.status} for i, q in enumerate(ranked, start=1)]


def staff_queue(conn: Connection, facility_id: int, *, year: int, age_class: int) -> list[dict[str, Any]]:
    """A centre's queue for its staff: with the child's name, claims (category and evidence state) and what still
    needs checking."""
    ranked = queue(conn, facility_id, year=year, age_class=age_class)
    child_ids = [q.child_id for q in ranked]
    names: dict[int, str] = dict(conn.execute(text("SELECT id, name FROM children WHERE id = ANY(:c)"),
                                              {"c": child_ids}).all())
    claims: dict[int, list[dict[str, str]]] = {c: [] for c in child_ids}
    for r in conn.execute(text("SELECT child_id, category, evidence FROM claims WHERE child_id = ANY(:c) "
                               "ORDER BY child_id, category"), {"c": child_ids}):
        claims[r.child_id].append({"category": r.category, "evidence": r.evidence})
    out = []
    for i, q in enumerate(ranked, start=1):
        out.append({"rank": i, "entry": q.ranked.public_id, "child": q.child_public_id, "name": names[q.child_id],
                    "tier": q.ranked.priority.tier, "points": q.ranked.priority.points,
                    "reasons": list(q.ranked.priority.reasons), "unverified": list(q.unverified),
                    "claims": claims[q.child_id], "applied_at": q.ranked.applied_at, "status": q.status})
    return out


def queue_sizes(conn: Connection, facility_id: int, *, year: int) -> dict[int, int]:
    """Active (waiting or offered) entries per age class of a centre in a 보육연도."""
    rows = conn.execute(text("""SELECT age_class, count(*) AS n FROM waitlist_entries
                                WHERE facility_id = :f AND year = :y AND status = ANY(:st)
                                GROUP BY age_class ORDER BY age_class"""),
                        {"f": facility_id, "y": year, "st": list(ACTIVE)}).all()
    return {int(r.age_class): int(r.n) for r in rows}


def _snapshot(entries: Sequence[QueueEntry]) -> list[dict[str, Any]]:
    return [{"id": q.ranked.public_id, "tier": q.ranked.priority.tier, "points": q.ranked.priority.points,
             "reasons": list(q.ranked.priority.reasons), "applied_at": q.ranked.applied_at.isoformat()}
            for q in entries]


def _from_snapshot(snapshot: Sequence[dict[str, Any]]) -> list[RankedEntry]:
    return [RankedEntry(s["id"], Priority(s["tier"], s["points"], tuple(s["reasons"])),
                        datetime.fromisoformat(s["applied_at"])) for s in snapshot]


def my_ranks(conn: Connection, *, parent_user_id: int, now: datetime | None = None,
             remember: bool = True) -> list[dict[str, Any]]:
    """Each active entry of the parent's children: rank, score and band now, and the reasons of every change since
    the parent last looked (the view is then remembered, unless ``remember`` is false: a page refreshing itself
    keeps the reasons until the parent looks again).

    Cost (a rank check is the most frequent request of 신학기): the entries with the views last seen, then all
    their queues in one query, then one upsert of the views that changed. A queue unchanged since the last look
    has nothing to explain and nothing to write, so repeated checks between two changes only read.
    """
    at = resolve_now(now)
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
            changed.append((e.id, to_json(snapshot_of[key])))
        out.append({"entry": e.public_id, "child_id": e.child_id, "child_name": e.name, "centre": e.code,
                    "year": e.year, "age_class": e.age_class, "status": e.status, "rank": position + 1,
                    "of": len(current), "tier": mine.priority.tier, "points": mine.priority.points,
                    "band": mine.priority.band, "changes": changes})
    if changed and remember:
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


def age_class_in(year: int, birth_date: date) -> int:
    """The 반 age of a child in a 보육연도: born the year before = 0세반 (2026: born 2025 = 0세, 2020 = 5세)."""
    return year - birth_date.year - 1
