"""The register of service designations on the real Seoul data: a designation makes the 다문화 filter find a
centre no snapshot marks (the filter found none before), bumps the facilities layer's version (tile ETags change),
ends on its date, is listed as a conflict when the official data lacks it (an import never removes it:
tests/geo/ingest/test_designations_import.py), refuses overlaps and bad input;
languages the staff speak are declared and searchable."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, text

from geo.designations import register as reg
from geo.errors import Conflict, InvalidQuery, NotFound
from geo.search.filters import FacilityFilters
from geo.search.queries import area_search
from geo.settings import Settings

TODAY = date(2026, 12, 6)
S = Settings()


def a_centre(conn: Connection, district: str = "11440") -> Any:
    return conn.execute(text("""SELECT id, code, services, services_imported FROM facilities
                                WHERE district_code = :d AND status = 'active' ORDER BY code LIMIT 1"""),
                        {"d": district}).one()


def multicultural_in_mapo(conn: Connection) -> list[int]:
    page = area_search(conn, settings=S, district="마포구", limit=500,
                       filters=FacilityFilters.parse(services=["multicultural"]))
    return [h.id for h in page.items]


def layer_version(conn: Connection) -> tuple[int, int]:
    row = conn.execute(text("SELECT count(*), coalesce(max(seq), 0) FROM layer_changes WHERE layer = 'facilities'"))
    return tuple(row.one())  # type: ignore[return-value]


def officer(conn: Connection) -> int:
    return int(conn.execute(text("INSERT INTO users (email, password_hash, role, district_code) VALUES "
                                 "('officer@mapo.go.kr', 'x', 'district_officer', '11440') RETURNING id")).scalar_one())


def test_a_designation_makes_the_multicultural_filter_and_the_tiles_change(seoul_engine: Any,
                                                                           conn: Connection) -> None:
    assert multicultural_in_mapo(conn) == []  # no snapshot has a 다문화 field
    centre = a_centre(conn)
    before = layer_version(conn)
    made = reg.designate(conn, facility_code=centre.code, service="multicultural", authority="마포구청",
                         valid_from=TODAY, note="다문화 가족 지원", actor_user_id=officer(conn), today=TODAY)
    assert made["active"] and made["centre"] == centre.code and not made["in_official_data"]
    assert multicultural_in_mapo(conn) == [centre.id]
    assert layer_version(conn) != before  # the facilities layer's tiles get a new version (ETag)
    services = conn.execute(text("SELECT services, services_imported FROM facilities WHERE id = :f"),
                            {"f": centre.id}).one()
    assert "multicultural" in services.services and "multicultural" not in services.services_imported
    assert reg.conflicts(conn, district_code="11440", today=TODAY)[0]["id"] == made["id"]
    audit = conn.execute(text("SELECT action, after FROM audit_log WHERE entity = 'designations' "
                              "AND entity_id = :i"), {"i": str(made["id"])}).one()
    assert audit.action == "designation.create" and audit.after["authority"] == "마포구청"

    ended = reg.end(conn, made["id"], valid_to=TODAY, actor_user_id=None, today=TODAY)
    assert ended["active"]  # valid through its last day
    reg.refresh_services(conn, day=TODAY + timedelta(days=1))
    assert multicultural_in_mapo(conn) == []
    assert [d["id"] for d in reg.register(conn, facility_code=centre.code)] == [made["id"]]  # kept in the register


def test_a_future_designation_holds_from_its_first_day(seoul_engine: Any, conn: Connection) -> None:
    centre = a_centre(conn)
    reg.designate(conn, facility_code=centre.code, service="twenty_four_hour", authority="서울특별시",
                  valid_from=TODAY + timedelta(days=10), actor_user_id=None, today=TODAY)
    has = "SELECT 'twenty_four_hour' = ANY(services) FROM facilities WHERE id = :f"
    assert conn.execute(text(has), {"f": centre.id}).scalar_one() is False
    reg.refresh_services(conn, day=TODAY + timedelta(days=10))  # the daily job on that day
    assert conn.execute(text(has), {"f": centre.id}).scalar_one() is True


def test_overlaps_and_bad_input_are_refused(seoul_engine: Any, conn: Connection) -> None:
    centre = a_centre(conn)
    reg.designate(conn, facility_code=centre.code, service="holiday", authority="마포구청",
                  valid_from=date(2026, 3, 1), valid_to=date(2026, 12, 31), actor_user_id=None, today=TODAY)
    with pytest.raises(Conflict):
        reg.designate(conn, facility_code=centre.code, service="holiday", authority="서울특별시",
                      valid_from=date(2026, 12, 1), actor_user_id=None, today=TODAY)
    later = reg.designate(conn, facility_code=centre.code, service="holiday", authority="마포구청",
                          valid_from=date(2027, 1, 1), actor_user_id=None, today=TODAY)
    assert not later["active"]
    for kwargs, param in (({"service": "general"}, "service"), ({"service": "swimming"}, "service"),
                          ({"authority": "  "}, "authority"),
                          ({"valid_from": date(2026, 5, 1), "valid_to": date(2026, 4, 1)}, "valid_to")):
        args: dict[str, Any] = {"facility_code": centre.code, "service": "hourly", "authority": "마포구청",
                                "valid_from": TODAY, "actor_user_id": None, **kwargs}
        with pytest.raises(InvalidQuery) as refused:
            reg.designate(conn, **args)
        assert refused.value.extra["param"] == param
    with pytest.raises(NotFound):
        reg.designate(conn, facility_code="00000000000", service="hourly", authority="마포구청", valid_from=TODAY,
                      actor_user_id=None)


def test_staff_languages_are_declared_and_searchable(seoul_engine: Any, conn: Connection) -> None:
    centre = a_centre(conn)
    assert reg.set_languages(conn, facility_code=centre.code, languages=["VI", "zh", "zh"], actor_user_id=None) \
        == ["vi", "zh"]
    page = area_search(conn, settings=S, district="마포구", limit=500, filters=FacilityFilters.parse(languages=["vi"]))
    assert [h.id for h in page.items] == [centre.id]
    with pytest.raises(InvalidQuery):
        reg.set_languages(conn, facility_code=centre.code, languages=["vietnamese"], actor_user_id=None)
