"""Sanctions and their disclosure on hand-made centres: the period follows the rule (from the day the sanction is
final, 3 years), a disclosure is visible at an instant inside it and gone after (the clock injected), a sanction
that is not final cannot be published, a withdrawal hides it at once, the disclosures layer lists only shown ones
and its version (tile ETags) moves when one starts, ends or is withdrawn; every write is audited."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Connection, select, text

from geo.disclosure import records
from geo.disclosure.rules import PERIOD_YEARS, SanctionKind, parse_kind, publication_period, seoul_day
from geo.errors import Conflict, InvalidQuery
from geo.layers.registry import get_layer
from geo.search.detail import facility_detail
from tests.search_data import insert_search_fixture


def at(day: date, hour: int = 12) -> datetime:
    """Noon (Seoul) of ``day`` as an aware UTC instant."""
    return datetime(day.year, day.month, day.day, hour - 9, tzinfo=UTC)


def layer_version(conn: Connection) -> tuple[int, int]:
    row = conn.execute(text("SELECT count(*), coalesce(max(seq), 0) FROM layer_changes WHERE layer = 'disclosures'"))
    return tuple(row.one())  # type: ignore[return-value]


def layer_codes(conn: Connection) -> list[str]:
    source = get_layer("disclosures").source()
    return sorted(conn.execute(select(source.c.code)).scalars())


def sanction(conn: Connection, code: str, *, final_at: date | None = date(2026, 3, 2), **kw: object) -> dict:
    values: dict = {"kind": "운영정지", "legal_basis": "영유아보육법 제45조 제1항 제1호",
                    "violation": "보육교사 허위 등록으로 보조금 부정수급", "disposition": "운영정지 3개월",
                    "decided_at": date(2026, 2, 1), "final_at": final_at, "authority": "가상구청",
                    "representative_name": "홍길동", "director_name": "김원장", "finding_ref": "F-17", **kw}
    return records.record_sanction(conn, facility_code=code, actor_user_id=None, **values)


def test_the_period_starts_when_final_and_lasts_the_rule() -> None:
    period = publication_period(final_at=date(2026, 3, 2))
    assert period.published_from == date(2026, 3, 2)
    assert period.published_until == date(2026 + PERIOD_YEARS, 3, 1)
    assert publication_period(final_at=date(2024, 2, 29)).published_until == date(2027, 2, 27)
    with pytest.raises(InvalidQuery, match="not final"):
        publication_period(final_at=None)
    with pytest.raises(InvalidQuery, match="before the sanction is final"):
        publication_period(final_at=date(2026, 3, 2), start=date(2026, 3, 1))


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31)), st.integers(0, 400))
def test_a_period_always_covers_exactly_its_years(final: date, delay: int) -> None:
    period = publication_period(final_at=final, start=final + timedelta(days=delay))
    assert period.published_from == final + timedelta(days=delay)
    assert 365 * PERIOD_YEARS - 2 <= (period.published_until - period.published_from).days <= 366 * PERIOD_YEARS
    assert period.holds_on(period.published_until) and not period.holds_on(period.published_until + timedelta(1))


def test_kinds_read_korean_labels() -> None:
    assert parse_kind("운영 정지") is SanctionKind.suspension
    assert parse_kind("시설폐쇄") is SanctionKind.closure
    assert parse_kind("보조금 반환") is SanctionKind.subsidy_recovery
    with pytest.raises(InvalidQuery, match="kind must be one of"):
        parse_kind("벌금")


def test_seoul_day_is_the_korean_date() -> None:
    assert seoul_day(datetime(2026, 3, 1, 15, 30, tzinfo=UTC)) == date(2026, 3, 2)  # 00:30 KST


def test_a_disclosure_shows_while_its_period_lasts_and_disappears_after(connection: Connection) -> None:
    ids = insert_search_fixture(connection)
    code = connection.execute(text("SELECT code FROM facilities WHERE id = :i"), {"i": ids["A"]}).scalar_one()
    made = sanction(connection, code)
    assert made["finding_ref"] == "F-17" and made["kind"] == "suspension"
    before = layer_version(connection)
    published = records.publish(connection, made["id"], now=at(date(2026, 3, 10)), actor_user_id=None)
    # Published from the day it is done (after the day it became final) for 3 years.
    assert published["published_from"] == date(2026, 3, 10)
    assert published["published_until"] == date(2029, 3, 9)
    assert published["active"] and layer_version(connection) != before
    assert layer_codes(connection) == [code]

    for day, visible in ((date(2026, 3, 9), False), (date(2026, 3, 10), True), (date(2029, 3, 9), True),
                         (date(2029, 3, 10), False)):
        shown = records.active_disclosures(connection, now=at(day), facility_code=code)
        assert bool(shown) is visible, day
        detail = facility_detail(connection, ids["A"], now=at(day))
        assert bool(detail["disclosures"]) is visible, day
    seen = facility_detail(connection, ids["A"], now=at(date(2027, 1, 1)))["disclosures"][0]
    assert seen["violation"].startswith("보육교사 허위") and seen["published_until"] == "2029-03-09"
    assert seen["representative_name"] == "홍길동" and seen["director_name"] == "김원장"

    # The daily refresh after the period: the layer drops it and its version moves.
    before = layer_version(connection)
    assert records.refresh_shown(connection, now=at(date(2029, 3, 10))) == 1
    assert layer_codes(connection) == [] and layer_version(connection) != before
    assert records.refresh_shown(connection, now=at(date(2029, 3, 11))) == 0  # nothing more to change


def test_not_final_is_not_published_and_a_withdrawal_hides_at_once(connection: Connection) -> None:
    ids = insert_search_fixture(connection)
    code = connection.execute(text("SELECT code FROM facilities WHERE id = :i"), {"i": ids["B"]}).scalar_one()
    pending = sanction(connection, code, final_at=None)
    with pytest.raises(InvalidQuery, match="not final"):
        records.publish(connection, pending["id"], now=at(date(2026, 3, 10)), actor_user_id=None)
    records.set_final(connection, pending["id"], final_at=date(2026, 4, 1), actor_user_id=None)
    # Published on 10 March, it starts only on the day it became final.
    made = records.publish(connection, pending["id"], now=at(date(2026, 3, 10)), actor_user_id=None)
    assert made["published_from"] == date(2026, 4, 1) and not made["active"] and layer_codes(connection) == []
    records.refresh_shown(connection, now=at(date(2026, 4, 1)))
    assert layer_codes(connection) == [code]
    with pytest.raises(Conflict):
        records.publish(connection, pending["id"], now=at(date(2026, 4, 2)), actor_user_id=None)
    before = layer_version(connection)
    gone = records.withdraw(connection, made["id"], reason="행정심판 인용", now=at(date(2026, 5, 1)),
                            actor_user_id=None)
    assert not gone["active"] and gone["withdrawal_reason"] == "행정심판 인용"
    assert layer_codes(connection) == [] and layer_version(connection) != before
    assert records.active_disclosures(connection, now=at(date(2026, 5, 2)), facility_code=code) == []
    with pytest.raises(Conflict):
        records.withdraw(connection, made["id"], reason="again", now=at(date(2026, 5, 2)), actor_user_id=None)
    actions = [h["action"] for h in records.history(connection, sanction_ids=[pending["id"]])]
    assert actions == ["sanction.create", "sanction.final", "disclosure.publish", "disclosure.withdraw"]


def test_bad_sanctions_are_refused(connection: Connection) -> None:
    ids = insert_search_fixture(connection)
    code = connection.execute(text("SELECT code FROM facilities WHERE id = :i"), {"i": ids["A"]}).scalar_one()
    with pytest.raises(InvalidQuery, match="final_at is before"):
        sanction(connection, code, final_at=date(2026, 1, 1))
    with pytest.raises(InvalidQuery, match="violation is required"):
        sanction(connection, code, violation="  ")
    with pytest.raises(InvalidQuery, match="kind must be"):
        sanction(connection, code, kind="경고")
