"""Emergency care: nearest centres with a free place now (distances checked against pyproj's geodesic), and the
first-come acceptance of a request by concurrent centres."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from pyproj import Geod
from sqlalchemy import Connection, Engine, text

from geo.booking import bookings, emergency
from geo.db import make_engine
from geo.errors import Conflict, Forbidden
from tests.booking_util import ORIGIN_LAT, ORIGIN_LON, make_centre, make_slot, make_user

GEOD = Geod(ellps="WGS84")


def _distance_m(lon: float, lat: float) -> float:
    return float(GEOD.inv(ORIGIN_LON, ORIGIN_LAT, lon, lat)[2])


def test_nearest_centres_with_a_free_place_now(connection: Connection) -> None:
    # Five centres east of the origin at growing distances; each gets a slot of its own kind.
    points = {f"T-EM-{i}": (ORIGIN_LON + 0.004 * i, ORIGIN_LAT + 0.001 * i) for i in range(1, 6)}
    ids = {code: make_centre(connection, code, lon=lon, lat=lat) for code, (lon, lat) in points.items()}
    now_slot = {"starts_in": timedelta(hours=-1), "hours": 12.0}
    make_slot(connection, ids["T-EM-1"], places_by_age={"3": 2}, **now_slot)  # no place for age 2
    full = make_slot(connection, ids["T-EM-2"], places_by_age={"2": 1}, **now_slot)  # filled below
    make_slot(connection, ids["T-EM-3"], places_by_age={"2": 2}, **now_slot)
    make_slot(connection, ids["T-EM-4"], places_by_age={"2": 1}, starts_in=timedelta(hours=5))  # not now
    make_slot(connection, ids["T-EM-5"], places_by_age={"2": 1}, **now_slot)
    parent = make_user(connection, "p@example.kr", "parent")
    bookings.book(connection, slot_id=full, parent_user_id=parent, child_age=2, phone="010-1234-5678")
    found = emergency.nearest_free_now(connection, lat=ORIGIN_LAT, lon=ORIGIN_LON, age=2, radius_m=5000)
    test_rows = [r for r in found if r["facility_code"].startswith("T-EM-")]
    assert [r["facility_code"] for r in test_rows] == ["T-EM-3", "T-EM-5"]
    for row in test_rows:
        assert row["distance_m"] == pytest.approx(_distance_m(*points[row["facility_code"]]), rel=1e-3)
        assert row["free_places"] >= 1
    # A radius between the two leaves only the nearer one.
    cut = (_distance_m(*points["T-EM-3"]) + _distance_m(*points["T-EM-5"])) / 2
    nearer = emergency.nearest_free_now(connection, lat=ORIGIN_LAT, lon=ORIGIN_LON, age=2, radius_m=cut)
    assert [r["facility_code"] for r in nearer if r["facility_code"].startswith("T-EM-")] == ["T-EM-3"]


def test_request_lists_nearby_centres_and_refuses_far_ones(connection: Connection) -> None:
    near = make_centre(connection, "T-EMR-1", lon=ORIGIN_LON + 0.002, lat=ORIGIN_LAT)
    far = make_centre(connection, "T-EMR-2", lon=ORIGIN_LON + 0.2, lat=ORIGIN_LAT)
    plain = make_centre(connection, "T-EMR-3", lon=ORIGIN_LON + 0.001, lat=ORIGIN_LAT, services=("general",))
    parent = make_user(connection, "p@example.kr", "parent")
    staff = make_user(connection, "s@example.kr", "centre_staff", (near, far, plain))
    request = emergency.create_request(connection, parent_user_id=parent, lat=ORIGIN_LAT, lon=ORIGIN_LON,
                                       child_age=2, phone="010-1234-5678", lang="zh", radius_m=1000)
    codes = [c["code"] for c in request["centres"]]
    assert "T-EMR-1" in codes and "T-EMR-2" not in codes and "T-EMR-3" not in codes
    assert [r["id"] for r in emergency.open_requests_near(connection, facility_id=near)] == [request["id"]]
    assert emergency.open_requests_near(connection, facility_id=far) == []
    for facility in (far, plain):
        with pytest.raises(Forbidden):
            emergency.accept(connection, request_id=request["id"], facility_id=facility, actor_user_id=staff)
    accepted = emergency.accept(connection, request_id=request["id"], facility_id=near, actor_user_id=staff)
    assert accepted["status"] == "accepted" and accepted["accepted_facility_code"] == "T-EMR-1"
    body = connection.execute(text("SELECT body FROM notification_outbox WHERE idempotency_key = :k"),
                              {"k": f"emergency:{request['id']}:accepted"}).scalar_one()
    assert "紧急" in body and "테스트어린이집T-EMR-1" in body


@pytest.fixture(scope="module")
def emergency_engine(make_database) -> Engine:  # type: ignore[no-untyped-def]
    """A database of its own: concurrent acceptances need committed rows."""
    return make_database("booking_emergency")  # type: ignore[no-any-return]


def test_first_acceptance_wins_among_concurrent_centres(emergency_engine: Engine) -> None:
    n = 8
    with emergency_engine.begin() as conn:
        centres = [make_centre(conn, f"T-EMC-{i}", lon=ORIGIN_LON + 0.001 * i, lat=ORIGIN_LAT) for i in range(n)]
        staff = [make_user(conn, f"s{i}@example.kr", "centre_staff", (c,)) for i, c in enumerate(centres)]
        parent = make_user(conn, "p@example.kr", "parent")
        request = emergency.create_request(conn, parent_user_id=parent, lat=ORIGIN_LAT, lon=ORIGIN_LON,
                                           child_age=2, phone="010-1234-5678", lang="ko", radius_m=3000)
    engine = make_engine(emergency_engine.url.render_as_string(hide_password=False), pool_size=n + 2)
    barrier = threading.Barrier(n)
    results: list[str] = []
    lock = threading.Lock()

    def accept(i: int) -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            conn.rollback()
            barrier.wait()
            try:
                with conn.begin():
                    emergency.accept(conn, request_id=request["id"], facility_id=centres[i], actor_user_id=staff[i])
                outcome = f"won:{i}"
            except Conflict:
                outcome = "taken"
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=accept, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.dispose()
    winners = [r for r in results if r.startswith("won:")]
    assert len(winners) == 1 and results.count("taken") == n - 1
    with emergency_engine.connect() as conn:
        row = conn.execute(text("SELECT accepted_facility_id FROM emergency_requests WHERE id = :id"),
                           {"id": request["id"]}).one()
        messages = conn.execute(text("SELECT count(*) FROM notification_outbox")).scalar_one()
        audits = conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'emergency.accept'")).scalar_one()
    assert row.accepted_facility_id == centres[int(winners[0].split(":")[1])]
    assert messages == 1 and audits == 1
