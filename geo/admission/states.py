"""The admission state machine: one transition table for waitlist entries (with the offers and places that go with
their states) and one for the evidence of priority claims, and the one function each through which every change
of state is made, checked and logged on the centre's chain.

Entries (``waitlist_entries.status``; ``new`` is an application not written yet)::

    new --apply--> waiting --offer/intake_offer--> offered --accept--> admitted --transfer--> withdrawn
    waiting|offered --withdraw--> withdrawn      offered --decline--> withdrawn
    offered --offer_expired--> lapsed            waiting|offered --lapse_after_admission--> lapsed
    waiting --drop_unrenewed--> dropped          waiting --renew--> waiting (next 보육연도)
    waiting|offered --keep--> itself (no lapse)  any --correction--> waiting|withdrawn|dropped|lapsed (see TABLE)

What goes with a state is derived in ``transition`` from the source and target, not left to each caller:
entering ``offered`` opens the entry's offer (one live offer per child), leaving it closes the offer with the status
the row names (``accepted``, ``declined`` or ``expired``), so no path can leave an offer open on an entry that is
no longer offered; entering ``admitted`` takes the place (the centre's ``free_by_age`` minus one), marks the child
enrolled and dates the lapse of the child's other active entries; leaving ``admitted`` frees the place again.

Every transition appends one chain event ``{"type": event, "entry", "was", "status", ...details}``: the chain is
the complete history of every entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from geo.admission.chain import append_event
from geo.admission.common import ACTIVE, SEOUL, lock_centre
from geo.admission.queue import record_ranks
from geo.admission.rules import childcare_year, rules_for
from geo.errors import IllegalTransition

NEW = "new"
ENTRY_STATES = (NEW, "waiting", "offered", "admitted", "withdrawn", "dropped", "lapsed")
OFFER_CLOSED = ("accepted", "declined", "expired")
CORRECTION_TARGETS = ("waiting", "withdrawn", "dropped", "lapsed")


@dataclass(frozen=True)
class EntryRef:
    """An entry as a transition needs it (read ``FOR UPDATE`` by ``lock_entry``, or a queue row under the centre's
    lock); a new application has ``id`` 0 and status ``new``."""

    id: int
    public_id: str
    child_id: int
    facility_id: int
    year: int
    age_class: int
    status: str
    lapse_at: datetime | None = None
    preference: int = 1
    applied_at: datetime | None = None


Guard = Callable[[Connection, EntryRef], str | None]  # the reason the transition is refused, or None


def _no_live_offer(conn: Connection, entry: EntryRef) -> str | None:
    live = conn.execute(text("SELECT 1 FROM waitlist_offers WHERE child_id = :c AND status = 'open'"),
                        {"c": entry.child_id}).first()
    return "the child holds a live offer elsewhere" if live else None


def _admitted_nowhere_else(conn: Connection, entry: EntryRef) -> str | None:
    other = conn.execute(text("""SELECT f.code FROM waitlist_entries e JOIN facilities f ON f.id = e.facility_id
                                 WHERE e.child_id = :c AND e.status = 'admitted' AND e.id <> :e LIMIT 1"""),
                         {"c": entry.child_id, "e": entry.id}).scalar_one_or_none()
    return f"the child is admitted at {other}" if other else None


def _no_other_active_entry_here(conn: Connection, entry: EntryRef) -> str | None:
    other = conn.execute(text("""SELECT 1 FROM waitlist_entries WHERE child_id = :c AND facility_id = :f
                                 AND id <> :e AND status IN ('waiting', 'offered')"""),
                         {"c": entry.child_id, "f": entry.facility_id, "e": entry.id}).first()
    return "the child already has an active entry at this centre" if other else None


@dataclass(frozen=True)
class Transition:
    """One row of the table: ``event`` takes an entry from ``source`` to ``target``; ``offer`` is what happens to
    the entry's offer (``open`` when entering ``offered``, its closing status when leaving it); ``guard`` may
    refuse; ``clears_lapse`` (keep) and ``moves_year`` (renew) change the entry beyond its status."""

    source: str
    event: str
    target: str
    offer: str | None = None
    guard: Guard | None = None
    clears_lapse: bool = False
    moves_year: bool = False


def _corrections() -> list[Transition]:
    closing = {"waiting": "declined", "withdrawn": "declined", "dropped": "expired", "lapsed": "expired"}
    rows = []
    for source in ("waiting", "offered", "withdrawn", "dropped", "lapsed"):
        for target in CORRECTION_TARGETS:
            if target == source:
                continue
            rows.append(Transition(source, "correction", target,
                                   offer=closing[target] if source == "offered" else None,
                                   guard=_no_other_active_entry_here if target == "waiting" else None))
    # An admission is corrected only to ``withdrawn`` (the child left); the place is free again.
    rows.append(Transition("admitted", "correction", "withdrawn"))
    return rows


TABLE: tuple[Transition, ...] = (
    Transition(NEW, "apply", "waiting", guard=_no_other_active_entry_here),
    Transition("waiting", "offer", "offered", offer="open", guard=_no_live_offer),
    Transition("waiting", "intake_offer", "offered", offer="open", guard=_no_live_offer),
    Transition("offered", "accept", "admitted", offer="accepted", guard=_admitted_nowhere_else),
    Transition("offered", "decline", "withdrawn", offer="declined"),
    Transition("waiting", "withdraw", "withdrawn"),
    Transition("offered", "withdraw", "withdrawn", offer="declined"),
    Transition("offered", "offer_expired", "lapsed", offer="expired"),
    Transition("waiting", "lapse_after_admission", "lapsed"),
    Transition("offered", "lapse_after_admission", "lapsed", offer="expired"),
    Transition("waiting", "keep", "waiting", clears_lapse=True),
    Transition("offered", "keep", "offered", clears_lapse=True),
    Transition("waiting", "renew", "waiting", moves_year=True),
    Transition("waiting", "drop_unrenewed", "dropped"),
    Transition("admitted", "transfer", "withdrawn"),
    *_corrections(),
)

_BY_KEY: dict[tuple[str, str], dict[str, Transition]] = {}
for _t in TABLE:
    _BY_KEY.setdefault((_t.source, _t.event), {})[_t.target] = _t


def check_table(table: tuple[Transition, ...] = TABLE) -> list[str]:
    """Every inconsistency of a transition table (empty when sound): unknown states, an offer opened other than
    on entering ``offered``, an offer left open on leaving it, ``accepted`` other than on admission, duplicates."""
    problems = []
    seen: set[tuple[str, str, str]] = set()
    for t in table:
        name = f"{t.source} --{t.event}--> {t.target}"
        if t.source not in ENTRY_STATES or t.target not in ENTRY_STATES[1:]:
            problems.append(f"{name}: unknown state")
        if (t.source, t.event, t.target) in seen:
            problems.append(f"{name}: twice")
        seen.add((t.source, t.event, t.target))
        entering, leaving = t.target == "offered" != t.source, t.source == "offered" != t.target
        if entering and t.offer != "open" or not entering and t.offer == "open":
            problems.append(f"{name}: an offer opens exactly on entering offered")
        if leaving and t.offer not in OFFER_CLOSED or not leaving and not entering and t.offer is not None:
            problems.append(f"{name}: leaving offered closes the offer, and only that does")
        if leaving and (t.offer == "accepted") != (t.target == "admitted"):
            problems.append(f"{name}: an offer is accepted exactly when the entry is admitted")
    return problems


if check_table():
    raise RuntimeError(f"the admission transition table is unsound: {check_table()}")


def allowed(source: str, event: str) -> dict[str, Transition]:
    """The transitions ``event`` may make from ``source``, by target (empty: illegal)."""
    return _BY_KEY.get((source, event), {})


def lock_entry(conn: Connection, entry_id: int) -> EntryRef:
    """An entry read ``FOR UPDATE``, after its centre's lock (the order every writer takes them in)."""
    facility_id = conn.execute(text("SELECT facility_id FROM waitlist_entries WHERE id = :e"),
                               {"e": entry_id}).scalar_one()
    lock_centre(conn, facility_id)
    row = conn.execute(text("""SELECT id, public_id, child_id, facility_id, year, age_class, status, lapse_at
                               FROM waitlist_entries WHERE id = :e FOR UPDATE"""), {"e": entry_id}).one()
    return EntryRef(row.id, row.public_id, row.child_id, row.facility_id, row.year, row.age_class, row.status,
                    row.lapse_at)


@dataclass(frozen=True)
class Applied:
    """What a transition did: the entry's id and new status, the offer it opened or closed, the event logged."""

    entry_id: int
    status: str
    offer_id: int | None
    event: dict[str, Any]


def transition(conn: Connection, entry: EntryRef, event: str, *, at: datetime, target: str | None = None,
               details: Mapping[str, Any] | None = None, deadline: datetime | None = None,
               actor_user_id: int | None = None, year: int | None = None) -> Applied:
    """Make ``event`` happen to ``entry``: check the table (and the row's guard), apply the state and everything
    that goes with it, append the chain event and record the queue's ranks when its members changed.

    Parameters
    ----------
    entry
        The entry (``status`` as read; the update checks it is still that, so a stale read cannot skip a step).
    event
        The event, also the chain event's ``type``.
    at
        Time of the transition (time zone aware).
    target
        The target state where the event allows several (a correction).
    details
        Extra fields of the chain event.
    deadline, actor_user_id
        Deadline and author of an offer opened by this transition.
    year
        The 보육연도 a renewal moves the entry to (its 반 age moves up by as many years).

    Raises
    ------
    IllegalTransition
        The table has no such transition from the entry's state, its guard refuses it, the entry's state changed
        since it was read, or (opening an offer) the child holds a live offer.
    """
    choices = allowed(entry.status, event)
    if target is not None:
        choices = {target: choices[target]} if target in choices else {}
    if len(choices) != 1:
        wanted = f" to {target}" if target else ""
        raise IllegalTransition(f"entry {entry.public_id or '(new)'} is {entry.status}: {event}{wanted} is not "
                                "allowed", state=entry.status, event=event, target=target)
    t = next(iter(choices.values()))
    lock_centre(conn, entry.facility_id)
    if t.guard is not None and (refusal := t.guard(conn, entry)) is not None:
        raise IllegalTransition(f"{event} refused for entry {entry.public_id or '(new)'}: {refusal}",
                                state=entry.status, event=event, reason=refusal)
    new_year = year if t.moves_year and year is not None else entry.year
    new_age = entry.age_class + (new_year - entry.year)
    fields: dict[str, Any] = dict(details or {})
    if t.offer == "open":
        if deadline is None:
            raise ValueError(f"{event} opens an offer and needs its deadline")
        try:
            with conn.begin_nested():  # one live offer per child: the unique partial index has the last word
                entry_id = _write_entry(conn, entry, t, at=at, year=new_year, age_class=new_age)
                offer_id: int | None = conn.execute(text("""
                    INSERT INTO waitlist_offers (entry_id, child_id, facility_id, age_class, deadline, status,
                                                 offered_by, created_at)
                    VALUES (:e, :c, :f, :a, :d, 'open', :u, :at) RETURNING id
                """), {"e": entry_id, "c": entry.child_id, "f": entry.facility_id, "a": entry.age_class,
                       "d": deadline, "u": actor_user_id, "at": at}).scalar_one()
        except IntegrityError as exc:
            reason = "the child holds a live offer elsewhere"
            raise IllegalTransition(f"{event} refused for entry {entry.public_id}: {reason}", state=entry.status,
                                    event=event, reason=reason) from exc
    else:
        entry_id = _write_entry(conn, entry, t, at=at, year=new_year, age_class=new_age)
        offer_id = None
        if t.offer is not None:  # leaving offered: the offer closes with the entry
            offer_id = conn.execute(text("""UPDATE waitlist_offers SET status = :s, answered_at = :at
                                            WHERE entry_id = :e AND status = 'open' RETURNING id"""),
                                    {"s": t.offer, "at": at, "e": entry_id}).scalar_one_or_none()
    if offer_id is not None:
        fields.setdefault("offer", offer_id)
        if t.offer == "open":
            assert deadline is not None
            fields.setdefault("deadline", deadline.isoformat())
        else:  # the offer's outcome: the replay closes it with this status
            fields["offer_status"] = t.offer
    if t.target == "admitted" != t.source:
        _take_place(conn, entry, at=at)
    if t.source == "admitted" != t.target:
        _free_place(conn, entry.facility_id, entry.age_class)
    full = {**fields, "type": event, "entry": entry.public_id, "was": entry.status, "status": t.target}
    append_event(conn, entry.facility_id, full, now=at)
    if t.moves_year and (new_year, new_age) != (entry.year, entry.age_class):
        record_ranks(conn, entry.facility_id, new_year, new_age, now=at)
        record_ranks(conn, entry.facility_id, entry.year, entry.age_class, now=at)
    elif (entry.status in ACTIVE) != (t.target in ACTIVE):
        record_ranks(conn, entry.facility_id, entry.year, entry.age_class, now=at)
    return Applied(entry_id, t.target, offer_id, full)


def _write_entry(conn: Connection, entry: EntryRef, t: Transition, *, at: datetime, year: int,
                 age_class: int) -> int:
    if t.source == NEW:
        return int(conn.execute(text("""
            INSERT INTO waitlist_entries (public_id, child_id, facility_id, year, age_class, preference, applied_at,
                                          status, status_at)
            VALUES (:pid, :c, :f, :y, :a, :pref, :applied, :s, :at) RETURNING id
        """), {"pid": entry.public_id, "c": entry.child_id, "f": entry.facility_id, "y": entry.year,
               "a": entry.age_class, "pref": entry.preference, "applied": entry.applied_at or at, "s": t.target,
               "at": at}).scalar_one())
    written = conn.execute(text("""
        UPDATE waitlist_entries SET status = :s, status_at = :at, year = :y, age_class = :a,
               lapse_at = CASE WHEN :clear THEN NULL ELSE lapse_at END
        WHERE id = :e AND status = :was RETURNING id
    """), {"s": t.target, "at": at, "y": year, "a": age_class, "clear": t.clears_lapse, "e": entry.id,
           "was": entry.status}).scalar_one_or_none()
    if written is None:
        raise IllegalTransition(f"entry {entry.public_id} is no longer {entry.status}", state=entry.status,
                                event=t.event, reason=f"no longer {entry.status}")
    return int(written)


def _take_place(conn: Connection, entry: EntryRef, *, at: datetime) -> None:
    """Admission: the place is taken, the child enrolled, and its other active entries lapse after the keep
    window unless the parent keeps them."""
    rules = rules_for(childcare_year(at.astimezone(SEOUL).date()))
    conn.execute(text("""UPDATE facilities SET free_by_age = jsonb_set(free_by_age, ARRAY[:a],
                             to_jsonb(GREATEST(COALESCE((free_by_age->>:a)::int, 0) - 1, 0)))
                         WHERE id = :f AND free_by_age IS NOT NULL"""),
                 {"a": str(entry.age_class), "f": entry.facility_id})
    conn.execute(text("UPDATE children SET enrolled = true WHERE id = :c"), {"c": entry.child_id})
    conn.execute(text("""UPDATE waitlist_entries SET lapse_at = :until WHERE child_id = :c AND id <> :e
                         AND status IN ('waiting', 'offered')"""),
                 {"until": at + timedelta(days=rules.keep_other_entries_days), "c": entry.child_id, "e": entry.id})


def _free_place(conn: Connection, facility_id: int, age_class: int) -> None:
    """A taken place is free again (the centre's ``free_by_age`` plus one)."""
    conn.execute(text("""UPDATE facilities SET free_by_age = jsonb_set(free_by_age, ARRAY[:a],
                             to_jsonb(COALESCE((free_by_age->>:a)::int, 0) + 1))
                         WHERE id = :f AND free_by_age IS NOT NULL"""), {"a": str(age_class), "f": facility_id})


# --- claims --------------------------------------------------------------------------------------------------

# The evidence of a claim: checked by a centre's staff (or a linked public record, which a centre cannot
# overrule); a record is only ever rejected later, and nothing moves to the state it is in.
CLAIM_TABLE: frozenset[tuple[str, str]] = frozenset(
    {(s, t) for s in ("claimed", "verified_centre", "rejected")
     for t in ("claimed", "verified_centre", "verified_record", "rejected") if s != t}
    | {("verified_record", "rejected")})


def check_claim(claim_id: int, source: str, target: str) -> None:
    """``IllegalTransition`` unless the claim table has ``source -> target``."""
    if (source, target) not in CLAIM_TABLE:
        raise IllegalTransition(f"claim {claim_id} is {source}: it cannot become {target}", state=source,
                                target=target)
