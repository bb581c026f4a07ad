"""What PgBouncer in transaction mode costs and gives on the read path, as ratios within one run.

Run ``python -m benchmarks.bench_pgbouncer`` (see benchmarks/README.md). A cluster and PgBouncer of its own are
provisioned under ``--data-dir`` (default ``/tmp/dolbom-pgb-bench``) with ``--centres`` synthetic centres around
Seoul, and stopped afterwards. Two parts:

- ``latency``: the radius search's ``SearchStatement.page_sql`` (1 km, ``service=extended_hours``, limit 50), one
  client, three ways interleaved search by search (order rotated): ``direct`` = the read pool's configuration
  without PgBouncer (prepared after one use, ``READ_SESSION_SETUP``); ``direct_unprepared`` = direct with
  ``prepare_threshold=None`` (what is lost by not preparing); ``pgbouncer`` = through PgBouncer with
  ``geo.db.connect_kwargs`` (unprepared, one more hop). Ratios of per-round p50/p99 to ``direct``.
- ``clients``: ``--clients`` concurrent async connections each running searches for ``--duration`` seconds,
  directly (one backend per client) and through PgBouncer (``--pool-size`` backends shared), alternating per
  round: searches/s and the ratio pgbouncer/direct.

Every ratio is computed within a round, then summarised over rounds (median, IQR, min, max). Results are printed
and written to ``benchmarks/results/bench_pgbouncer-<UTC timestamp>.json`` (gitignored).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from sqlalchemy import text

from benchmarks.bench_read import RESULTS_DIR, radius_requests, run_sql
from benchmarks.harness import latency_summary, ratio_spread, spread, timed_ms
from geo.db import READ_SESSION_SETUP, as_libpq_url, connect_kwargs, make_direct_engine
from geo.ops import provision
from geo.ops.migrate import upgrade
from geo.search import SearchStatement
from geo.settings import Settings

WAYS = ("direct", "direct_unprepared", "pgbouncer")
# Synthetic centres are spread over this box (Seoul, lon/lat) with the services of every third one extended.
SEOUL_BOX = (126.80, 37.43, 127.18, 37.70)


def bench_settings(data_dir: Path, *, pg_port: int = 55542, pgbouncer_port: int = 55543,
                   pool_size: int = 20) -> Settings:
    """Settings of the benchmark's own cluster and PgBouncer (the app's connections through PgBouncer)."""
    return Settings(DATABASE_URL=None, DOLBOM_DATA_DIR=data_dir, DOLBOM_PG_PORT=pg_port,  # type: ignore[call-arg]
                    DOLBOM_PGBOUNCER=True, DOLBOM_PGBOUNCER_PORT=pgbouncer_port,
                    DOLBOM_PGBOUNCER_POOL_SIZE=pool_size, DOLBOM_PGBOUNCER_LISTEN_ADDR="")


@contextmanager
def provisioned(settings: Settings, *, centres: int, keep: bool = False) -> Iterator[Settings]:
    """The cluster and PgBouncer of ``settings`` up, migrated, holding ``centres`` synthetic centres."""
    provision.up(settings)
    provision.pgbouncer_up(settings)
    engine = make_direct_engine(settings)
    try:
        upgrade(engine)
        fill(engine, centres=centres)
        yield settings
    finally:
        engine.dispose()
        if not keep:
            provision.pgbouncer_down(settings)
            provision.down(settings)
            shutil.rmtree(settings.local.data_dir, ignore_errors=True)


def fill(engine: Any, *, centres: int, seed: float = 0.42) -> None:
    """Exactly ``centres`` synthetic operating centres at random points of ``SEOUL_BOX`` (seeded), analysed."""
    west, south, east, north = SEOUL_BOX
    with engine.begin() as conn:
        have = conn.execute(text("SELECT count(*) FROM facilities WHERE source = 'bench'")).scalar_one()
        if have == centres:
            return
        conn.execute(text("DELETE FROM facilities WHERE source = 'bench'"))
        conn.execute(text("SELECT setseed(:seed)"), {"seed": seed})
        conn.execute(text("""
            INSERT INTO facilities (code, name, facility_type, status, capacity, enrolled, services,
                                    geocode_quality, source, geom_4326)
            SELECT 'B' || lpad(i::text, 10, '0'), '벤치어린이집 ' || i, 'private', 'active', 40, 20,
                   CASE WHEN i % 3 = 0 THEN ARRAY['extended_hours'] ELSE ARRAY[]::text[] END, 'source', 'bench',
                   ST_SetSRID(ST_MakePoint(:west + random() * (:east - :west),
                                           :south + random() * (:north - :south)), 4326)
            FROM generate_series(1, :n) AS i
        """), {"n": centres, "west": west, "east": east, "south": south, "north": north})
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE facilities"))


def statements(settings: Settings, *, count: int, seed: int = 7) -> list[SearchStatement]:
    """``count`` radius searches at random points of the box (the same searches every round)."""
    rng = np.random.default_rng(seed)
    west, south, east, north = SEOUL_BOX
    points = [(round(float(rng.uniform(south, north)), 6), round(float(rng.uniform(west, east)), 6))
              for _ in range(count)]
    return [r.statement for r in radius_requests(points, settings)]


def connect(settings: Settings, way: str) -> psycopg.Connection[Any]:
    """One client connection configured for ``way`` (see the module docstring)."""
    if way == "pgbouncer":
        url = settings.effective_database_url
        return psycopg.connect(as_libpq_url(url), autocommit=True, **connect_kwargs(url, settings))
    conn = psycopg.connect(as_libpq_url(settings.direct_database_url), autocommit=True,
                           prepare_threshold=1 if way == "direct" else None)
    if way == "direct":
        conn.execute(READ_SESSION_SETUP)
    return conn


def latency(settings: Settings, *, repeats: int = 5, requests: int = 300, warmup: int = 30) -> dict[str, Any]:
    """The three ways interleaved search by search; per-round p50/p99 ratios to ``direct``."""
    plan = statements(settings, count=requests)
    conns = {way: connect(settings, way) for way in WAYS}
    ms: dict[str, list[list[float]]] = {way: [] for way in WAYS}
    try:
        returned = {way: [run_sql(conns[way], s) for s in plan[:warmup]] for way in WAYS}
        for round_no in range(repeats):
            per_round: dict[str, list[float]] = {way: [] for way in WAYS}
            for i, statement in enumerate(plan):
                shift = (i + round_no) % len(WAYS)
                for way in WAYS[shift:] + WAYS[:shift]:
                    per_round[way].append(timed_ms(partial(run_sql, conns[way], statement)))
            for way in WAYS:
                ms[way].append(per_round[way])
    finally:
        for conn in conns.values():
            conn.close()
    return {
        "repeats": repeats, "requests_per_round": requests, "warmup": warmup,
        "same_results": returned["direct"] == returned["direct_unprepared"] == returned["pgbouncer"],
        "mean_returned": float(np.mean(returned["direct"])) if returned["direct"] else 0.0,
        "ways": {way: latency_summary(ms[way]) for way in WAYS},
        "ratios": {f"{way}/direct_{q}": ratio_spread(ms[way], ms["direct"], level)
                   for way in WAYS[1:] for q, level in (("p50", 0.5), ("p99", 0.99))},
    }


async def _client_load(settings: Settings, way: str, plan: list[SearchStatement], *, clients: int,
                       duration_s: float) -> int:
    """Searches done by ``clients`` async connections in ``duration_s`` seconds (connections opened first)."""
    if way == "pgbouncer":
        url, kwargs = settings.effective_database_url, connect_kwargs(settings.effective_database_url, settings)
    else:
        url, kwargs = settings.direct_database_url, {"prepare_threshold": 1}
    conns = [await psycopg.AsyncConnection.connect(as_libpq_url(url), autocommit=True, **kwargs)
             for _ in range(clients)]
    if way != "pgbouncer":
        for conn in conns:
            await conn.execute(READ_SESSION_SETUP)
    done = 0
    deadline = time.perf_counter() + duration_s

    async def client(n: int, conn: psycopg.AsyncConnection[Any]) -> None:
        nonlocal done
        i = n
        while time.perf_counter() < deadline:
            statement = plan[i % len(plan)]
            async with conn.cursor() as cur:
                await cur.execute(statement.page_sql, statement.params)
                await cur.fetchone()
            done += 1
            i += clients

    try:
        await asyncio.gather(*(client(n, conn) for n, conn in enumerate(conns)))
    finally:
        for conn in conns:
            await conn.close()
    return done


def clients(settings: Settings, *, repeats: int = 5, clients: int = 50, duration_s: float = 3.0) -> dict[str, Any]:
    """Searches/s of ``clients`` concurrent connections, direct vs through PgBouncer, alternating per round."""
    plan = statements(settings, count=500, seed=11)
    rates: dict[str, list[float]] = {"direct": [], "pgbouncer": []}
    for round_no in range(repeats):
        order = ("direct", "pgbouncer") if round_no % 2 == 0 else ("pgbouncer", "direct")
        for way in order:
            done = asyncio.run(_client_load(settings, way, plan, clients=clients, duration_s=duration_s))
            rates[way].append(done / duration_s)
    return {"repeats": repeats, "clients": clients, "duration_s": duration_s,
            "server_connections": {"direct": clients, "pgbouncer": min(clients, settings.pgbouncer.pool_size)},
            "searches_per_s": {way: spread(r) for way, r in rates.items()},
            "pgbouncer/direct": spread([p / d for p, d in zip(rates["pgbouncer"], rates["direct"], strict=True)])}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line: provision, run the parts, print and save the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", nargs="+", default=["latency", "clients"], choices=["latency", "clients"])
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/dolbom-pgb-bench"))
    parser.add_argument("--pg-port", type=int, default=55542)
    parser.add_argument("--pgbouncer-port", type=int, default=55543)
    parser.add_argument("--pool-size", type=int, default=20)
    parser.add_argument("--centres", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--keep", action="store_true", help="leave the cluster and PgBouncer running")
    args = parser.parse_args(argv)
    settings = bench_settings(args.data_dir, pg_port=args.pg_port, pgbouncer_port=args.pgbouncer_port,
                              pool_size=args.pool_size)
    result: dict[str, Any] = {"started": datetime.now(UTC).isoformat(), "machine": platform.platform(),
                              "centres": args.centres, "pool_size": args.pool_size}
    with provisioned(settings, centres=args.centres, keep=args.keep):
        if "latency" in args.parts:
            result["latency"] = latency(settings, repeats=args.repeats, requests=args.requests)
        if "clients" in args.parts:
            result["clients"] = clients(settings, repeats=args.repeats, clients=args.clients,
                                        duration_s=args.duration)
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"bench_pgbouncer-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    print(f"written {out}")
    return result


if __name__ == "__main__":
    main()
