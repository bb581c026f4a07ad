"""Replaying a centre's waitlist log: its events folded into entries, offers and ranked queues, from public facts only.

Pure (no database, no secret): a watcher holding a centre's public chain re-ranks every queue with it, and
``dolbom waitlist verify`` / ``rebuild`` use the same fold. The events it reads (see docs/waitlist.md):

- ``rules``: ``year``, ``version`` (the rules file's year) and ``sha256`` of the rules file, before the centre's
  first application of that 보육연도;
- ``apply``: ``entry``, ``child`` (the child's pseudonym at this centre), ``year``, ``age_class``, ``applied_at``,
  ``preference``, and the entry's priority: ``tier``, ``points`` and ``claims`` (one
  ``{"commitment", "evidence"}`` per claim that may count at this centre, the commitment being
  SHA-256(salt || category));
- ``priority``: ``entry`` with its new ``tier``, ``points`` and ``claims`` (a claim's evidence changed);
- every status transition of ``geo.admission.states`` (``offer``, ``accept``, ``decline``, ``withdraw``,
  ``renew``, ``correction``, ...): ``entry``, ``was``, ``status``; an offer opened carries ``offer`` (its id) and
  ``deadline``, an offer closed ``offer`` and ``offer_status``; ``renew`` carries the new ``year``;
- ``rank``: ``year``, ``age_class`` and the ``order`` of the queue's active entries after the change.

Every event carries ``at`` (its time) and a random ``nonce``. Ranks follow from tier, points, ``applied_at`` and the
published tie-break (``geo.admission.ranking``); no category is needed to re-rank, and none is in the log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from geo.admission.ranking import RankedEntry, rank
from geo.admission.rules import Priority
from geo.domain import SEOUL_TZ

ACTIVE = ("waiting", "offered")
NOT_TRANSITIONS = ("rules", "apply", "priority", "rank")


def commitment(salt_hex: str, category: str) -> str:
    """The commitment to a claim's category: SHA-256(salt || category) in hex (salt as raw bytes, category as
    UTF-8). Its opening (salt and category) lets the parent, and only whoever they show it to, check it."""
    return hashlib.sha256(bytes.fromhex(salt_hex) + category.encode("utf-8")).hexdigest()


@dataclass
class ReplayEntry:
    """An entry as the log makes it."""

    entry: str
    child: str
    year: int
    age_class: int
    applied_at: datetime
    preference: int
    status: str
    status_at: datetime
    tier: int
    points: int
    claims: dict[str, str]  # commitment -> evidence state

    def ranked(self) -> RankedEntry:
        """The entry as ranking sees it (categories are not needed: tier and points are)."""
        return RankedEntry(self.entry, Priority(self.tier, self.points, ()), self.applied_at)


@dataclass
class ReplayOffer:
    """An offer as the log makes it."""

    id: int
    entry: str
    deadline: datetime
    status: str
    created_at: datetime
    answered_at: datetime | None = None


@dataclass(frozen=True)
class LogProblem:
    """An event that does not follow from the ones before it (seq counts a centre's events from 1)."""

    seq: int
    reason: str


@dataclass
class CentreState:
    """A centre's entries, offers and rule tables after a prefix of its log, and what did not fold."""

    entries: dict[str, ReplayEntry] = field(default_factory=dict)
    offers: dict[int, ReplayOffer] = field(default_factory=dict)
    rules: dict[int, dict[str, Any]] = field(default_factory=dict)
    problems: list[LogProblem] = field(default_factory=list)

    def queue(self, year: int, age_class: int) -> list[ReplayEntry]:
        """The ranked queue of active entries of ``year`` and ``age_class`` (rank 1 first)."""
        members = {e.entry: e for e in self.entries.values()
                   if e.status in ACTIVE and e.year == year and e.age_class == age_class}
        return [members[r.public_id] for r in rank((e.ranked() for e in members.values()), year=year)]

    def queue_keys(self) -> list[tuple[int, int]]:
        """(year, age class) of every queue with an active entry."""
        return sorted({(e.year, e.age_class) for e in self.entries.values() if e.status in ACTIVE})


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _claims(event: Mapping[str, Any]) -> dict[str, str]:
    return {c["commitment"]: c["evidence"] for c in event.get("claims", ())}


def apply_event(state: CentreState, seq: int, event: Mapping[str, Any]) -> None:
    """Fold one event (link ``seq``) into ``state``; what does not follow is added to ``state.problems`` (a
    malformed event too: the log is public data, and a watcher must not stop at the first bad row)."""
    try:
        _apply_event(state, seq, event)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        state.problems.append(LogProblem(seq, f"malformed {event.get('type')!r} event: {exc!r}"))


def _apply_event(state: CentreState, seq: int, event: Mapping[str, Any]) -> None:
    kind = event.get("type")
    at = _time(event["at"]) if "at" in event else None
    pid: str | None = str(event["entry"]) if "entry" in event else None
    if kind == "rules":
        state.rules[int(event["year"])] = {"version": event["version"], "sha256": event["sha256"]}
        return
    if kind == "rank":
        int(event["year"]), int(event["age_class"]), list(event["order"])
        return
    if kind == "apply":
        if pid is None or pid in state.entries:
            state.problems.append(LogProblem(seq, f"entry {pid} applied twice"))
            return
        year = int(event["year"])
        if year not in state.rules:
            state.problems.append(LogProblem(seq, f"entry {pid} applied for {year} before the rules event"))
        state.entries[pid] = ReplayEntry(
            entry=pid, child=event["child"], year=year, age_class=int(event["age_class"]),
            applied_at=_time(event["applied_at"]), preference=int(event.get("preference", 1)),
            status=event["status"], status_at=at or _time(event["applied_at"]), tier=int(event["tier"]),
            points=int(event["points"]), claims=_claims(event))
        return
    entry = state.entries.get(pid) if pid is not None else None
    if pid is None or entry is None:
        state.problems.append(LogProblem(seq, f"{kind} event for an entry the log never applied: {pid}"))
        return
    if kind == "priority":
        entry.tier, entry.points, entry.claims = int(event["tier"]), int(event["points"]), _claims(event)
        return
    if "status" not in event or "was" not in event:
        state.problems.append(LogProblem(seq, f"unknown event type {kind!r}"))
        return
    if event["was"] != entry.status:
        state.problems.append(LogProblem(seq, f"{kind} of entry {pid}: the log has it {entry.status}, the event "
                                              f"says it was {event['was']}"))
    if kind == "renew" and "year" in event:
        new_year = int(event["year"])
        entry.age_class += new_year - entry.year
        entry.year = new_year
    entry.status = event["status"]
    if at is not None:
        entry.status_at = at
    offer_id = event.get("offer")
    if offer_id is None:
        return
    if entry.status == "offered" and event["was"] != "offered":
        state.offers[int(offer_id)] = ReplayOffer(int(offer_id), pid, _time(event["deadline"]), "open",
                                                  at or entry.status_at)
    elif "offer_status" in event and int(offer_id) in state.offers:
        offer = state.offers[int(offer_id)]
        offer.status, offer.answered_at = event["offer_status"], at


def fold(events: Iterable[Mapping[str, Any]]) -> CentreState:
    """A centre's state after all of ``events`` (in chain order, the first being link 1)."""
    state = CentreState()
    for seq, event in enumerate(events, start=1):
        apply_event(state, seq, event)
    return state


@dataclass(frozen=True)
class RankMismatch:
    """A rank event that disagrees with the replay: at link ``seq``, rank ``position`` of the queue
    (``year``, ``age_class``) should hold ``expected`` (an entry id, None past the end) and the event has
    ``found``."""

    seq: int
    year: int
    age_class: int
    position: int
    expected: str | None
    found: str | None


def rank_mismatches(events: Iterable[Mapping[str, Any]]) -> list[RankMismatch]:
    """Every disagreement between the log's rank events and the replay.

    The events of one centre's chain are folded in order (the first is link 1); at each ``rank`` event the queue
    it names is re-ranked from the entries folded so far (tier, points, ``applied_at``, published tie-break over
    active entries) and compared position by position with the event's ``order``. Empty when every rank event
    follows from the log. Events that do not fold (see ``fold``) are not reported here: ``fold(...).problems``.
    """
    state = CentreState()
    out: list[RankMismatch] = []
    for seq, event in enumerate(events, start=1):
        apply_event(state, seq, event)
        if event.get("type") != "rank":
            continue
        try:
            year, age = int(event["year"]), int(event["age_class"])
            found = [str(x) for x in event.get("order", ())]
        except (KeyError, TypeError, ValueError):
            continue  # malformed: ``fold`` names it
        expected = [e.entry for e in state.queue(year, age)]
        for i in range(max(len(expected), len(found))):
            want = expected[i] if i < len(expected) else None
            got = found[i] if i < len(found) else None
            if want != got:
                out.append(RankMismatch(seq, year, age, i + 1, want, got))
    return out


def band(tier: int, points: int) -> str:
    """The public score band of a tier and points (as ``Priority.band``)."""
    return Priority(tier, points, ()).band


def applied_on(entry: ReplayEntry) -> date:
    """The Korean date of an entry's application (as the public queue shows it)."""
    return entry.applied_at.astimezone(SEOUL_TZ).date()


def public_queue(state: CentreState, year: int, age_class: int) -> list[dict[str, Any]]:
    """A queue as the public sees it (rank, band, application date, status), from the replay."""
    return [{"rank": i, "band": band(e.tier, e.points), "applied_on": applied_on(e), "status": e.status}
            for i, e in enumerate(state.queue(year, age_class), start=1)]
