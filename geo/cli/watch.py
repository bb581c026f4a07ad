"""``dolbom watch``: check a dolbom server's public waitlist log from the outside (``geo.watch``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def watch_command(
    url: Annotated[str, typer.Argument(help="Base URL of the dolbom server")],
    state: Annotated[Path, typer.Option(help="This watcher's own folder (its copy of checkpoints and entries)")],
    key: Annotated[list[str], typer.Option(help="A verifier key of the log (name+id+key); repeat in a rotation")],
    origin: Annotated[str | None, typer.Option(help="The log's origin line")] = None,
) -> None:
    """Fetch the signed checkpoint, check it extends the last one held, that held entries are unchanged and hash
    to the signed root, and that rank events follow from the log. Exit 1 with ALARM lines otherwise."""
    from geo.watch.watcher import run

    code = run(url, state, key, origin=origin)
    if code:
        raise typer.Exit(code)
