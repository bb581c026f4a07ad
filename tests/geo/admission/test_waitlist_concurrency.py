"""Concurrency on the real PostGIS, each worker on its own connection and transaction: 100 applications to one
centre give a strict, gap-free, deterministic ranking and an intact chain; an offer is accepted once; two staff
cannot offer the same free place twice."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from geo.admission import waitlist as wl
from geo.admission.projection import differences
from geo.errors import Conflict
from tests.geo.admission.waitutil import NOW, parent, set_free

WORKERS = 25  # connections at once (the local cluster allows 100 in all)


@pytest.fixture(scope="module")
def db(make_database) -> Engine:
    """A committed database with one centre."""
    engine = make_database("waitlist_concurrency")
    with engine.begin() as conn:
        conn.execute(text("""INSERT INTO facilities (code, name, facility_type, status, geocode_quality, source,
                                                     geom_4326, free_by_age)
                             VALUES ('T0001', '동시성 어린이집', '국공립', 'active', 'exact', 'test',
                                     ST_SetSRID(ST_MakePoint(126.98, 37.57), 4326), '{"0": 1}')"""))
    return engine


def _run_together(engine: Engine, jobs: list[Callable[[Any], Any]]) -> list[Any]:
    """Run each job in its own transaction on its own connection, released together by a barrier."""
    worker_engine = create_engine(engine.url, pool_size=WORKERS, max_overflow=0)
    barrier = threading.Barrier(min(WORKERS, len(jobs)))

    def run(job: Callable[[Any], Any]) -> Any:
        with worker_engine.connect() as conn:
            try:
                barrier.wait(timeout=30)
            except threading.BrokenBarrierError:
                pass  # the last partial batch
            with conn.begin():
                try:
                    return job(conn)
                except Conflict as exc:
                    return exc
    try:
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            return list(pool.map(run, jobs))
    finally:
        worker_engine.dispose()


def test_hundred_simultaneous_applications_rank_strictly(db: Engine) -> None:
    with db.begin() as conn:
        facility_id = conn.execute(text("SELECT id FROM facilities WHERE code = 'T0001'")).scalar_one()
        kids = []
        for i in range(100):
            uid = parent(conn, f"c{i}@example.kr")
            claims = ("dual_income",) if i % 3 == 0 else ()
            kid = wl.register_child(conn, parent_user_id=uid, name=f"아이{i}", birth_date=date(2025, 4, 1),
                                    claims=claims, now=NOW)
            kids.append((uid, kid["id"]))
    # Half the applications share one instant: the published tie-break must order them.
    jobs = [(lambda conn, uid=uid, cid=cid, i=i: wl.apply(  # type: ignore[misc]
        conn, parent_user_id=uid, child_id=cid, facility_code="T0001",
        now=NOW if i % 2 else NOW + timedelta(microseconds=i)))
        for i, (uid, cid) in enumerate(kids)]
    results = _run_together(db, jobs)
    assert not [r for r in results if isinstance(r, Exception)]
    with db.connect() as conn:
        ranked = [q.ranked.public_id for q in wl.queue(conn, facility_id, year=2026, age_class=0)]
        rows = conn.execute(text("""SELECT e.public_id, e.applied_at, count(c.id) FILTER (WHERE c.category IS NOT NULL)
                                    AS n FROM waitlist_entries e LEFT JOIN claims c ON c.child_id = e.child_id
                                    WHERE e.facility_id = :f GROUP BY e.id"""), {"f": facility_id}).all()
        public = wl.public_queue(conn, "T0001", year=2026, age_class=0)
        problems = wl.verify_centre(conn, facility_id)
        seqs = conn.execute(text("SELECT seq FROM waitlist_chain WHERE facility_id = :f ORDER BY seq"),
                            {"f": facility_id}).scalars().all()
    # Independent order: 맞벌이 first (tier 1), then application time, then SHA-256("2026:<id>").
    expected = [r.public_id for r in sorted(rows, key=lambda r: (0 if r.n else 1, r.applied_at,
                                                                 hashlib.sha256(f"2026:{r.public_id}".encode())
                                                                 .hexdigest()))]
    assert len(ranked) == 100 and ranked == expected
    assert [p["rank"] for p in public] == list(range(1, 101))
    # The first application logged the rule table; each appended two links (apply + rank) without a gap or a fork,
    # and the replay of the log is the live queue.
    assert seqs == list(range(1, 202)) and problems == []
    with db.connect() as conn:
        assert differences(conn, [facility_id]) == []


def test_one_offer_accepted_once_and_one_place_offered_once(db: Engine) -> None:
    with db.begin() as conn:
        facility_id = conn.execute(text("SELECT id FROM facilities WHERE code = 'T0001'")).scalar_one()
        set_free(conn, facility_id, {"1": 1})
        for i in range(3):
            uid = parent(conn, f"o{i}@example.kr")
            kid = wl.register_child(conn, parent_user_id=uid, name="형", birth_date=date(2024, 4, 1), now=NOW)
            wl.apply(conn, parent_user_id=uid, child_id=kid["id"], facility_code="T0001", now=NOW)
    # Two staff press "offer" for the one free 1세 place at the same moment.
    offers = _run_together(db, [lambda conn: wl.offer_next(conn, facility_id=facility_id, age_class=1,
                                                           actor_user_id=None, now=NOW)] * 2)
    made = [o for o in offers if not isinstance(o, Exception)]
    refused = [o for o in offers if isinstance(o, Conflict)]
    assert len(made) == 1 and len(refused) == 1 and "no free place" in str(refused[0])
    offer = made[0]["offer"]
    with db.connect() as conn:
        owner = conn.execute(text("""SELECT ch.parent_user_id FROM waitlist_offers o JOIN children ch
                                     ON ch.id = o.child_id WHERE o.id = :o"""), {"o": offer["id"]}).scalar_one()
    # The parent's two devices accept at the same moment: one wins, one gets a conflict.
    answers = _run_together(db, [lambda conn: wl.accept(conn, parent_user_id=owner, offer_id=offer["id"],
                                                        now=NOW)] * 2)
    assert sorted(type(a).__name__ for a in answers) == ["Conflict", "dict"]
    with db.connect() as conn:
        admitted = conn.execute(text("SELECT count(*) FROM waitlist_entries WHERE status = 'admitted'")).scalar_one()
        free = conn.execute(text("SELECT free_by_age FROM facilities WHERE id = :f"),
                            {"f": facility_id}).scalar_one()
        assert wl.verify_centre(conn, facility_id) == []
    assert admitted == 1 and free["1"] == 0


def test_two_centres_offering_one_child_at_once_give_one_live_offer(db: Engine) -> None:
    with db.begin() as conn:
        ids = []
        for code in ("T0010", "T0011"):
            ids.append(conn.execute(text("""INSERT INTO facilities (code, name, facility_type, status,
                                                geocode_quality, source, geom_4326, free_by_age)
                                            VALUES (:c, '경합 어린이집', '국공립', 'active', 'exact', 'test',
                                                    ST_SetSRID(ST_MakePoint(126.98, 37.57), 4326), '{"2": 1}')
                                            RETURNING id"""), {"c": code}).scalar_one())
        uid = parent(conn, "both@example.kr")
        kid = wl.register_child(conn, parent_user_id=uid, name="셋째", birth_date=date(2023, 4, 1), now=NOW)
        for code in ("T0010", "T0011"):
            wl.apply(conn, parent_user_id=uid, child_id=kid["id"], facility_code=code, now=NOW)
    results = _run_together(db, [lambda conn, f=f: wl.offer_next(conn, facility_id=f, age_class=2,  # type: ignore[misc]
                                                                 actor_user_id=None, now=NOW) for f in ids])
    made = [r["offer"] for r in results if r["offer"] is not None]
    skipped = [s["reason"] for r in results for s in r["skipped"]]
    assert len(made) == 1 and skipped == ["the child holds a live offer elsewhere"]
    with db.connect() as conn:
        live = conn.execute(text("SELECT count(*) FROM waitlist_offers WHERE child_id = :c AND status = 'open'"),
                            {"c": kid["id"]}).scalar_one()
    assert live == 1
