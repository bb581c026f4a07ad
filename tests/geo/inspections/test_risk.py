"""The risk list of a 구 on the real Seoul centres (마포구): every score is the sum of its named components, and
each reason appears for the facts behind it: no or stale vacancy report, figures over 정원 or the class ratios,
complaints of the last year (not older), open and overdue findings, time since the last visit."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from psycopg.types.json import Jsonb
from sqlalchemy import Connection, Engine, text

from geo.inspections import register as ins
from geo.inspections.checklist import checklist, checklist_sha256
from geo.inspections.risk import WEIGHTS, planning_list, ratio_component
from geo.vacancy.reports import VacancyReportIn, submit_report

MAPO = "11440"
NOW = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)


@pytest.fixture()
def conn(seoul_engine: Engine, connection: Connection) -> Connection:
    """The rolled-back connection on the database with the real Seoul centres."""
    return connection


def centre(conn: Connection, n: int = 0) -> Any:
    """The ``n``-th operating 마포구 centre with 0세 classes (code order)."""
    return conn.execute(text("""SELECT id, code, capacity, classes_by_age FROM facilities
                                WHERE district_code = :d AND status = 'active' AND capacity >= 20
                                  AND (classes_by_age->>'0')::int >= 1 ORDER BY code OFFSET :n LIMIT 1"""),
                        {"d": MAPO, "n": n}).one()


def officer(conn: Connection) -> int:
    return int(conn.execute(text("INSERT INTO users (email, password_hash, role, district_code) VALUES "
                                 "('risk@example.go.kr', 'x', 'district_officer', :d) RETURNING id"),
                            {"d": MAPO}).scalar_one())


def codes_of(entry: Any) -> dict[str, Any]:
    return {c.code: c for c in entry.components}


def test_every_score_is_the_sum_of_its_components_and_ranks_follow_scores(conn: Connection) -> None:
    ranked = planning_list(conn, MAPO, stale_after_days=7, now=NOW)
    operating = conn.execute(text("SELECT count(*) FROM facilities WHERE district_code = :d "
                                  "AND status IN ('active', 'reopened')"), {"d": MAPO}).scalar_one()
    assert len(ranked) == operating > 100
    assert [r.rank for r in ranked] == list(range(1, len(ranked) + 1))
    for r in ranked:
        assert r.score == sum(c.points for c in r.components)
        assert set(codes_of(r)) >= {"vacancy_missing", "never_visited"}  # nobody reported or was visited yet
    assert [(-r.score, r.code) for r in ranked] == sorted((-r.score, r.code) for r in ranked)


def test_figures_over_capacity_or_the_class_ratios_are_named(conn: Connection) -> None:
    c = centre(conn)
    classes = {k: int(v or 0) for k, v in c.classes_by_age.items()}
    too_many = classes["0"] * 3 + 1
    part = ratio_component(capacity=c.capacity, enrolled_by_age={"0": too_many}, classes_by_age=classes)
    assert part is not None and part.code == "class_ratio"
    assert part.facts == {"group": "0", "enrolled": too_many, "limit": classes["0"] * 3}
    over = ratio_component(capacity=c.capacity, enrolled_by_age={"4": c.capacity + 1}, classes_by_age=classes)
    assert over is not None and over.code == "over_capacity" and over.facts["capacity"] == c.capacity
    assert ratio_component(capacity=c.capacity, enrolled_by_age={"0": 1}, classes_by_age=classes) is None
    conn.execute(text("UPDATE facilities SET enrolled_by_age = :e WHERE id = :f"),
                 {"e": Jsonb({"0": too_many}), "f": c.id})
    entry = next(r for r in planning_list(conn, MAPO, stale_after_days=7, now=NOW) if r.code == c.code)
    assert codes_of(entry)["class_ratio"].points == WEIGHTS["class_ratio"]


def test_how_many_real_centres_break_the_ratios_by_their_official_figures(conn: Connection) -> None:
    """The official snapshot's own figures: whatever number breaks them, each one is named with its facts."""
    ranked = planning_list(conn, MAPO, stale_after_days=7, now=NOW)
    breaking = [r for r in ranked if {"over_capacity", "class_ratio"} & set(codes_of(r))]
    for r in breaking:
        part = codes_of(r).get("over_capacity") or codes_of(r)["class_ratio"]
        assert part.facts and all(v is not None for k, v in part.facts.items() if k != "enrolled")


def test_reports_complaints_findings_and_visits_move_a_centre(conn: Connection) -> None:
    c, peer = centre(conn, 0), centre(conn, 1)
    me = officer(conn)
    before = {r.code: r for r in planning_list(conn, MAPO, stale_after_days=7, now=NOW)}
    # A fresh vacancy report removes "never reported"; one 30 days old is stale.
    submit_report(conn, facility_code=c.code, report=VacancyReportIn(enrolled_by_age={"0": 1}, free_by_age={}),
                  author_user_id=None)
    conn.execute(text("UPDATE vacancy_reports SET reported_at = :at WHERE facility_id = :f"),
                 {"at": NOW - timedelta(days=30), "f": c.id})
    # Two complaints this year count; one from two years ago does not.
    for days in (3, 40, 800):
        ins.add_complaint(conn, facility_code=c.code, received_at=NOW - timedelta(days=days), summary="민원",
                          source="phone", actor_user_id=me)
    after = codes_of(next(r for r in planning_list(conn, MAPO, stale_after_days=7, now=NOW) if r.code == c.code))
    assert "vacancy_missing" not in after and after["vacancy_stale"].facts == {"days": 30}
    assert after["complaints"].facts["count"] == 2 and after["complaints"].points == 2 * WEIGHTS["complaints"]
    # A visit with a violation: visited now (no "never visited"), one open finding; its order runs late.
    planned = ins.plan(conn, facility_code=c.code, planned_for=date(2026, 12, 7), actor_user_id=me, now=NOW)
    assert planned["checklist_version"] == checklist().version
    assert planned["checklist_sha256"] == checklist_sha256(checklist().version)
    listed = {r.code: r for r in planning_list(conn, MAPO, stale_after_days=7, now=NOW)}
    assert listed[c.code].planned == planned["id"] and listed[peer.code].planned is None
    visited = ins.record_visit(conn, planned["id"], results={"cctv": ("violation", "보육실 CCTV 고장")},
                               actor_user_id=me, now=NOW)
    finding = visited["findings"][0]
    assert finding["item_code"] == "cctv" and finding["status"] == "open"
    assert [i["result"] for i in visited["items"]].count("not_checked") == len(checklist().items) - 1
    ins.order(conn, finding["id"], order_text="수리 후 보고", deadline=date(2026, 12, 10), actor_user_id=me,
              now=NOW)
    later = NOW + timedelta(days=5)
    assert ins.mark_overdue(conn, now=later, district_code=MAPO) == [finding["id"]]
    final = next(r for r in planning_list(conn, MAPO, stale_after_days=7, now=later) if r.code == c.code)
    parts = codes_of(final)
    assert "never_visited" not in parts
    assert parts["open_findings"].facts["count"] == 1 and parts["overdue_findings"].facts["count"] == 1
    assert final.score > before[c.code].score
    assert final.rank < before[c.code].rank or final.rank == 1
