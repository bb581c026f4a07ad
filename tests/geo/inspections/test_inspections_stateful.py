"""Random sequences of what officers and centre staff do to inspections and findings (plan, visit against the
checklist, cancel, record a finding, order, answer, the deadline passing on an injected clock, reopen, close),
and random illegal events, on the real database with a real Seoul centre; after every step:

- every inspection and finding holds the state the model (the spec below, written independently of
  ``geo.inspections.states.TABLE``) expects, and every refused event was one the model refuses (409);
- each entity's stored transitions chain (``from`` of one is ``to`` of the one before, starting at ``new``) and
  end at its current state; each has exactly one ``audit_log`` row;
- a closed inspection has only closed findings; an overdue finding's deadline is over; a visited inspection has a
  result for every checklist item.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import Connection, Engine, text

from geo.domain import SEOUL_TZ
from geo.errors import IllegalTransition
from geo.inspections import register as ins
from geo.inspections.checklist import checklist

NOW = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
ITEMS = checklist().codes
FINDING_EVENTS = ("order", "answer", "close", "reopen", "deadline_passed")
INSPECTION_EVENTS = ("visit", "cancel", "close")


@pytest.fixture()
def conn(seoul_engine: Engine, connection: Connection) -> Connection:
    """The rolled-back connection on the database with the real Seoul centres."""
    return connection


def _machine(conn: Connection) -> type[RuleBasedStateMachine]:
    centre = conn.execute(text("SELECT id, code, district_code FROM facilities WHERE status = 'active' "
                               "AND district_code IS NOT NULL ORDER BY code LIMIT 1")).one()

    class Inspections(RuleBasedStateMachine):
        """Inspections of one real centre by one officer, answered by one member of staff."""

        def __init__(self) -> None:
            super().__init__()
            self.example = conn.begin_nested()
            self.now = NOW
            self.inspections: dict[int, str] = {}
            self.findings: dict[int, dict[str, Any]] = {}  # id -> {status, inspection, deadline}
            self.officer = self.staff = 0

        def teardown(self) -> None:
            self.example.rollback()

        @initialize()
        def users(self) -> None:
            self.officer = int(conn.execute(text("INSERT INTO users (email, password_hash, role, district_code) "
                                                 "VALUES ('o@example.go.kr', 'x', 'district_officer', :d) "
                                                 "RETURNING id"), {"d": centre.district_code}).scalar_one())
            self.staff = int(conn.execute(text("INSERT INTO users (email, password_hash, role) VALUES "
                                               "('s@example.kr', 'x', 'centre_staff') RETURNING id")).scalar_one())

        @property
        def today(self) -> date:
            return self.now.astimezone(SEOUL_TZ).date()

        def attempt(self, op: Any, *args: Any, **kwargs: Any) -> Any:
            """Run ``op`` in a savepoint; an ``IllegalTransition`` rolls it back and is returned."""
            try:
                with conn.begin_nested():
                    return op(*args, **kwargs)
            except IllegalTransition as exc:
                return exc

        # --- the spec: which events each state allows ------------------------------------------------------

        def inspection_allows(self, inspection_id: int, event: str) -> str | None:
            status = self.inspections[inspection_id]
            if event == "visit":
                return "visited" if status == "planned" else None
            if event == "cancel":
                return "cancelled" if status == "planned" else None
            # close: visited and every finding closed
            open_left = any(f["inspection"] == inspection_id and f["status"] != "closed"
                            for f in self.findings.values())
            return "closed" if status == "visited" and not open_left else None

        def finding_allows(self, finding_id: int, event: str) -> str | None:
            f = self.findings[finding_id]
            status = f["status"]
            allowed = {
                ("open", "order"): "ordered", ("open", "close"): "closed", ("ordered", "answer"): "answered",
                ("overdue", "answer"): "answered", ("answered", "reopen"): "ordered",
                ("answered", "close"): "closed",
            }
            if (status, event) in allowed:
                return allowed[(status, event)]
            if status == "ordered" and event == "deadline_passed" and self.today > f["deadline"]:
                return "overdue"
            return None

        # --- rules ------------------------------------------------------------------------------------------

        @rule(days=st.integers(0, 20))
        def plan(self, days: int) -> None:
            made = ins.plan(conn, facility_code=centre.code, planned_for=self.today + timedelta(days=days),
                            reason="stateful", actor_user_id=self.officer, now=self.now)
            self.inspections[made["id"]] = "planned"

        @rule(n=st.integers(0, 50), event=st.sampled_from(INSPECTION_EVENTS),
              violations=st.sets(st.sampled_from(ITEMS), max_size=3))
        def inspection_event(self, n: int, event: str, violations: set[str]) -> None:
            if not self.inspections:
                return
            inspection_id = sorted(self.inspections)[n % len(self.inspections)]
            expected = self.inspection_allows(inspection_id, event)
            if event == "visit":
                results = {c: ("violation", f"위반 {c}") if c in violations else ("compliant", None) for c in ITEMS}
                got = self.attempt(ins.record_visit, conn, inspection_id, results=results,
                                   actor_user_id=self.officer, now=self.now)
            elif event == "cancel":
                got = self.attempt(ins.cancel, conn, inspection_id, actor_user_id=self.officer, now=self.now)
            else:
                got = self.attempt(ins.close_inspection, conn, inspection_id, actor_user_id=self.officer,
                                   now=self.now)
            if expected is None:
                assert isinstance(got, IllegalTransition), (event, self.inspections[inspection_id], got)
                return
            assert not isinstance(got, IllegalTransition), (event, got.detail)
            self.inspections[inspection_id] = expected
            for finding in got["findings"]:
                self.findings.setdefault(finding["id"], {"status": "open", "inspection": inspection_id,
                                                         "deadline": None})

        @rule(n=st.integers(0, 50), item=st.sampled_from(ITEMS))
        def add_finding(self, n: int, item: str) -> None:
            if not self.inspections:
                return
            inspection_id = sorted(self.inspections)[n % len(self.inspections)]
            got = self.attempt(ins.add_finding, conn, inspection_id, item_code=item, description="추가 지적",
                               actor_user_id=self.officer, now=self.now)
            if self.inspections[inspection_id] != "visited":
                assert isinstance(got, IllegalTransition)
                return
            assert not isinstance(got, IllegalTransition), got.detail
            self.findings[got["id"]] = {"status": "open", "inspection": inspection_id, "deadline": None}

        @rule(n=st.integers(0, 50), event=st.sampled_from(FINDING_EVENTS), days=st.integers(0, 10))
        def finding_event(self, n: int, event: str, days: int) -> None:
            if not self.findings:
                return
            finding_id = sorted(self.findings)[n % len(self.findings)]
            expected = self.finding_allows(finding_id, event)
            deadline = self.today + timedelta(days=days)
            if event == "order":
                got = self.attempt(ins.order, conn, finding_id, order_text="시정하십시오", deadline=deadline,
                                   actor_user_id=self.officer, now=self.now)
            elif event == "answer":
                got = self.attempt(ins.answer, conn, finding_id, answer_text="시정 완료, 사진 첨부",
                                   actor_user_id=self.staff, now=self.now)
            elif event == "close":
                got = self.attempt(ins.close_finding, conn, finding_id, actor_user_id=self.officer, now=self.now)
            elif event == "reopen":
                got = self.attempt(ins.reopen, conn, finding_id, reason="증빙 부족", deadline=deadline,
                                   actor_user_id=self.officer, now=self.now)
            else:
                # The sweep moves every ordered finding past its deadline, not only this one.
                self.sweep()
                return
            if expected is None:
                assert isinstance(got, IllegalTransition), (event, self.findings[finding_id], got)
                return
            assert not isinstance(got, IllegalTransition), (event, got.detail)
            self.findings[finding_id]["status"] = expected
            if event in ("order", "reopen"):
                self.findings[finding_id]["deadline"] = deadline

        @rule(days=st.integers(1, 8))
        def time_passes(self, days: int) -> None:
            self.now += timedelta(days=days)

        @rule()
        def sweep(self) -> None:
            due = {i for i in self.findings if self.finding_allows(i, "deadline_passed") == "overdue"}
            moved = ins.mark_overdue(conn, now=self.now, actor_user_id=None)
            assert set(moved) == due
            for i in due:
                self.findings[i]["status"] = "overdue"

        # --- what must always hold --------------------------------------------------------------------------

        @invariant()
        def states_match_the_spec(self) -> None:
            stored = dict(conn.execute(text("SELECT id, status FROM inspections WHERE facility_id = :f"),
                                       {"f": centre.id}).all())
            assert stored == self.inspections
            found = dict(conn.execute(text("SELECT id, status FROM findings WHERE facility_id = :f"),
                                      {"f": centre.id}).all())
            assert found == {i: f["status"] for i, f in self.findings.items()}

        @invariant()
        def transitions_chain_and_are_audited(self) -> None:
            for kind, entities, table in (("inspection", self.inspections, "inspections"),
                                          ("finding", {i: f["status"] for i, f in self.findings.items()},
                                           "findings")):
                for entity_id, status in entities.items():
                    steps = conn.execute(text("SELECT from_status, to_status FROM inspection_transitions "
                                              "WHERE kind = :k AND entity_id = :i ORDER BY id"),
                                         {"k": kind, "i": entity_id}).all()
                    state = "new"
                    for step in steps:
                        assert step.from_status == state, (kind, entity_id, steps)
                        state = step.to_status
                    assert state == status
                    audited = conn.execute(text("SELECT count(*) FROM audit_log WHERE entity = :t "
                                                "AND entity_id = :i"), {"t": table, "i": str(entity_id)}).scalar_one()
                    assert audited == len(steps)

        @invariant()
        def closed_means_findings_closed_and_overdue_means_late(self) -> None:
            bad = conn.execute(text("""SELECT g.id FROM findings g JOIN inspections i ON i.id = g.inspection_id
                                       WHERE i.facility_id = :f AND i.status = 'closed' AND g.status <> 'closed'"""),
                               {"f": centre.id}).all()
            assert bad == []
            early = conn.execute(text("SELECT id FROM findings WHERE facility_id = :f AND status = 'overdue' "
                                      "AND deadline >= :today"), {"f": centre.id, "today": self.today}).all()
            assert early == []
            missing = conn.execute(text("""SELECT i.id FROM inspections i WHERE i.facility_id = :f
                                           AND i.visited_at IS NOT NULL AND (SELECT count(*) FROM inspection_items t
                                           WHERE t.inspection_id = i.id) <> :n"""),
                                   {"f": centre.id, "n": len(ITEMS)}).all()
            assert missing == []

    return Inspections


def test_inspections_and_findings_follow_the_one_transition_table(conn: Connection) -> None:
    run_state_machine_as_test(_machine(conn), settings=settings(
        max_examples=40, stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
