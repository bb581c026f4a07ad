"""The hub's fan-out without a database: events dispatched by hand (as the LISTEN loop does) reach the
subscriptions whose filter matches, encoded once; a subscription that falls ``limit`` frames behind is dropped
with a final reconnect frame; recent events are kept for ``Last-Event-ID`` resumes."""

from __future__ import annotations

import asyncio

from geo.vacancy.hub import RECONNECT_FRAME, Subscription, VacancyHub, sse_frame
from geo.vacancy.reports import EventFilter


def event(seq: int, code: str = "A1", district: str = "11440") -> dict:
    return {"seq": seq, "code": code, "district_code": district, "lon": 126.9, "lat": 37.5, "free": seq}


def hub_at(last_seq: int = 0, *, ring_events: int = 16) -> VacancyHub:
    hub = VacancyHub("postgresql://nobody@/nowhere", ring_events=ring_events)
    hub.last_seq = hub.ring_floor = last_seq  # as after the first LISTEN
    return hub


def subscribe(hub: VacancyHub, flt: EventFilter, *, limit: int = 256) -> Subscription:
    sub = Subscription(flt, limit=limit)
    hub.groups.setdefault(flt, set()).add(sub)
    return sub


def test_matching_subscriptions_get_the_same_bytes_once_per_event() -> None:
    hub = hub_at()
    everything = [subscribe(hub, EventFilter()) for _ in range(3)]
    by_code = subscribe(hub, EventFilter(facility_codes=frozenset({"B2"})))
    by_district = subscribe(hub, EventFilter(district_code="11440"))
    hub.dispatch(event(1))
    hub.dispatch(event(2, code="B2", district="11680"))
    hub.dispatch(event(2))  # a duplicate seq (e.g. replay after a reconnect) is not sent twice
    frames = [sub.take(after=0) for sub in everything]
    expected = (sse_frame(event(1)) + sse_frame(event(2, code="B2", district="11680"))).encode()
    assert frames == [(expected, 2)] * 3
    assert by_code.take(after=0) == (sse_frame(event(2, code="B2", district="11680")).encode(), 2)
    assert by_district.take(after=0) == (sse_frame(event(1)).encode(), 1)
    assert len(hub.groups) == 3  # three distinct filters, five subscriptions


def test_take_skips_frames_already_sent_by_a_replay() -> None:
    hub = hub_at()
    sub = subscribe(hub, EventFilter())
    for seq in (1, 2, 3):
        hub.dispatch(event(seq))
    assert sub.take(after=2) == (sse_frame(event(3)).encode(), 3)
    assert sub.take(after=3) == (b"", 3)


def test_slow_subscription_is_dropped_with_a_reconnect_frame() -> None:
    hub = hub_at()
    slow = subscribe(hub, EventFilter(), limit=3)
    fast = subscribe(hub, EventFilter(), limit=3)
    for seq in (1, 2, 3):
        hub.dispatch(event(seq))
    fast.take(after=0)
    hub.dispatch(event(4))  # slow has 3 frames waiting: dropped
    assert slow.dropped and slow.closed and hub.dropped == 1
    assert slow.take(after=0)[0] == RECONNECT_FRAME  # what it had is discarded: it resumes by Last-Event-ID
    assert hub.subscriptions == {fast}
    hub.dispatch(event(5))
    assert slow.take(after=0) == (b"", 0)  # no longer fed
    assert fast.take(after=3) == ((sse_frame(event(4)) + sse_frame(event(5))).encode(), 5)


def test_recent_events_resume_from_memory_until_the_ring_has_moved_past() -> None:
    hub = hub_at(last_seq=10, ring_events=4)
    assert hub.events_since(10) == []
    assert hub.events_since(9) is None  # before the hub started listening: the database has it
    for seq in range(11, 17):  # 11..16; the ring keeps 13..16
        hub.dispatch(event(seq))
    assert [seq for seq, _, _ in hub.events_since(12) or []] == [13, 14, 15, 16]
    assert [seq for seq, _, _ in hub.events_since(14) or []] == [15, 16]
    assert hub.events_since(11) is None  # 12 was evicted


def test_wait_returns_on_push_close_or_timeout() -> None:
    async def scenario() -> list[str]:
        hub = hub_at()
        sub = subscribe(hub, EventFilter())
        seen = []
        waiter = asyncio.create_task(sub.wait(30))
        await asyncio.sleep(0)
        hub.dispatch(event(1))
        await asyncio.wait_for(waiter, 5)
        seen.append("push")
        sub.take(after=0)
        await sub.wait(0.01)  # nothing: the timer ends it
        seen.append("timeout")
        waiter = asyncio.create_task(sub.wait(30))
        await asyncio.sleep(0)
        sub.close()
        await asyncio.wait_for(waiter, 5)
        seen.append("close")
        return seen

    assert asyncio.run(scenario()) == ["push", "timeout", "close"]
