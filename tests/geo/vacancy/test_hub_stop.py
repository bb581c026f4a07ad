"""The app's shutdown never waits on a stuck listener: ``VacancyHub.stop`` gives a task that ignores its
cancellation a bounded time (a worker that never exits held a test run for nine minutes at its shutdown)."""

from __future__ import annotations

import asyncio

from geo.vacancy.hub import VacancyHub


def test_stop_returns_although_the_listener_ignores_its_cancellation() -> None:
    ignored: list[int] = []

    async def stubborn() -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if ignored:  # the event loop's own cancellation at its end is obeyed
                    raise
                ignored.append(1)

    async def scenario() -> None:
        hub = VacancyHub("postgresql://nobody@/nowhere")
        hub._task = asyncio.create_task(stubborn())
        await asyncio.sleep(0)
        # A hang guard, not a measurement: the old stop() awaited the task for ever.
        await asyncio.wait_for(hub.stop(), timeout=60)
        assert hub._task is None and ignored == [1]

    asyncio.run(scenario())
