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
