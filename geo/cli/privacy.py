"""``dolbom privacy``: retention of personal data (docs/privacy.md)."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from geo.cli.common import console, migrated_engine
from geo.settings import get_settings

app = typer.Typer(help="Privacy: purge personal data past its retention period.", no_args_is_help=True)


@app.command("purge")
def privacy_purge() -> None:
    """Pseudonymise or delete personal data older than its retention period (DOLBOM_RETAIN_*); run it daily."""
    from geo.privacy.retention import purge

    settings = get_settings()
    sink = None
    if settings.notify.provider == "file":
        sink = settings.notify.file_path or settings.local.data_dir / "sms-outbox.jsonl"
    engine = migrated_engine()
    with engine.begin() as conn:
        result = purge(conn, settings, now=datetime.now(UTC), sink_path=sink)
    console.print("purged: " + ", ".join(f"{kind} {n}" for kind, n in result.as_dict().items()))
