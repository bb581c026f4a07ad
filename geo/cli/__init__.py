"""``dolbom`` command line: database, imports, boundaries, road networks, accounts, admission and ``run``.

One module per command group; ``main`` is the entry point (``dolbom = "geo.cli:main"``, ``python -m geo.cli``):
every error is one line on stderr (``error: ...``) and a non-zero exit status, never a traceback (1: the command
failed, 2: wrong usage, 130: interrupted).
"""

from __future__ import annotations

from geo.cli import (
    boundaries,
    db,
    disclosures,
    imports,
    inspections,
    maps,
    notify,
    osm,
    planner,
    privacy,
    seed,
    serve,
    sync,
    users,
    vacancy,
    waitlist,
    watch,
)
from geo.cli.root import app, main

# Top-level commands first, then the groups, in the order ``dolbom --help`` lists them.
app.command("map")(maps.map_command)
app.command("run")(serve.run)
app.command("serve")(serve.serve)
app.command("watch")(watch.watch_command)
app.add_typer(db.app, name="db")
app.add_typer(imports.app, name="import")
app.add_typer(boundaries.app, name="boundaries")
app.add_typer(osm.app, name="osm")
app.add_typer(planner.app, name="planner")
app.add_typer(users.app, name="users")
app.add_typer(sync.app, name="sync")
app.add_typer(inspections.app, name="inspections")
app.add_typer(vacancy.app, name="vacancy")
app.add_typer(notify.app, name="notify")
app.add_typer(privacy.app, name="privacy")
app.add_typer(waitlist.app, name="waitlist")
app.add_typer(seed.app, name="seed")
app.add_typer(disclosures.app, name="disclosures")
app.add_typer(disclosures.evaluations_app, name="evaluations")

__all__ = ["app", "main"]
