"""Slot rules: patterns by weekday and on Korean public holidays, skipping holidays, exceptions, overnight
ranges, places checks, and the slots a pattern publishes in the database."""

from __future__ import annotations

from datetime import date, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from sqlalchemy import Connection, text

from geo.booking.slots import check_places, create_pattern, create_slot, pattern_dates, slot_range
from geo.errors import Conflict, InvalidQuery
from tests.booking_util import make_centre

SEOUL = ZoneInfo("Asia/Seoul")
KR_2026 = holidays.country_holidays("KR", years=2026)


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def test_every_sunday_and_exceptions() -> None:
    start, end = date(2026, 9, 1), date(2026, 12, 31)
    sundays = [d for d in _days(start, end) if d.weekday() == 6]
    assert pattern_dates(valid_from=start, valid_until=end, weekday=6, on_holidays=False,
                         skip_holidays=False) == sundays
    skipped = [sundays[1], sundays[5]]
    assert pattern_dates(valid_from=start, valid_until=end, weekday=6, on_holidays=False, skip_holidays=False,
                         exceptions=skipped) == [d for d in sundays if d not in skipped]


def test_public_holiday_pattern_follows_the_korean_calendar() -> None:
    start, end = date(2026, 1, 1), date(2026, 12, 31)
    got = pattern_dates(valid_from=start, valid_until=end, weekday=None, on_holidays=True, skip_holidays=False)
    assert got == sorted(d for d in KR_2026 if start <= d <= end)
    # 추석 2026 (25 September) and its neighbouring days are in; an ordinary Sunday is not.
    assert date(2026, 9, 25) in got and date(2026, 9, 6) not in got


def test_skip_holidays_leaves_out_public_holidays_on_the_weekday() -> None:
    start, end = date(2026, 1, 1), date(2026, 12, 31)
    for weekday in range(7):
        plain = pattern_dates(valid_from=start, valid_until=end, weekday=weekday, on_holidays=False,
                              skip_holidays=False)
        skipping = pattern_dates(valid_from=start, valid_until=end, weekday=weekday, on_holidays=False,
                                 skip_holidays=True)
        assert skipping == [d for d in plain if d not in KR_2026]
    # 2026: 설날 falls on Mon-Wed 16-18 February, so a Monday pattern must lose at least that day.
    mondays = pattern_dates(valid_from=start, valid_until=end, weekday=0, on_holidays=False, skip_holidays=True)
    assert date(2026, 2, 16) not in mondays and date(2026, 2, 23) in mondays


def test_bad_patterns_and_places() -> None:
    with pytest.raises(InvalidQuery):
        pattern_dates(valid_from=date(2026, 1, 2), valid_until=date(2026, 1, 1), weekday=1, on_holidays=False,
                      skip_holidays=False)
    with pytest.raises(InvalidQuery):
        pattern_dates(valid_from=date(2026, 1, 1), valid_until=date(2026, 2, 1), weekday=1, on_holidays=True,
                      skip_holidays=False)
    with pytest.raises(InvalidQuery):
        pattern_dates(valid_from=date(2026, 1, 1), valid_until=date(2027, 6, 1), weekday=1, on_holidays=False,
                      skip_holidays=False)
    for bad in ({"6": 1}, {"2": -1}, {"2": 0}, {"x": 1}):
        with pytest.raises(InvalidQuery):
            check_places(bad)


def test_overnight_range_ends_next_morning() -> None:
    starts, ends = slot_range(date(2026, 10, 3), time(19, 30), time(7, 30))
    assert starts.isoformat() == "2026-10-03T19:30:00+09:00"
    assert ends.isoformat() == "2026-10-04T07:30:00+09:00"
    starts, ends = slot_range(date(2026, 10, 3), time(20, 0), time(0, 0))
    assert (ends - starts) == timedelta(hours=4)


def test_pattern_publishes_its_slots(connection: Connection) -> None:
    facility_id = make_centre(connection, "T-SLOT-1")
    start, end = date(2026, 9, 1), date(2026, 10, 31)
    created = create_pattern(connection, facility_code="T-SLOT-1", service="holiday", weekday=None, on_holidays=True,
                             skip_holidays=False, start=time(8), end=time(20), places_by_age={"2": 3},
                             valid_from=start, valid_until=end, exceptions=[date(2026, 10, 9)])
    expected = sorted(d for d in KR_2026 if start <= d <= end and d != date(2026, 10, 9))
    rows = connection.execute(text(
        "SELECT starts_at, ends_at, places_by_age FROM booking_slots WHERE pattern_id = :p ORDER BY starts_at"),
        {"p": created["id"]}).all()
    assert [r.starts_at.astimezone(SEOUL).date() for r in rows] == expected
    assert all(r.starts_at.astimezone(SEOUL).time() == time(8) and r.ends_at - r.starts_at == timedelta(hours=12)
               and r.places_by_age == {"2": 3} for r in rows)
    assert connection.execute(text("SELECT on_date FROM booking_pattern_exceptions WHERE pattern_id = :p"),
                              {"p": created["id"]}).scalars().all() == [date(2026, 10, 9)]
    # The same time range again is one slot, not two.
    assert facility_id > 0
    with pytest.raises(Conflict):
        create_slot(connection, facility_code="T-SLOT-1", service="holiday", day=expected[0], start=time(8),
                    end=time(20), places_by_age={"2": 1})


def test_only_bookable_services_the_centre_offers(connection: Connection) -> None:
    make_centre(connection, "T-SLOT-2", services=("holiday",))
    with pytest.raises(InvalidQuery):
        create_slot(connection, facility_code="T-SLOT-2", service="hourly", day=date(2026, 10, 4), start=time(9),
                    end=time(12), places_by_age={"1": 1})
    with pytest.raises(InvalidQuery):
        create_slot(connection, facility_code="T-SLOT-2", service="general", day=date(2026, 10, 4), start=time(9),
                    end=time(12), places_by_age={"1": 1})
