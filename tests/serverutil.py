"""A real uvicorn server on 127.0.0.1 and a free port, for tests with real clients (GDAL, httpx)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from benchmarks.harness import free_port, running_server


@contextmanager
def uvicorn_server(database_url: str, *, workers: int = 1, extra_env: dict[str, str] | None = None,
                   python: str | None = None) -> Iterator[str]:
    """Serve ``api.app:create_app`` on ``database_url``; yields the base URL; stops the server on exit."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, **(extra_env or {})}
    cmd = [python or sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1",
           "--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    base = f"http://127.0.0.1:{port}"
    with running_server(cmd, base_url=base, ready_path="/ogc/conformance", env=env):
        yield base
