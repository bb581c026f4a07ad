"""Saturday hours only where a centre offers them (issue #21, Rules): 토요일 07:30-15:30 where offered."""

from __future__ import annotations

from datetime import datetime

from geo.domain import Service, opening_hours, services_open_at


def test_opening_hours_have_saturday_only_where_offered() -> None:
    assert "sat" not in opening_hours({Service.general})
    assert opening_hours({Service.general, Service.saturday})["sat"] == [["07:30", "15:30"]]
    assert opening_hours({Service.twenty_four_hour})["sat"] == [["00:00", "24:00"]]
    assert "sat" in opening_hours({Service.holiday})


def test_saturday_morning_needs_a_centre_that_opens_on_saturday() -> None:
    saturday_10 = datetime(2026, 7, 25, 10, 0)
    needed = services_open_at(saturday_10)
    assert needed is not None and Service.saturday in needed and Service.general not in needed
    assert services_open_at(datetime(2026, 7, 22, 10, 0)) is None  # a Wednesday: every centre
    assert services_open_at(datetime(2026, 7, 25, 17, 0)) == {Service.twenty_four_hour}
