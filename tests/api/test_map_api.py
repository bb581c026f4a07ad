"""The map's own JSON: the signed-in parent's applications (rank, status, centre point; nothing for others; never
cached; read-only), a centre's public queue lengths, and the staleness limit."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Connection, text

from api.deps import get_session, get_write_tx
from geo.admission import waitlist as wl
from geo.admission.rules import childcare_year
from geo.auth.accounts import create_user
from geo.settings import Settings
from tests.accounts_util import make_cast
from tests.api.test_waitlist_api import _tx_session_on
from tests.booking_util import verify
from tests.dbutil import client_on


def test_map_applications_queues_and_config(settings: Settings, conn: Connection) -> None:
    cast = make_cast(conn, settings, verified_parent=True)
    client = client_on(settings, conn)
    for dependency in (get_session, get_write_tx):
        client.app.dependency_overrides[dependency] = _tx_session_on(conn)  # type: ignore[attr-defined]
    born = date(childcare_year(date.today()) - 1, 6, 1)  # 0세반 this year
    other = create_user(conn, email="other-map@example.kr", password="correct horse battery staple", role="parent")
    verify(conn, other, name="다른부모")
    first = wl.register_child(conn, parent_user_id=other, name="먼저", birth_date=born, claims=[])
    wl.apply(conn, parent_user_id=other, child_id=first["id"], facility_code=cast.own.code)
    child = wl.register_child(conn, parent_user_id=cast.ids["parent"], name="하늘", birth_date=born, claims=[])
    wl.apply(conn, parent_user_id=cast.ids["parent"], child_id=child["id"], facility_code=cast.own.code)

    anonymous = client.get("/map/applications")
    assert anonymous.status_code == 200 and anonymous.json() == {"signed_in": False, "applications": []}
    assert anonymous.headers["cache-control"] == "no-store"
    staff = client.get("/map/applications", headers=cast.headers["staff"]).json()
    assert staff == {"signed_in": True, "applications": []}
    seen_before = conn.execute(text("SELECT count(*) FROM waitlist_rank_views")).scalar_one()
    mine = client.get("/map/applications", headers=cast.headers["parent"])
    assert mine.status_code == 200 and mine.headers["cache-control"] == "no-store"
    (app,) = mine.json()["applications"]
    point = conn.execute(text("SELECT id, ST_X(geom_4326), ST_Y(geom_4326) FROM facilities WHERE code = :c"),
                         {"c": cast.own.code}).one()
    assert (app["centre"], app["facility_id"], app["child_name"], app["age_class"], app["status"], app["rank"],
            app["of"]) == (cast.own.code, point[0], "하늘", 0, "waiting", 2, 2)
    assert (round(app["lon"], 6), round(app["lat"], 6)) == (round(point[1], 6), round(point[2], 6))
    # Read-only: the applications page's "what changed since you last looked" is not used up by the map.
    assert conn.execute(text("SELECT count(*) FROM waitlist_rank_views")).scalar_one() == seen_before

    queues = client.get(f"/map/centres/{cast.own.code}/queues")
    assert queues.status_code == 200
    assert queues.json()["by_age"] == {"0": 2} and queues.json()["year"] == childcare_year(date.today())
    assert client.get("/map/centres/NO-SUCH-CENTRE/queues").status_code == 404

    assert client.get("/map/config").json() == {"vacancy_stale_days": settings.vacancy.stale_days}
