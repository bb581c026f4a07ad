"""The access log keeps paths and drops query strings: a home address typed into the place search, a child's age
or a point on the map never reach the server's log (issue #20, personal data out of logs)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import Engine

from api.access_log import DropQueryStrings
from benchmarks.harness import free_port
from geo.settings import PROJECT_ROOT

ADDRESS = "테헤란로 152"


def test_the_filter_drops_the_query_and_keeps_the_rest() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", f"/places/search?q={ADDRESS}", "1.1", 200), None)
    assert DropQueryStrings().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "GET /places/search HTTP/1.1" 200'


def test_a_real_server_logs_no_query_values(engine: Engine, test_database_url: str, tmp_path: Path) -> None:
    """On the migrated test database (``engine``)."""
    port = free_port()
    log = tmp_path / "access.log"
    env = {**os.environ, "DATABASE_URL": test_database_url}
    with log.open("wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host",
                                   "127.0.0.1", "--port", str(port)], cwd=PROJECT_ROOT, env=env, stdout=out,
                                  stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(base + "/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline and server.poll() is None, log.read_text(errors="replace")
                time.sleep(0.2)
            httpx.get(base + "/places/search", params={"q": ADDRESS}, timeout=30)
            httpx.get(base + "/facilities/radius", params={"lat": 37.5, "lon": 127.03, "radius_m": 300, "age": 2},
                      timeout=30)
        finally:
            server.terminate()
            server.wait(timeout=20)
    text = log.read_text(errors="replace")
    assert "GET /places/search HTTP/1.1" in text and "GET /facilities/radius HTTP/1.1" in text, text
    for leaked in ("q=", "%ED%85%8C", ADDRESS, "lat=", "age=2"):
        assert leaked not in text, (leaked, text)
