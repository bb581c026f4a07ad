"""The 2026-07-01 -> 2026-07-21 replay through the report API: 1,515 changed centres, each accepted report
written to its facility row and published; each refusal names a field whose rule the snapshot breaks."""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from geo.auth.accounts import create_user, issue_token
from geo.domain import CHILDREN_PER_CLASS
from geo.ingest.childcare import CHILD_COLUMNS, CLASS_COLUMNS
from geo.settings import Settings
from geo.vacancy.replay import changed_reports, replay
from tests.dbutil import client_on

F0701 = "seoul_childcare_OA-20300_20260701_full.csv"
F0721 = "seoul_childcare_OA-20300_20260721_full.csv"


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return {r["어린이집코드"]: r for r in csv.DictReader(fh)}


def test_replay_feeds_the_changed_centres(seoul_engine: Engine, connection: Connection, settings: Settings,
                                         shared_data: Path) -> None:
    folder = shared_data / "childcare"
    old, new = _rows(folder / F0701), _rows(folder / F0721)
    cols = ["현원", "정원", *CHILD_COLUMNS.values()]
    expected = sorted(c for c in set(old) & set(new) if any(old[c][k] != new[c][k] for k in cols))
    assert len(expected) == 1515  # the figure of the issue
    reports = changed_reports(folder / F0701, folder / F0721)
    assert [code for code, _ in reports] == expected

    admin = create_user(connection, email="replay@example.kr", password="correct horse battery", role="city_admin")
    token = issue_token(connection, settings, user_id=admin, kind="bearer").secret
    result = replay(client_on(settings, connection), reports, token=token, concurrency=1)
    assert result.sent == 1515 and result.accepted + sum(result.refused.values()) == 1515
    assert result.accepted > 1000
    assert result.event_ids == sorted(result.event_ids)

    rows = connection.execute(text("""
        SELECT f.code, f.enrolled, r.author_user_id FROM vacancy_reports r JOIN facilities f ON f.id = r.facility_id
    """)).all()
    assert len(rows) == result.accepted and all(r.author_user_id == admin for r in rows)
    for r in rows:
        assert r.enrolled == sum(int(new[r.code][col] or 0) for col in CHILD_COLUMNS.values())
    assert connection.execute(text("SELECT count(*) FROM vacancy_events")).scalar_one() == result.accepted
    # Every refusal is a 422 naming a field, and the snapshot really breaks that field's rule.
    accepted = {r.code for r in rows}
    capacity = dict(connection.execute(text("SELECT code, capacity FROM facilities")).all())
    for code, _ in reports:
        if code in accepted:
            continue
        n = new[code]
        children = {g: int(n[c] or 0) for g, c in CHILD_COLUMNS.items()}
        classes = {g: int(n[c] or 0) for g, c in CLASS_COLUMNS.items()}
        over_class = [g for g in children if children[g] > classes[g] * CHILDREN_PER_CLASS[g]]
        over_capacity = capacity[code] is not None and sum(children.values()) > capacity[code]
        assert over_class or over_capacity, code
    assert all(key.startswith("422 enrolled_by_age") for key in result.refused), result.refused
