"""The watcher's rank check: does every rank event of the log follow from the log?

The one seam: ``rank_mismatches(events)`` takes the log's events in log order and returns every rank event the log
does not justify. What today's events allow checking (they name entries and children by pseudonyms, and verified
categories by name, but not the categories a parent claimed):

- membership: a rank event of a queue lists exactly the entries the log has active (waiting or offered) in that
  queue, from their ``apply`` events and later status events;
- stability: between two rank events of a queue, entries present in both keep their relative order unless the
  log holds a reason in between: a ``verify`` event of one of their children or a status event of one of them
  (a new application, a withdrawal or an offer never reorders the others). An entry's application time moved in
  the database, or a verified claim inserted there, reorders entries with no logged reason, and shows here at the
  queue's next rank event.

- re-ranking: each centre's chain is replayed (``geo.admission.replay``, pure: no database) from its public facts
  (application times, tier and points with their committed categories and evidence states, status changes, the
  rule table in force) and every rank event is compared position by position with the replay's order. A moved
  application time or a claim inserted in the database without its event is named at the queue's next rank
  event (rank N should hold entry X). A chain the watcher does not hold from its first link, or whose events do not
  fold (written before the log carried every fact), is not re-ranked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from geo.admission import replay

ACTIVE = ("waiting", "offered")
QueueKey = tuple[str, int, int]  # centre code, 보육연도, age class


@dataclass(frozen=True)
class LoggedEvent:
    """One log entry: its index, the centre's code, its seq on the centre's chain and the event (as logged)."""

    index: int
    centre: str
    seq: int
    event: dict[str, Any]


@dataclass(frozen=True)
class RankMismatch:
    """A rank event the log does not justify: where it is and why."""

    index: int
    centre: str
    queue: tuple[int, int]  # 보육연도, age class
    reason: str


@dataclass
class _Entry:
    queue: QueueKey
    child: str | None
    status: str


@dataclass
class _Queue:
    last_order: list[str] | None = None
    touched: set[str] = field(default_factory=set)  # entries with a logged reason to move since last_order


def rank_mismatches(events: Sequence[LoggedEvent]) -> list[RankMismatch]:
    """Every rank event in ``events`` (the whole log, in log order) that the log does not justify: the structural
    checks (membership, stability) and the re-ranking of each centre's chain, in log order."""
    found = _structural_mismatches(events) + _replay_mismatches(events)
    return sorted(found, key=lambda m: m.index)


def _replay_mismatches(events: Sequence[LoggedEvent]) -> list[RankMismatch]:
    by_centre: dict[str, list[LoggedEvent]] = {}
    for item in events:
        by_centre.setdefault(item.centre, []).append(item)
    out: list[RankMismatch] = []
    for centre, items in by_centre.items():
        items.sort(key=lambda i: i.seq)
        if [i.seq for i in items] != list(range(1, len(items) + 1)):
            continue  # not the whole chain: its ranks cannot be recomputed from here
        chain = [i.event for i in items]
        if replay.fold(chain).problems:
            continue  # events written before the log carried every fact (the structural checks still hold)
        for m in replay.rank_mismatches(chain):
            out.append(RankMismatch(items[m.seq - 1].index, centre, (m.year, m.age_class),
                                    f"rank {m.position} should hold {m.expected or 'nobody'} by the log's own facts; "
                                    f"the rank event has {m.found or 'nobody'}"))
    return out


def _structural_mismatches(events: Sequence[LoggedEvent]) -> list[RankMismatch]:
    entries: dict[str, _Entry] = {}
    queues: dict[QueueKey, _Queue] = {}
    out: list[RankMismatch] = []
    for item in events:
        e = item.event
        kind = e.get("type")
        if kind == "rank":
            key = (item.centre, int(e["year"]), int(e["age_class"]))
            out.extend(_check_rank(item, key, [str(x) for x in e.get("order", [])], entries,
                                   queues.setdefault(key, _Queue())))
        elif kind == "verify":
            child = e.get("child")
            for pid, entry in entries.items():
                if entry.child == child:
                    queues.setdefault(entry.queue, _Queue()).touched.add(pid)
        elif isinstance(e.get("entry"), str):
            pid = e["entry"]
            if pid not in entries:
                year, age = e.get("year"), e.get("age_class")
                if year is None or age is None:
                    continue  # an event of an entry whose application the log does not hold
                entries[pid] = _Entry((item.centre, int(year), int(age)), e.get("child"), "new")
            entry = entries[pid]
            if kind == "renew" and e.get("year") is not None:
                centre, year, age = entry.queue
                entry.queue = (centre, int(e["year"]), age + int(e["year"]) - year)
            entry.status = str(e.get("status", entry.status))
            queues.setdefault(entry.queue, _Queue()).touched.add(pid)
    return out


def _check_rank(item: LoggedEvent, key: QueueKey, order: list[str], entries: dict[str, _Entry],
                queue: _Queue) -> list[RankMismatch]:
    found = []

    def miss(reason: str) -> None:
        found.append(RankMismatch(item.index, item.centre, key[1:], reason))

    active = {pid for pid, en in entries.items() if en.queue == key and en.status in ACTIVE}
    if len(set(order)) != len(order):
        miss("an entry is ranked twice")
    if extra := sorted(set(order) - active):
        miss(f"ranks entries the log does not have waiting in this queue: {', '.join(extra)}")
    if missing := sorted(active - set(order)):
        miss(f"leaves out entries the log has waiting in this queue: {', '.join(missing)}")
    if queue.last_order is not None:
        kept = [pid for pid in queue.last_order if pid in set(order) and pid not in queue.touched]
        now = [pid for pid in order if pid in set(kept)]
        if now != kept:
            moved = [pid for pid, was in zip(now, kept, strict=True) if pid != was]
            miss(f"reorders entries with no logged reason (no verification or status change): {', '.join(moved)}")
    queue.last_order = order
    queue.touched = set()
    return found
