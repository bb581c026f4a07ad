"""``dolbom vacancy``: replay the vacancy changes between two snapshots through the report API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geo.cli.common import console, fail
from geo.errors import DolbomError

app = typer.Typer(help="Live vacancy: replay snapshot changes through the report API.",
                  no_args_is_help=True)


@app.command("replay")
def vacancy_replay(
    old: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Older OA-20300 snapshot")],
    new: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Newer OA-20300 snapshot")],
    token: Annotated[str, typer.Option(envvar="DOLBOM_TOKEN", help="Bearer token of a city admin")],
    url: Annotated[str, typer.Option(help="API base URL")] = "http://127.0.0.1:8000",
    concurrency: Annotated[int, typer.Option(min=1, max=64)] = 4,
) -> None:
    """POST the centres that changed between two snapshots as vacancy reports (pushed on /vacancy/stream)."""
    import httpx

    from geo.vacancy.replay import changed_reports, replay

    reports = changed_reports(old, new)
    console.print(f"{len(reports)} centres changed between {old.name} and {new.name}")
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            result = replay(client, reports, token=token, concurrency=concurrency)
    except httpx.HTTPError as exc:
        fail(DolbomError(f"cannot reach {url}: {exc}"))
    console.print(result.summary())


@app.command("relay")
def vacancy_relay(
    publish_url: Annotated[str, typer.Option(help="Nchan's publisher location (loopback)")] =
        "http://127.0.0.1:8091/pub/vacancy",
) -> None:
    """Publish every vacancy event to nginx + Nchan (optional fan-out in front of the API; docs/scale-out.md)."""
    import asyncio

    from geo.settings import get_settings
    from geo.vacancy.nchan import Relay

    settings = get_settings()

    async def relay() -> None:
        ready = asyncio.Event()
        task = asyncio.create_task(Relay(settings.direct_database_url, publish_url).run(ready=ready))
        await asyncio.wait({task, asyncio.create_task(ready.wait())}, return_when=asyncio.FIRST_COMPLETED)
        if ready.is_set():
            # Flushed: a supervisor (or a test) waits for this line on a pipe.
            print(f"listening; relaying vacancy events to {publish_url}", flush=True)
        await task

    try:
        asyncio.run(relay())
    except KeyboardInterrupt:
        pass


@app.command("nchan-config")
def vacancy_nchan_config(
    upstream: Annotated[str, typer.Option(help="The API (host:port)")] = "127.0.0.1:8000",
    listen: Annotated[str, typer.Option(help="Where nginx serves the map (host:port)")] = "0.0.0.0:8080",
    publisher: Annotated[str, typer.Option(help="Where the relay publishes (keep it on 127.0.0.1)")] =
        "127.0.0.1:8091",
    prefix: Annotated[Path, typer.Option(help="nginx's working directory (pid, log, temp files)")] =
        Path(".dolbom/nchan"),
) -> None:
    """Print an nginx.conf serving the live vacancy stream from Nchan (run: nginx -p PREFIX -c FILE)."""
    from geo.vacancy.nchan import fanout_config

    typer.echo(fanout_config(upstream=upstream, listen=listen, publisher_listen=publisher,
                             prefix=prefix.resolve()), nl=False)
