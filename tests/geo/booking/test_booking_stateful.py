"""Random sequences of what parents and a centre's staff do to the bookings of one slot (book, join the waiting
list, cancel as the parent or the centre, confirm), on the real database; after every step:

- every booking's status is the one the transition table (``bookings.TRANSITIONS``) gives for the events it went
  through, and a refused event is one the table has no move for (or the full/duplicate/cut-off guards);
- per age, the active (booked or confirmed) bookings never exceed the slot's places, and nobody waits while a
  place of their age is free (the waiting list is promoted in order);
- waiting positions are 1..N in booking order per age;
- every move queued its text (an outbox row per booking and event) and its audit row.

Each operation runs in a savepoint rolled back when the domain refuses it (as a request's transaction is), each
example in a savepoint of the test's rolled-back transaction.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Connection, text

from geo.booking import bookings
from geo.booking.bookings import NEW, TRANSITIONS
from geo.errors import Conflict, DolbomError
from tests.booking_util import make_centre, make_slot, make_user

PARENTS = 4
AGES = (1, 2)
CUTOFF = timedelta(hours=2)
# The outbox template each move of the table queues (a promotion texts "promoted", a new waiting one "waiting").
TEMPLATE = {"book": "booked", "wait": "waiting", "promote": "promoted", "confirm": "confirmed", "cancel": "cancelled"}


def _machine(conn: Connection) -> type[RuleBasedStateMachine]:
    facility = make_centre(conn, "T-STATEFUL-1")
    parents = [make_user(conn, f"stateful{i}@example.kr", "parent") for i in range(PARENTS)]
    staff = make_user(conn, "stateful-staff@example.kr", "centre_staff", (facility,))

    class Bookings(RuleBasedStateMachine):
        """The bookings of one slot with one or two places for ages 1 and 2."""

        def __init__(self) -> None:
            super().__init__()
            self.example = conn.begin_nested()
            self.slot = 0
            self.places: dict[int, int] = {}
            self.model: dict[int, str] = {}  # booking id -> status the table says
            self.events: dict[int, list[str]] = {}  # booking id -> events applied, in order
            self.age_of: dict[int, int] = {}

        def teardown(self) -> None:
            self.example.rollback()

        @initialize(places=st.lists(st.integers(1, 2), min_size=len(AGES), max_size=len(AGES)))
        def setup(self, places: list[int]) -> None:
            self.places = dict(zip(AGES, places, strict=True))
            self.slot = make_slot(conn, facility, places_by_age={str(a): n for a, n in self.places.items()})

        def _status(self, booking_id: int) -> str:
            return str(conn.execute(text("SELECT status FROM bookings WHERE id = :id"),
                                    {"id": booking_id}).scalar_one())

        def _apply(self, booking_id: int, event: str) -> None:
            self.model[booking_id] = TRANSITIONS[(self.model.get(booking_id, NEW), event)]
            self.events.setdefault(booking_id, []).append(event)

        def _free(self, age: int) -> int:
            active = sum(1 for b, s in self.model.items() if self.age_of[b] == age and s in bookings.ACTIVE)
            return self.places[age] - active

        def _promote_model(self, age: int) -> None:
            waiting = sorted(b for b, s in self.model.items() if self.age_of[b] == age and s == "waiting")
            for booking_id in waiting[:max(self._free(age), 0)]:
                self._apply(booking_id, "promote")

        @rule(parent=st.integers(0, PARENTS - 1), age=st.sampled_from(AGES), join=st.booleans())
        def book(self, parent: int, age: int, join: bool) -> None:
            full = self._free(age) <= 0
            savepoint = conn.begin_nested()
            try:
                made = bookings.book(conn, slot_id=self.slot, parent_user_id=parents[parent], child_age=age,
                                     join_waitlist=join, lang="ko")
            except Conflict as exc:
                savepoint.rollback()
                assert full and not join and exc.extra["reason"] == "full"
                return
            savepoint.commit()
            self.age_of[made["id"]] = age
            self._apply(made["id"], "wait" if full else "book")
            assert made["status"] == self.model[made["id"]]

        def _event(self, event: str, booking_id: int, **kwargs: Any) -> None:
            allowed = (self.model[booking_id], event) in TRANSITIONS
            savepoint = conn.begin_nested()
            try:
                fn = bookings.confirm if event == "confirm" else bookings.cancel
                fn(conn, booking_id=booking_id, **kwargs)
            except DolbomError as exc:
                savepoint.rollback()
                assert not allowed, (booking_id, self.model[booking_id], event, exc)
                assert exc.extra.get("reason") == self.model[booking_id]
                return
            savepoint.commit()
            assert allowed, (booking_id, self.model[booking_id], event)
            before = self.model[booking_id]
            self._apply(booking_id, event)
            if event == "cancel" and before in bookings.ACTIVE:
                self._promote_model(self.age_of[booking_id])

        @precondition(lambda self: self.model)
        @rule(data=st.data(), by_centre=st.booleans())
        def cancel(self, data: st.DataObject, by_centre: bool) -> None:
            booking_id = data.draw(st.sampled_from(sorted(self.model)))
            owner = conn.execute(text("SELECT parent_user_id FROM bookings WHERE id = :id"),
                                 {"id": booking_id}).scalar_one()
            self._event("cancel", booking_id, actor_user_id=staff if by_centre else owner, as_centre=by_centre,
                        cutoff=CUTOFF)

        @precondition(lambda self: self.model)
        @rule(data=st.data())
        def confirm(self, data: st.DataObject) -> None:
            self._event("confirm", data.draw(st.sampled_from(sorted(self.model))), actor_user_id=staff)

        @invariant()
        def statuses_are_the_tables(self) -> None:
            for booking_id, status in self.model.items():
                assert self._status(booking_id) == status, (booking_id, self.events[booking_id])

        @invariant()
        def places_hold_and_nobody_waits_for_a_free_place(self) -> None:
            for age, places in self.places.items():
                active, waiting = conn.execute(text(
                    "SELECT count(*) FILTER (WHERE status IN ('booked', 'confirmed')), "
                    "count(*) FILTER (WHERE status = 'waiting') FROM bookings WHERE slot_id = :s AND child_age = :a"),
                    {"s": self.slot, "a": age}).one()
                assert active <= places
                assert waiting == 0 or active == places

        @invariant()
        def waiting_positions_are_one_to_n(self) -> None:
            for age in AGES:
                ids = sorted(b for b, s in self.model.items() if s == "waiting" and self.age_of[b] == age)
                assert [bookings.waiting_position(conn, b) for b in ids] == list(range(1, len(ids) + 1))

        @invariant()
        def every_move_texted_and_audited(self) -> None:
            for booking_id, events in self.events.items():
                templates = conn.execute(text(
                    "SELECT template FROM notification_outbox WHERE idempotency_key LIKE :k ORDER BY id"),
                    {"k": f"booking:{booking_id}:%"}).scalars().all()
                # One text per kind of move (the key is per booking and template: a second "cancelled" cannot
                # happen, the table has no move out of cancelled).
                assert templates == list(dict.fromkeys(TEMPLATE[e] for e in events)), (events, templates)
                audited = conn.execute(text("SELECT count(*) FROM audit_log WHERE entity = 'bookings' "
                                            "AND entity_id = :id"), {"id": str(booking_id)}).scalar_one()
                assert audited == len(events)

    return Bookings


def test_bookings_follow_the_table_under_random_use(connection: Connection) -> None:
    run_state_machine_as_test(_machine(connection), settings=settings(
        max_examples=25, stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))


def test_the_table_has_no_move_out_of_cancelled() -> None:
    assert {event for (status, event) in TRANSITIONS if status == "cancelled"} == set()
    assert set(TRANSITIONS.values()) <= set(bookings.STATUSES)
