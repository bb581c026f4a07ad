"""What routing a read to a replica costs: ``GET /facilities/radius`` on a server without replicas (the
baseline: reads on the primary's pool) against a server whose reads go through the read router to a hot standby,
without and with a ``Dolbom-Min-LSN`` position the standby has replayed (read-your-writes, caught up).

Run ``python -m benchmarks.bench_replicas`` (see benchmarks/README.md). A throw-away primary with one standby is
provisioned in ``/tmp/dolbom-replicas-bench-<port>`` (ports ``--port`` and ``--port`` + 1) with Seoul's boundaries and
the real OA-20300 snapshot; both API servers are uvicorn processes (one worker) on the same primary. The three
variants of each search run one after the other, in an order that rotates per search, over ``--repeats`` rounds;
every ratio is computed within a round (per-round p50s), then summarised over the rounds (median, IQR, min, max).
Results are printed and written to ``benchmarks/results/bench_replicas-<UTC timestamp>.json``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.bench_read import load_seoul, query_points, radius_requests
from benchmarks.harness import Server, free_port, latency_summary, ratio_spread, serve, uvicorn_command
from geo.db import as_libpq_url, make_engine
from geo.ops import provision
from geo.ops.migrate import upgrade
from geo.settings import PROJECT_ROOT, Settings

VARIANTS = ("primary", "replica", "replica+lsn")
RESULTS = PROJECT_ROOT / "benchmarks" / "results"


class Client:
    """One keep-alive HTTP/1.1 connection; GET with optional headers, the body read, 200 required."""

    def __init__(self, server: Server) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)

    def get(self, path: str, headers: dict[str, str] | None = None) -> str:
        """GET ``path``; returns the ``Dolbom-Read-Source`` header (empty without replicas)."""
        self.conn.request("GET", path, headers=headers or {})
        response = self.conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path} answered {response.status}: {body[:300]!r}")
        return response.getheader("Dolbom-Read-Source") or ""

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


@contextmanager
def cluster(port: int, shared_data: Path) -> Iterator[tuple[Settings, str]]:
    """Primary + one standby with the Seoul data, removed afterwards; yields (local settings, primary URL)."""
    local = Settings(DATABASE_URL=None, DOLBOM_DATA_DIR=Path(f"/tmp/dolbom-replicas-bench-{port}"), DOLBOM_PG_PORT=port,
                     DOLBOM_PG_DATABASE="dolbom")
    if local.local.data_dir.exists():
        provision.down(local)
        shutil.rmtree(local.local.data_dir)
    url = provision.up(local, replicas=0)
    try:
        engine = make_engine(url)
        upgrade(engine)
        load_seoul(engine, shared_data)
        engine.dispose()
        provision.up(local, replicas=1)
        yield local, url
    finally:
        provision.down(local)
        shutil.rmtree(local.local.data_dir, ignore_errors=True)


@contextmanager
def api(name: str, url: str, replica_urls: list[str]) -> Iterator[Server]:
    """The dolbom API on ``url``, reading from ``replica_urls`` (none: the primary)."""
    env = {**os.environ, "DATABASE_URL": url, "DOLBOM_REPLICA_URLS": ",".join(replica_urls)}
    command = uvicorn_command(sys.executable, "api.app:create_app", free_port(), factory=True)
    with serve(name, command, env=env, ready_path="/health") as server:
        yield server


def caught_up_position(url: str) -> str:
    """The primary's current WAL position (no write follows, so the standby replays it within milliseconds)."""
    with psycopg.connect(as_libpq_url(url), autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    return str(row[0])


def wait_for_replay(replica_url: str, position: str, timeout_s: float = 300.0) -> None:
    """Wait until the standby has replayed ``position``: right after the import it may still be replaying its WAL
    (a first import takes ~30 s since migration 0022, and the standby shares the cores), and a read that needs the
    position would then be served by the primary, which is not what the variant measures."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(as_libpq_url(replica_url), autocommit=True) as conn:
        while True:
            row = conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (position,)).fetchone()
            if row is not None and row[0]:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the standby has not replayed {position} after {timeout_s:.0f} s")
            time.sleep(0.2)


def run(*, port: int, shared_data: Path, repeats: int, requests: int, warmup: int) -> dict[str, Any]:
    """The three variants over ``repeats`` rounds of ``requests`` radius searches each."""
    with cluster(port, shared_data) as (local, url):
        engine = make_engine(url)
        plans = radius_requests(query_points(engine, count=requests), Settings(DATABASE_URL=url))
        engine.dispose()
        replicas = [local.local_replica_url(1)]
        position = caught_up_position(url)
        wait_for_replay(replicas[0], position)
        with api("primary", url, []) as plain, api("replicas", url, replicas) as routed:
            clients = {"primary": Client(plain), "replica": Client(routed), "replica+lsn": Client(routed)}
            headers: dict[str, dict[str, str]] = {"primary": {}, "replica": {},
                                                  "replica+lsn": {"Dolbom-Min-LSN": position}}
            sources: dict[str, set[str]] = {v: set() for v in VARIANTS}
            try:
                for request in plans[:warmup]:
                    for variant in VARIANTS:
                        clients[variant].get(request.path, headers[variant])
                ms: dict[str, list[list[float]]] = {v: [] for v in VARIANTS}
                for round_no in range(repeats):
                    per_round: dict[str, list[float]] = {v: [] for v in VARIANTS}
                    for i, request in enumerate(plans):
                        shift = (i + round_no) % len(VARIANTS)
                        for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                            start = time.perf_counter()
                            source = clients[variant].get(request.path, headers[variant])
                            per_round[variant].append((time.perf_counter() - start) * 1000.0)
                            sources[variant].add(source)
                    for variant in VARIANTS:
                        ms[variant].append(per_round[variant])
            finally:
                for client in clients.values():
                    client.close()
    return {
        "repeats": repeats, "requests_per_round": requests, "warmup": warmup, "example": plans[0].path,
        "read_sources": {v: sorted(s) for v, s in sources.items()},
        "latency": {v: latency_summary(ms[v]) for v in VARIANTS},
        "replica/primary_p50": ratio_spread(ms["replica"], ms["primary"]),
        "replica+lsn/primary_p50": ratio_spread(ms["replica+lsn"], ms["primary"]),
        "replica/primary_p99": ratio_spread(ms["replica"], ms["primary"], 0.99),
    }


def main(argv: list[str] | None = None) -> None:
    """Command line: run, print and save the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=55430, help="the primary's port (the standby: port + 1)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--shared-data", type=Path,
                        default=Path(os.environ.get("DOLBOM_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data")))
    args = parser.parse_args(argv)
    result = run(port=args.port, shared_data=args.shared_data, repeats=args.repeats, requests=args.requests,
                 warmup=args.warmup)
    result["when"] = datetime.now(UTC).isoformat()
    text = json.dumps(result, indent=2, default=str)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"bench_replicas-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json").write_text(text)


if __name__ == "__main__":
    main()
