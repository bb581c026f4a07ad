"""``dolbom notify``: the worker that sends the notification outbox."""

from __future__ import annotations

from typing import Annotated

import typer

from geo.cli.common import console, fail, migrated_engine
from geo.errors import DolbomError
from geo.settings import get_settings

app = typer.Typer(help="Booking notifications: send the SMS outbox.", no_args_is_help=True)


@app.command("worker")
def notify_worker(
    once: Annotated[bool, typer.Option(help="Stop when no message is due instead of polling")] = False,
    poll_s: Annotated[float, typer.Option(help="Seconds between polls when idle")] = 2.0,
) -> None:
    """Send the notification outbox through the configured provider (DOLBOM_NOTIFY_PROVIDER: file or http)."""
    from geo.booking.notify import delivery_counts, provider_from_settings, run_worker

    settings = get_settings()
    try:
        provider = provider_from_settings(settings)
    except ValueError as exc:
        fail(DolbomError(str(exc)))
    engine = migrated_engine()
    handled = run_worker(engine, settings, provider=provider, once=once, poll_s=poll_s)
    console.print(f"handled {handled} messages; outbox {delivery_counts(engine)}")
