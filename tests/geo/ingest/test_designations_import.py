"""An import never removes a designation: the official data's services go to ``services_imported`` and the
effective ``services`` keep the designation, which ``conflicts`` lists (a real re-import of the 2026-07-21
snapshot)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from geo.designations import register as reg
from geo.ingest.childcare import import_seoul_oa20300
from tests.geo.designations.test_register import a_centre


def test_an_import_never_removes_a_designation(seoul_engine: Any, conn: Connection, shared_data: Path) -> None:
    centre = a_centre(conn)
    reg.designate(conn, facility_code=centre.code, service="multicultural", authority="마포구청",
                  valid_from=date(2026, 1, 1), actor_user_id=None)
    import_seoul_oa20300(conn, shared_data / "childcare" / "seoul_childcare_OA-20300_20260721_full.csv")
    row = conn.execute(text("SELECT services, services_imported FROM facilities WHERE id = :f"),
                       {"f": centre.id}).one()
    assert "multicultural" in row.services and "multicultural" not in row.services_imported
    assert set(row.services) == set(row.services_imported) | {"multicultural"}
    assert [c["centre"] for c in reg.conflicts(conn)] == [centre.code]
