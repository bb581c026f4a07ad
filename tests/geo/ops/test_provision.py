"""The project-local PostGIS cluster: initdb, start, status, stop, in a fresh data directory."""

from __future__ import annotations

from pathlib import Path

import psycopg

from geo.ops import provision
from geo.settings import Settings


def test_up_status_down_cycle(tmp_path: Path) -> None:
    settings = Settings(DATABASE_URL=None, DOLBOM_DATA_DIR=tmp_path / "dolbom", DOLBOM_PG_DATABASE="cycle")
    assert not provision.status(settings).initialised
    url = provision.up(settings)
    try:
        status = provision.status(settings)
        assert status.initialised and status.running
        assert url == settings.local_database_url()
        conninfo = f"host={settings.pg_dir} port={settings.local.pg_port} user=postgres dbname=cycle"
        with psycopg.connect(conninfo) as conn:
            extensions = {r[0] for r in conn.execute("SELECT extname FROM pg_extension")}
            # No TCP listener: the cluster only answers on its own socket directory.
            listen = conn.execute("SHOW listen_addresses").fetchone()
            durability = [conn.execute("SHOW fsync").fetchone(), conn.execute("SHOW synchronous_commit").fetchone()]
        assert {"postgis", "pgrouting"} <= extensions
        assert listen == ("",)
        # Durable: a crash must not lose committed applications.
        assert durability == [("on",), ("on",)]
        # Idempotent: a second `up` finds the cluster running and the database present.
        assert provision.up(settings) == url
    finally:
        assert provision.down(settings)
    assert not provision.status(settings).running
    assert provision.down(settings) is False
