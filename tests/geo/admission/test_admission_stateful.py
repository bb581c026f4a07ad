"""Random sequences of what parents, staff, administrators and the nightly jobs do to the waitlist (apply, claim
evidence, offer, accept, decline, correct, withdraw, keep, renew, expire, year-end), on the real database, across a
few children and three centres with small capacities; after every step:

- at most one live offer per child; an entry is ``offered`` exactly when it has an open offer;
- at most one admission per child (a kept entry moves the child, it does not add a place);
- every seat is free, offered or taken, never two: per centre and age, free places plus admissions stay the
  capacity the centre started with, and open offers never exceed the free places;
- ranks are 1..N without gaps in every queue, N the queue's active entries, and the centre's last rank event of
  the queue names the same order; every chain verifies;
- the live tables and served queues are the replay of the centres' logs (``projection.differences`` is empty).

Each operation runs in a savepoint rolled back when the domain refuses it (as a request's transaction is), and each
example in a savepoint of the test's rolled-back transaction. Public ids are drawn from a counter that restarts with
each example: the published tie-break hashes them, so random ids would order equal entries differently each time
hypothesis replays an example, and the replay would then diverge (CI saw it as a flaky precondition).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

import pytest
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
from sqlalchemy import Connection, Engine, text

from geo.admission import waitlist as wl
from geo.admission.common import SEOUL
from geo.admission.projection import differences
from geo.admission.rules import childcare_year, rules_for
from geo.errors import Conflict, NotFound
from tests.geo.admission.waitutil import NOW, centres, parent, set_free

CHILDREN = 4
CENTRES = 3
AGES = ("0", "1")
CLAIMS = ("dual_income", "multi_child")
EVIDENCE = ("verified_centre", "verified_record", "rejected", "claimed")
STATUSES = ("waiting", "offered", "admitted", "withdrawn", "dropped", "lapsed")
CORRECTIONS = ("waiting", "withdrawn", "dropped", "lapsed")
RULES = rules_for(2026)
YEAR_END = datetime(2027, 3, 1, 0, 0, tzinfo=NOW.tzinfo)


@pytest.fixture()
def conn(seoul_engine: Engine, connection: Connection) -> Connection:
    """The rolled-back connection on the database with the real Seoul centres."""
    return connection


class CountedIds:
    """Public ids that repeat from one replay of an example to the next: hashes of a counter."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return hashlib.sha256(f"stateful-waitlist:{self.n}".encode()).hexdigest()[:16]


def _machine(conn: Connection, ids: CountedIds) -> type[RuleBasedStateMachine]:
    sites = centres(conn, CENTRES)

    class Waitlist(RuleBasedStateMachine):
        """The waitlist of ``CENTRES`` real centres and ``CHILDREN`` children born in 2025."""

        def __init__(self) -> None:
            super().__init__()
            ids.n = 0
            self.example = conn.begin_nested()
            self.now = NOW
            self.year_ended = False
            self.expired_at: datetime | None = None  # the last run of the expiry job
            self.capacity: dict[tuple[int, str], int] = {}
            self.kids: list[dict[str, Any]] = []
            self.parents: list[int] = []
            self.admin = parent(conn, "admin@example.kr")

        def teardown(self) -> None:
            self.example.rollback()

        # --- set-up ----------------------------------------------------------------------------------------

        @initialize(capacities=st.lists(st.integers(1, 2), min_size=CENTRES * len(AGES),
                                        max_size=CENTRES * len(AGES)),
                    claims=st.lists(st.sampled_from(((), (), (), (), (), ("dual_income",), CLAIMS)),
                                    min_size=CHILDREN, max_size=CHILDREN),
                    applications=st.lists(st.lists(st.integers(0, CENTRES - 1), min_size=1, max_size=CENTRES,
                                                   unique=True), min_size=CHILDREN, max_size=CHILDREN))
        def setup(self, capacities: list[int], claims: list[tuple[str, ...]],
                  applications: list[list[int]]) -> None:
            for i, site in enumerate(sites):
                free = {age: capacities[i * len(AGES) + j] for j, age in enumerate(AGES)}
                set_free(conn, site.id, free)
                self.capacity.update({(site.id, age): n for age, n in free.items()})
            for i, kid_claims in enumerate(claims):
                mum = parent(conn, f"p{i}@example.kr")
                self.parents.append(mum)
                self.kids.append(wl.register_child(conn, parent_user_id=mum, name=f"아이{i}",
                                                   birth_date=date(2025, 1 + i, 1), claims=kid_claims, now=NOW))
            for child, chosen in enumerate(applications):  # a waitlist to start from (``apply`` adds more)
                for centre in chosen:
                    self.apply(child, centre)

        # --- helpers ---------------------------------------------------------------------------------------

        def attempt(self, op: Any, *args: Any, **kwargs: Any) -> Any:
            """Run ``op`` in a savepoint; a refusal by the domain (409/404) rolls back whatever it began."""
            try:
                with conn.begin_nested():
                    return op(*args, **kwargs)
            except (Conflict, NotFound):
                return None

        def pick(self, sql: str, n: int, **params: Any) -> Any:
            """The ``n``-th row (modulo their number) of what ``sql`` finds among this example's children, or
            None: rules act on what exists instead of guessing ids."""
            rows = conn.execute(text(sql), {"kids": [k["id"] for k in self.kids], **params}).all()
            return rows[n % len(rows)] if rows else None

        # --- what people and jobs do ----------------------------------------------------------------------

        @rule(child=st.integers(0, CHILDREN - 1), centre=st.integers(0, CENTRES - 1))
        def apply(self, child: int, centre: int) -> None:
            self.attempt(wl.apply, conn, parent_user_id=self.parents[child], child_id=self.kids[child]["id"],
                         facility_code=sites[centre].code, now=self.now)

        @rule(n=st.integers(0, 50), evidence=st.sampled_from(EVIDENCE))
        def verify(self, n: int, evidence: str) -> None:
            row = self.pick("""SELECT DISTINCT c.child_id, ch.public_id, c.category, e.facility_id FROM claims c
                               JOIN children ch ON ch.id = c.child_id JOIN waitlist_entries e ON e.child_id = c.child_id
                               AND e.status IN ('waiting', 'offered') WHERE c.child_id = ANY(:kids)
                               ORDER BY 1, 3, 4""", n)
            if row is not None:
                self.attempt(wl.set_evidence, conn, facility_id=row.facility_id, child_public_id=row.public_id,
                             category=row.category, evidence=evidence, actor_user_id=None, now=self.now)

        @property
        def year(self) -> int:
            return childcare_year(self.now.astimezone(SEOUL).date())

        def queue_of(self, n: int) -> Any:
            """The ``n``-th queue of this 보육연도 with a waiting entry."""
            rows = conn.execute(text("""SELECT DISTINCT facility_id, age_class FROM waitlist_entries
                                        WHERE child_id = ANY(:kids) AND status = 'waiting' AND year = :y
                                        ORDER BY 1, 2"""), {"kids": [k["id"] for k in self.kids], "y": self.year}).all()
            return rows[n % len(rows)] if rows else None

        @rule(n=st.integers(0, 50))
        def offer(self, n: int) -> None:
            row = self.queue_of(n)
            if row is not None:
                self.attempt(wl.offer_next, conn, facility_id=row.facility_id, age_class=row.age_class,
                             actor_user_id=None, now=self.now)

        def answer(self, n: int, op: Any) -> None:
            row = self.pick("""SELECT o.id, ch.parent_user_id FROM waitlist_offers o JOIN children ch
                               ON ch.id = o.child_id WHERE o.child_id = ANY(:kids) AND o.status = 'open'
                               ORDER BY o.id""", n)
            if row is not None:
                self.attempt(op, conn, parent_user_id=row.parent_user_id, offer_id=row.id, now=self.now)

        @rule(n=st.integers(0, 50))
        def accept(self, n: int) -> None:
            self.answer(n, wl.accept)

        @rule(n=st.integers(0, 50))
        def decline(self, n: int) -> None:
            self.answer(n, wl.decline)

        @rule(n=st.integers(0, 50), m=st.integers(0, 50), answer=st.sampled_from(("accept", "decline", "none")),
              checked=st.booleans())
        def offer_then_answer(self, n: int, m: int, answer: str, checked: bool) -> None:
            """Staff offer a place and a parent may answer an open offer at once (offers are otherwise rarely
            answered: most expire before a random sequence gets to them)."""
            if checked:  # staff check the claims of the queue's children first
                row = self.queue_of(n)
                claims = [] if row is None else conn.execute(text("""
                    SELECT DISTINCT ch.public_id, c.category FROM waitlist_entries e JOIN children ch
                    ON ch.id = e.child_id JOIN claims c ON c.child_id = e.child_id WHERE e.facility_id = :f
                    AND e.age_class = :a AND e.year = :y AND e.status = 'waiting' AND c.evidence = 'claimed'
                    ORDER BY 1, 2"""), {"f": row.facility_id, "a": row.age_class, "y": self.year}).all()
                for c in claims:
                    self.attempt(wl.set_evidence, conn, facility_id=row.facility_id, child_public_id=c.public_id,
                                 category=c.category, evidence="verified_centre", actor_user_id=None, now=self.now)
            self.offer(n)
            if answer != "none":
                self.answer(m, wl.accept if answer == "accept" else wl.decline)

        def entry(self, n: int, status: str) -> Any:
            """The ``n``-th entry in ``status`` (``active``: waiting or offered, ``any``: all)."""
            wanted = {"active": ["waiting", "offered"], "any": list(STATUSES)}.get(status, [status])
            return self.pick("""SELECT e.public_id, ch.parent_user_id FROM waitlist_entries e
                                JOIN children ch ON ch.id = e.child_id WHERE e.child_id = ANY(:kids)
                                AND e.status = ANY(:s) ORDER BY e.id""", n, s=wanted)

        def offered(self) -> bool:
            return conn.execute(text("SELECT count(*) FROM waitlist_entries WHERE child_id = ANY(:kids) "
                                     "AND status = 'offered'"), {"kids": [k["id"] for k in self.kids]}).scalar_one() > 0

        @precondition(offered)
        @rule(n=st.integers(0, 50), status=st.sampled_from(CORRECTIONS))
        def correct_offered(self, n: int, status: str) -> None:
            """An administrator corrects an entry on offer (rare by chance: offers are answered or expire)."""
            self.correct(n, "offered", status)

        @precondition(offered)
        @rule(n=st.integers(0, 50), how=st.sampled_from(("accept", "decline", "withdraw", "keep")))
        def answer_offered(self, n: int, how: str) -> None:
            """A parent with an offer accepts, declines, withdraws the entry or keeps it."""
            if how in ("accept", "decline"):
                self.answer(n, wl.accept if how == "accept" else wl.decline)
            elif how == "withdraw":
                self.withdraw(n, "offered")
            else:
                self.keep(n, "offered")

        def pending_lapse(self) -> bool:
            return conn.execute(text("SELECT count(*) FROM waitlist_entries WHERE child_id = ANY(:kids) "
                                     "AND status = 'waiting' AND lapse_at IS NOT NULL"),
                                {"kids": [k["id"] for k in self.kids]}).scalar_one() > 0

        @precondition(pending_lapse)
        @rule(n=st.integers(0, 50))
        def offer_late_in_the_keep_window(self, n: int) -> None:
            """An hour before an entry of an admitted child lapses, its centre offers a place to the queue it
            heads (the offer then runs past the lapse date)."""
            rows = conn.execute(text("""SELECT id, facility_id, year, age_class, lapse_at FROM waitlist_entries
                                        WHERE child_id = ANY(:kids) AND status = 'waiting' AND lapse_at IS NOT NULL
                                        ORDER BY id"""), {"kids": [k["id"] for k in self.kids]}).all()
            heads = [r for r in rows if r.year == childcare_year((r.lapse_at - timedelta(hours=1)).astimezone(SEOUL)
                                                                 .date())
                     and wl.free_places(conn, r.facility_id, r.age_class) > 0
                     and [q.entry_id for q in wl.queue(conn, r.facility_id, year=r.year, age_class=r.age_class,
                                                       statuses=("waiting",))][:1] == [r.id]]
            if heads:
                row = heads[n % len(heads)]
                self.now = max(self.now, row.lapse_at - timedelta(hours=1))
                self.attempt(wl.offer_next, conn, facility_id=row.facility_id, age_class=row.age_class,
                             actor_user_id=None, now=self.now)

        @rule(n=st.integers(0, 50), which=st.sampled_from(("admitted", "any")), status=st.sampled_from(CORRECTIONS))
        def correct(self, n: int, which: str, status: str) -> None:
            row = self.entry(n, which)
            if row is not None:
                self.attempt(wl.correct, conn, entry_public_id=row.public_id, status=status,
                             reason="stateful test", actor_user_id=self.admin, now=self.now)

        @rule(n=st.integers(0, 50), which=st.sampled_from(("offered", "active")))
        def withdraw(self, n: int, which: str) -> None:
            row = self.entry(n, which)
            if row is not None:
                self.attempt(wl.withdraw, conn, parent_user_id=row.parent_user_id, entry_public_id=row.public_id,
                             now=self.now)

        @rule(n=st.integers(0, 50), which=st.sampled_from(("offered", "active")))
        def keep(self, n: int, which: str) -> None:
            row = self.entry(n, which)
            if row is not None:
                self.attempt(wl.keep_entries, conn, parent_user_id=row.parent_user_id,
                             entry_public_id=row.public_id, now=self.now)

        @precondition(lambda self: not self.year_ended)
        @rule(n=st.integers(0, 50))
        def renew(self, n: int) -> None:
            row = self.entry(n, "waiting")
            if row is not None:
                self.attempt(wl.renew, conn, parent_user_id=row.parent_user_id, entry_public_id=row.public_id,
                             now=self.now)

        @rule(hours=st.sampled_from((1, 24, 24 * RULES.offer_days + 1, 24 * (RULES.keep_other_entries_days - 1),
                                     24 * RULES.keep_other_entries_days + 1)))
        def expire(self, hours: int) -> None:
            self.now += timedelta(hours=hours)
            if self.attempt(wl.expire_offers, conn, now=self.now) is not None:
                self.expired_at = self.now

        @precondition(lambda self: not self.year_ended)
        @rule()
        def year_end(self) -> None:
            self.now = max(self.now, YEAR_END)
            self.year_ended = True
            self.attempt(wl.drop_unrenewed, conn, year=2027, now=self.now)

        # --- what must always hold --------------------------------------------------------------------------

        @invariant()
        def one_live_offer_per_child_and_offered_means_an_open_offer(self) -> None:
            rows = conn.execute(text("""SELECT e.id, e.status, e.child_id,
                                               count(o.id) FILTER (WHERE o.status = 'open') AS open_offers
                                        FROM waitlist_entries e LEFT JOIN waitlist_offers o ON o.entry_id = e.id
                                        GROUP BY e.id""")).all()
            for r in rows:
                assert r.open_offers == (1 if r.status == "offered" else 0), r
            live = Counter(r.child_id for r in rows if r.status == "offered")
            assert all(n == 1 for n in live.values()), live

        @invariant()
        def nothing_active_past_its_lapse_date_after_the_job(self) -> None:
            if self.expired_at is not None:
                late = conn.execute(text("""SELECT public_id, status FROM waitlist_entries WHERE child_id = ANY(:k)
                                            AND status IN ('waiting', 'offered') AND lapse_at <= :at"""),
                                    {"k": [k["id"] for k in self.kids], "at": self.expired_at}).all()
                assert late == [], late

        @invariant()
        def one_admission_per_child(self) -> None:
            admitted = Counter(conn.execute(text("SELECT child_id FROM waitlist_entries WHERE status = 'admitted'"))
                               .scalars().all())
            assert all(n == 1 for n in admitted.values()), admitted
            accepted = conn.execute(text("""SELECT count(*) FROM waitlist_entries e WHERE e.status = 'admitted'
                                            AND NOT EXISTS (SELECT 1 FROM waitlist_offers o WHERE o.entry_id = e.id
                                                            AND o.status = 'accepted')""")).scalar_one()
            assert accepted == 0

        @invariant()
        def every_seat_free_offered_or_taken(self) -> None:
            if not self.capacity:
                return
            for site in sites:
                free = conn.execute(text("SELECT free_by_age FROM facilities WHERE id = :f"),
                                    {"f": site.id}).scalar_one()
                for age in AGES:
                    taken, offered = conn.execute(text("""
                        SELECT (SELECT count(*) FROM waitlist_entries WHERE facility_id = :f AND age_class = :a
                                AND status = 'admitted'),
                               (SELECT count(*) FROM waitlist_offers WHERE facility_id = :f AND age_class = :a
                                AND status = 'open')"""), {"f": site.id, "a": int(age)}).one()
                    assert free[age] + taken == self.capacity[(site.id, age)], (site.code, age, free, taken)
                    assert 0 <= offered <= free[age], (site.code, age, free, offered)

        @invariant()
        def ranks_without_gaps_and_as_the_chain_says(self) -> None:
            keys = conn.execute(text("""SELECT f.id, f.code, e.year, e.age_class, count(*) AS n
                                        FROM waitlist_entries e JOIN facilities f ON f.id = e.facility_id
                                        WHERE e.status IN ('waiting', 'offered')
                                        GROUP BY f.id, f.code, e.year, e.age_class""")).all()
            for k in keys:
                public = wl.public_queue(conn, k.code, year=k.year, age_class=k.age_class)
                assert [p["rank"] for p in public] == list(range(1, k.n + 1))
                order = [q.ranked.public_id for q in wl.queue(conn, k.id, year=k.year, age_class=k.age_class)]
                last = conn.execute(text("""SELECT event->'order' FROM waitlist_chain WHERE facility_id = :f
                                            AND event->>'type' = 'rank' AND (event->>'year')::int = :y
                                            AND (event->>'age_class')::int = :a ORDER BY seq DESC LIMIT 1"""),
                                    {"f": k.id, "y": k.year, "a": k.age_class}).scalar_one()
                assert last == order, (k, last, order)

        @invariant()
        def chains_verify(self) -> None:
            for site in sites:
                assert wl.verify_centre(conn, site.id) == []

        @invariant()
        def the_tables_are_the_replay_of_the_logs(self) -> None:
            assert differences(conn, [site.id for site in sites]) == []

    return Waitlist


def test_the_waitlist_keeps_its_invariants_under_random_use(conn: Connection,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    ids = CountedIds()
    for module in ("geo.admission.children", "geo.admission.lifecycle"):
        monkeypatch.setattr(f"{module}.new_id", ids)
    run_state_machine_as_test(_machine(conn, ids), settings=settings(
        max_examples=20, stateful_step_count=40, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
