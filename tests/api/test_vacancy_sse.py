"""The SSE response of ``/vacancy/stream`` driven directly over ASGI with a hub fed by hand (no database): a
client whose socket stops taking bytes is dropped with a final ``event: reconnect`` frame and the stream ends;
a stream resumed from the hub's recent events sends those first, without duplicates."""

from __future__ import annotations

import asyncio

from api.sse import RETRY_FRAME, EventStreamResponse
from geo.vacancy.hub import RECONNECT_FRAME, VacancyHub, sse_frame
from geo.vacancy.reports import EventFilter


def event(seq: int) -> dict:
    return {"seq": seq, "code": "A1", "district_code": "11440", "lon": 126.9, "lat": 37.5}


async def _started_hub() -> VacancyHub:
    hub = VacancyHub("postgresql://nobody@/nowhere")
    hub.last_seq = hub.ring_floor = 0
    hub._ready = asyncio.Event()
    hub._ready.set()
    hub._task = asyncio.create_task(asyncio.sleep(3600))  # stands for the LISTEN loop
    return hub


def test_a_client_that_stops_reading_gets_reconnect_and_the_end() -> None:
    async def scenario() -> tuple[list[dict], VacancyHub]:
        hub = await _started_hub()
        sub = await hub.subscribe(EventFilter(), limit=3)
        response = EventStreamResponse(hub, sub, after=None, first=[], replay=None, replay_batch=10,
                                       max_s=60, heartbeat_s=30)
        socket_full = asyncio.Event()
        sent: list[dict] = []

        async def send(message: dict) -> None:
            sent.append(message)
            if len(sent) == 3:  # start, retry, first event: then the socket is full until released
                await socket_full.wait()

        async def receive() -> dict:
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        task = asyncio.create_task(response(scope={"type": "http"}, receive=receive, send=send))
        hub.dispatch(event(1))
        await asyncio.sleep(0.01)  # the writer is stuck in send with event 1
        for seq in range(2, 6):  # 2, 3, 4 fill its buffer; 5 drops it
            hub.dispatch(event(seq))
        socket_full.set()
        await asyncio.wait_for(task, 10)
        hub._task.cancel()  # type: ignore[union-attr]
        return sent, hub

    sent, hub = asyncio.run(scenario())
    bodies = [m.get("body") for m in sent[1:]]
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    assert bodies == [RETRY_FRAME, sse_frame(event(1)).encode(), RECONNECT_FRAME, b""]
    assert sent[-1]["more_body"] is False
    assert hub.dropped == 1 and not hub.subscriptions


def test_resume_sends_recent_events_then_live_ones_without_duplicates() -> None:
    async def scenario() -> list[bytes]:
        hub = await _started_hub()
        for seq in (1, 2, 3):
            hub.dispatch(event(seq))
        sub = await hub.subscribe(EventFilter())
        hub.dispatch(event(4))  # pushed between subscribing and reading the ring: in both
        recent = hub.events_since(1)
        assert recent is not None
        response = EventStreamResponse(hub, sub, after=1, first=[(s, f) for s, _, f in recent], replay=None,
                                       replay_batch=10, max_s=60, heartbeat_s=30)
        sent: list[bytes] = []
        disconnect = asyncio.Event()

        async def send(message: dict) -> None:
            sent.append(message.get("body", b""))
            if len(sent) == 3:  # start, resumed frames, the live event: then the client goes away
                disconnect.set()

        async def receive() -> dict:
            await disconnect.wait()
            return {"type": "http.disconnect"}

        task = asyncio.create_task(response(scope={"type": "http"}, receive=receive, send=send))
        await asyncio.sleep(0.01)
        hub.dispatch(event(5))
        await asyncio.wait_for(task, 10)
        hub._task.cancel()  # type: ignore[union-attr]
        return sent

    sent = asyncio.run(scenario())
    frames = b"".join(sse_frame(event(s)).encode() for s in (2, 3, 4))
    assert sent[1:4] == [RETRY_FRAME + frames, sse_frame(event(5)).encode(), b""]
