"""Map layers side by side with tipg: items (bbox, CQL2) and vector tiles (z12-15, cold and cached), throughput
at 8 and 32 concurrent clients, repeated and interleaved, reported as ratios dolbom / tipg with their spread.

Run ``python -m benchmarks.bench_layers`` (see benchmarks/README.md). Both servers run one uvicorn worker on
127.0.0.1 against the same database (a throw-away Seoul import, or ``--url``). tipg is installed with pip into its
own virtualenv (``.dolbom/tipg-venv`` by default), created by this script when missing.

Workloads (each request list is the same for both servers):

- ``items_bbox``: ``/items?bbox=<1 km box around a centre>&limit=50``;
- ``items_cql2``: the same with ``filter=facility_type = 'home' AND capacity > 10`` (CQL2 text);
- ``tiles_cold``: facility tiles z12-15 never requested before from that server process (dolbom renders and
  stores them; tipg always renders);
- ``tiles_cached``: the same tiles requested again (dolbom: version check + memory; tipg: renders again);
- ``tiles_revalidate``: the same with ``If-None-Match`` of the first answer (dolbom 304; tipg has no ETag, 200).

Beside the two servers, every tile run also measures ``sql``: the raw ``ST_AsMVT`` statement of the same tiles
(``tiles.mvt.compiled_tile``, what the API renders) on one psycopg connection per client, so a cached tile's cost
is a ratio to the statement's in the same round. With ``--nginx`` (Debian's nginx installed), the tile workloads
also run through an nginx ``proxy_cache`` (``tiles/nginx.py``) in front of a second API process of its own.

With ``--base-tree DIR`` (a checkout or ``git archive`` export of another revision, e.g. the commit before a
change), a third server, ``base``, runs the API from that directory with this environment's Python, in the same
rounds: ``dolbom_vs_base`` is then the change's own ratio, measured interleaved with tipg and the SQL.

Clients are a minimal asyncio HTTP/1.1 keep-alive client (one connection per client) so that the load generator
costs little next to the servers on a small machine. A round runs every workload at every concurrency on both
servers, alternating which goes first; the ratio of a round is dolbom req/s over tipg req/s.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Engine, text

from benchmarks.bench_read import analyze, load_seoul, throwaway_database
from benchmarks.harness import asyncpg_url, ensure_tipg, free_port, running_server, uvicorn_command
from geo.db import as_libpq_url, check_database, make_engine
from geo.settings import PROJECT_ROOT
from tiles.mvt import compiled_tile
from tiles.nginx import find_nginx, tile_cache_config

RESULTS_DIR = Path(__file__).resolve().parent / "results"
TIPG_VENV = PROJECT_ROOT / ".dolbom" / "tipg-venv"
CQL2 = "facility_type = 'home' AND capacity > 10"
ZOOMS = (12, 13, 14, 15)
WORKLOADS = ("items_bbox", "items_cql2", "tiles_cold", "tiles_cached", "tiles_revalidate")


# --- servers ------------------------------------------------------------------------------------------------


@contextmanager
def server(cmd: list[str], env: dict[str, str], probe: str, port: int, *, cwd: Path = PROJECT_ROOT) -> Iterator[str]:
    """Start ``cmd`` in ``cwd`` and wait until ``probe`` answers 200; yields the base URL; stops it afterwards."""
    base = f"http://127.0.0.1:{port}"
    with running_server(cmd, base_url=base, ready_path=probe, env={**os.environ, **env}, cwd=cwd, timeout_s=120):
        yield base


def dolbom_server(database_url: str, tree: Path | None = None) -> Any:
    """Our API (one uvicorn worker); from the source directory ``tree`` instead of this one when given."""
    port = free_port()
    cmd = uvicorn_command(sys.executable, "api.app:create_app", port, factory=True, fast=False) + ["--workers", "1"]
    if tree is None:
        return server(cmd, {"DATABASE_URL": database_url}, "/ogc/conformance", port)
    return server(cmd, {"DATABASE_URL": database_url, "PYTHONPATH": str(tree)}, "/ogc/conformance", port, cwd=tree)


def tipg_server(tipg_python: Path, database_url: str) -> Any:
    """tipg (one uvicorn worker) on the same database, public schema."""
    port = free_port()
    cmd = uvicorn_command(tipg_python, "tipg.main:app", port, fast=False) + ["--workers", "1"]
    env = {"DATABASE_URL": asyncpg_url(database_url), "TIPG_DB_SCHEMAS": '["public"]',
           "TIPG_DB_TABLES": '["public.facilities", "public.districts", "public.admin_dongs"]'}
    return server(cmd, env, "/collections/public.facilities", port)


@contextmanager
def nginx_server(upstream: str, *, valid_s: int) -> Iterator[str]:
    """nginx (one worker) caching tiles in front of ``upstream`` (a base URL); yields nginx's base URL."""
    nginx = find_nginx()
    if nginx is None:
        raise RuntimeError("--nginx: no nginx binary (apt-get install nginx-light)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="dolbom-nginx-") as tmp:
        prefix = Path(tmp)
        prefix.chmod(0o755)
        user = getpass.getuser() if os.geteuid() == 0 else None  # workers as the same user: the cache is ours
        conf = prefix / "nginx.conf"
        conf.write_text(tile_cache_config(upstream=upstream.removeprefix("http://"), listen=f"127.0.0.1:{port}",
                                          prefix=prefix, valid_s=valid_s, user=user), encoding="utf-8")
        base = f"http://127.0.0.1:{port}"
        cmd = [str(nginx), "-p", str(prefix), "-c", str(conf)]
        with running_server(cmd, base_url=base, ready_path="/ogc/conformance", env=dict(os.environ), timeout_s=30):
            yield base


# --- requests -----------------------------------------------------------------------------------------------


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """XYZ tile containing lon/lat."""
    n = 2**z
    return (int((lon + 180.0) / 360.0 * n),
            int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n))


def workload_inputs(engine: Engine, *, requests: int, rounds: int, seed: int = 12) -> dict[str, Any]:
    """Boxes around random centres, and disjoint lists of facility tiles (z12-15) for every cold run."""
    rng = random.Random(seed)
    with engine.connect() as conn:
        points = [(float(x), float(y)) for x, y in conn.execute(text(
            "SELECT ST_X(geom_4326), ST_Y(geom_4326) FROM facilities ORDER BY id"))]
    boxes = []
    for _ in range(requests):
        lon, lat = rng.choice(points)
        boxes.append((lon - 0.0056, lat - 0.0045, lon + 0.0056, lat + 0.0045))  # about 1 km
    tiles = sorted({(z, *tile_of(lon, lat, z)) for lon, lat in points for z in ZOOMS})
    rng.shuffle(tiles)
    runs = rounds * 2  # one disjoint list per (round, concurrency)
    per_run = min(requests, len(tiles) // runs)
    chunks = [tiles[i * per_run:(i + 1) * per_run] for i in range(runs)]
    return {"boxes": boxes, "tile_chunks": chunks}


def paths(kind: str, server_name: str, inputs: dict[str, Any], chunk: int) -> list[str]:
    """Request paths of one workload for one server."""
    if kind.startswith("items"):
        base = "/ogc/collections/facilities/items" if server_name == "dolbom" else \
            "/collections/public.facilities/items"
        out = []
        for box in inputs["boxes"]:
            params = {"bbox": ",".join(f"{v:.6f}" for v in box), "limit": "50"}
            if kind == "items_cql2":
                params |= {"filter": CQL2, "filter-lang": "cql2-text"}
            out.append(f"{base}?{urlencode(params)}")
        return out
    tiles = inputs["tile_chunks"][chunk]
    if kind != "tiles_cold":  # answered from memory: several passes, so that a run lasts long enough to measure
        tiles = tiles * inputs.get("cached_passes", 1)
    if server_name == "dolbom":
        return [f"/tiles/facilities/{z}/{x}/{y}.mvt" for z, x, y in tiles]
    return [f"/collections/public.facilities/tiles/WebMercatorQuad/{z}/{x}/{y}" for z, x, y in tiles]


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str,
                   headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    got = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    if got.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readline()).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(int(got.get("content-length", "0")))
    return status, got


async def throughput(base: str, request_paths: list[str], concurrency: int, *,
                     etags: dict[str, str] | None = None) -> tuple[float, dict[str, str]]:
    """Requests per second for ``request_paths`` spread over ``concurrency`` keep-alive clients, and ETags seen."""
    host, port = base.removeprefix("http://").split(":")
    queue: asyncio.Queue[str] = asyncio.Queue()
    for p in request_paths:
        queue.put_nowait(p)
    seen: dict[str, str] = {}
    statuses: list[int] = []

    async def client() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while True:
                try:
                    p = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                headers = {"If-None-Match": etags[p]} if etags and p in etags else {}
                status, got = await _request(reader, writer, p, headers)
                statuses.append(status)
                if "etag" in got:
                    seen[p] = got["etag"]
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    bad = [s for s in statuses if s not in (200, 304)]
    if bad:
        raise RuntimeError(f"{base}: {len(bad)} failed requests (status {bad[0]}) of {len(statuses)}")
    return len(request_paths) / elapsed, seen


async def sql_throughput(database_url: str, tiles: list[tuple[int, int, int]], concurrency: int) -> float:
    """Raw ``ST_AsMVT`` statements per second: the facility tiles of ``tiles`` on ``concurrency`` connections."""
    import psycopg

    queue: asyncio.Queue[tuple[int, int, int]] = asyncio.Queue()
    for tile in tiles:
        queue.put_nowait(tile)
    conns = [await psycopg.AsyncConnection.connect(as_libpq_url(database_url), autocommit=True)
             for _ in range(concurrency)]

    async def client(conn: psycopg.AsyncConnection) -> None:
        while True:
            try:
                z, x, y = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            sql, constants = compiled_tile(("facilities",), z)
            cur = await conn.execute(sql, {**constants, "tile_z": z, "tile_x": x, "tile_y": y}, prepare=True)
            await cur.fetchone()

    try:
        started = time.perf_counter()
        await asyncio.gather(*(client(conn) for conn in conns))
        return len(tiles) / (time.perf_counter() - started)
    finally:
        for conn in conns:
            await conn.close()


# --- the run ------------------------------------------------------------------------------------------------


@contextmanager
def _maybe_nginx(database_url: str, enabled: bool, valid_s: int) -> Iterator[str | None]:
    """nginx in front of an API process of its own, or None."""
    if not enabled:
        yield None
        return
    with dolbom_server(database_url) as upstream, nginx_server(upstream, valid_s=valid_s) as base:
        yield base


@contextmanager
def _maybe_base(database_url: str, tree: Path | None) -> Iterator[str | None]:
    """The API of another source tree (``--base-tree``), or None."""
    if tree is None:
        yield None
        return
    with dolbom_server(database_url, tree) as base:
        yield base


def run(engine: Engine, database_url: str, *, tipg_python: Path, requests: int, rounds: int,
        concurrencies: tuple[int, ...], nginx: bool = False, nginx_valid_s: int = 1,
        cached_passes: int = 1, base_tree: Path | None = None,
        workloads: tuple[str, ...] = WORKLOADS) -> dict[str, Any]:
    """Interleaved rounds; returns req/s per (workload, concurrency, server) and per-round ratios."""
    inputs = workload_inputs(engine, requests=requests, rounds=rounds) | {"cached_passes": cached_passes}
    rates: dict[str, dict[str, list[float]]] = {}
    with dolbom_server(database_url) as dolbom, tipg_server(tipg_python, database_url) as tipg, \
            _maybe_nginx(database_url, nginx, nginx_valid_s) as nginx_base, \
            _maybe_base(database_url, base_tree) as other_base:
        bases = {"dolbom": dolbom, "tipg": tipg}
        if nginx_base is not None:
            bases["nginx"] = nginx_base
        if other_base is not None:
            bases["base"] = other_base
        for name, base in bases.items():  # warm every server (connection pools, catalog, PostgreSQL caches)
            asyncio.run(throughput(base, paths("items_bbox", _api(name), inputs, 0)[:20], 4))
        chunk = 0
        for round_no in range(rounds):
            for concurrency in concurrencies:
                turn = (round_no + concurrency) % 2
                etags: dict[str, dict[str, str]] = {}
                for kind in workloads:
                    order = [n for n in bases if kind.startswith("tiles") or n != "nginx"]
                    if kind.startswith("tiles"):
                        order.append("sql")
                    order = order[turn:] + order[:turn] if turn else order[::-1]
                    for name in order:
                        key = f"{kind}@{concurrency}"
                        if name == "sql":
                            sql_tiles = inputs["tile_chunks"][chunk]
                            rate = asyncio.run(sql_throughput(database_url, sql_tiles, concurrency))
                        else:
                            request_paths = paths(kind, _api(name), inputs, chunk)
                            rate, seen = asyncio.run(throughput(
                                bases[name], request_paths, concurrency,
                                etags=etags.get(name) if kind == "tiles_revalidate" else None))
                            if kind == "tiles_cold":
                                etags[name] = seen
                        rates.setdefault(key, {}).setdefault(name, []).append(rate)
                chunk += 1
    table = []
    for key, by_server in rates.items():
        ratios = [d / t for d, t in zip(by_server["dolbom"], by_server["tipg"], strict=True)]
        row: dict[str, Any] = {
            "workload": key.split("@")[0], "clients": int(key.split("@")[1]),
            "dolbom_rps_median": statistics.median(by_server["dolbom"]),
            "tipg_rps_median": statistics.median(by_server["tipg"]),
            "ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
            "rounds": len(ratios),
        }
        for other in ("nginx", "sql", "base"):
            if other in by_server:
                row[f"{other}_rps_median"] = statistics.median(by_server[other])
        if "base" in by_server:  # this tree / the base tree, per round
            row["dolbom_vs_base"] = _spread([d / b for d, b in zip(by_server["dolbom"], by_server["base"],
                                                                   strict=True)])
            row["base_vs_tipg"] = _spread([b / t for b, t in zip(by_server["base"], by_server["tipg"], strict=True)])
            if "sql" in by_server:
                row["base_vs_sql"] = _spread([b / q for b, q in zip(by_server["base"], by_server["sql"],
                                                                    strict=True)])
        if "nginx" in by_server:
            row["nginx_vs_tipg"] = _spread([n / t for n, t in zip(by_server["nginx"], by_server["tipg"], strict=True)])
        if "sql" in by_server:  # a tile served / the raw statement of that tile: > 1 means cheaper than the SQL
            row["dolbom_vs_sql"] = _spread([d / q for d, q in zip(by_server["dolbom"], by_server["sql"], strict=True)])
            row["tipg_vs_sql"] = _spread([t / q for t, q in zip(by_server["tipg"], by_server["sql"], strict=True)])
            if "nginx" in by_server:
                row["nginx_vs_sql"] = _spread([n / q for n, q in zip(by_server["nginx"], by_server["sql"],
                                                                     strict=True)])
        table.append(row)
    return {"requests_per_run": requests, "rounds": rounds, "results": table,
            "tiles_per_cold_run": len(inputs["tile_chunks"][0]), "cached_passes": cached_passes,
            "nginx_valid_s": nginx_valid_s if nginx else None}


def _api(name: str) -> str:
    """Whose paths a server answers: nginx and the base tree serve dolbom's."""
    return "dolbom" if name in ("nginx", "base") else name


def _spread(values: list[float]) -> dict[str, float]:
    """Median, min and max of per-round ratios."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def print_table(report: dict[str, Any]) -> None:
    """Human-readable table of the ratios."""
    print(f"{'workload':<18}{'clients':>8}{'dolbom/s':>11}{'tipg/s':>10}{'ratio':>8}  spread (min-max)")
    for row in report["results"]:
        print(f"{row['workload']:<18}{row['clients']:>8}{row['dolbom_rps_median']:>11.0f}"
              f"{row['tipg_rps_median']:>10.0f}{row['ratio_median']:>8.2f}  "
              f"{row['ratio_min']:.2f}-{row['ratio_max']:.2f} ({row['rounds']} rounds)")
    extra = [row for row in report["results"] if "dolbom_vs_sql" in row]
    if extra:
        print(f"\n{'workload':<18}{'clients':>8}{'sql/s':>9}{'dolbom/sql':>18}{'tipg/sql':>18}"
              f"{'nginx/s':>9}{'nginx/tipg':>18}{'nginx/sql':>18}")
        def cell(row: dict[str, Any], name: str) -> str:
            r = row.get(name)
            return f"{r['median']:.2f} [{r['min']:.2f}-{r['max']:.2f}]" if r else "-"

        for row in extra:
            nginx_rps = f"{row['nginx_rps_median']:.0f}" if "nginx_rps_median" in row else "-"
            print(f"{row['workload']:<18}{row['clients']:>8}{row['sql_rps_median']:>9.0f}"
                  f"{cell(row, 'dolbom_vs_sql'):>18}{cell(row, 'tipg_vs_sql'):>18}{nginx_rps:>9}"
                  f"{cell(row, 'nginx_vs_tipg'):>18}{cell(row, 'nginx_vs_sql'):>18}")


def print_base(report: dict[str, Any]) -> None:
    """The ratios to the base tree's API (``--base-tree``), when it ran."""
    rows = [row for row in report["results"] if "dolbom_vs_base" in row]
    if not rows:
        return
    print(f"\n{'workload':<18}{'clients':>8}{'base/s':>9}{'dolbom/base':>20}{'base/tipg':>20}{'base/sql':>20}")
    for row in rows:
        cells = [f"{r['median']:.2f} [{r['min']:.2f}-{r['max']:.2f}]" if (r := row.get(name)) else "-"
                 for name in ("dolbom_vs_base", "base_vs_tipg", "base_vs_sql")]
        print(f"{row['workload']:<18}{row['clients']:>8}{row['base_rps_median']:>9.0f}"
              + "".join(f"{c:>20}" for c in cells))


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, prepare data and tipg, run, print and save."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_layers", description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="an existing database with the Seoul import (else a throw-away one)")
    parser.add_argument("--requests", type=int, default=400, help="requests per run (default 400)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--tipg-venv", type=Path, default=TIPG_VENV)
    parser.add_argument("--shared-data", type=Path,
                        default=Path(os.environ.get("DOLBOM_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data")))
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the throw-away database")
    parser.add_argument("--cached-passes", type=int, default=5,
                        help="passes over the tile list in tiles_cached / tiles_revalidate (default 5)")
    parser.add_argument("--nginx", action="store_true", help="also tiles through an nginx proxy_cache (Debian nginx)")
    parser.add_argument("--nginx-valid-s", type=int, default=1, help="nginx: seconds before revalidation")
    parser.add_argument("--base-tree", type=Path,
                        help="also run the API of this source directory (e.g. a git archive of the commit before a "
                             "change) as 'base', interleaved")
    parser.add_argument("--workloads", nargs="+", choices=WORKLOADS, default=list(WORKLOADS),
                        help="run only these workloads (default all), e.g. --workloads items_bbox items_cql2")
    parser.add_argument("--output", type=Path, help="write the JSON report here (default benchmarks/results/)")
    args = parser.parse_args(argv)

    tipg_python = ensure_tipg(args.tipg_venv)
    environment: dict[str, Any] = {"python": platform.python_version(), "cpus": os.cpu_count()}

    def go(engine: Engine, url: str) -> dict[str, Any]:
        environment.update(check_database(engine))
        return run(engine, url, tipg_python=tipg_python, requests=args.requests, rounds=args.rounds,
                   concurrencies=tuple(args.clients), nginx=args.nginx, nginx_valid_s=args.nginx_valid_s,
                   cached_passes=args.cached_passes, base_tree=args.base_tree,
                   workloads=tuple(w for w in WORKLOADS if w in args.workloads))

    if args.url:
        engine = make_engine(args.url)
        report = go(engine, args.url)
        engine.dispose()
    else:
        with throwaway_database("layers", keep=args.keep) as (engine, filled):
            if not filled:
                load_seoul(engine, args.shared_data)
                analyze(engine)
            report = go(engine, engine.url.render_as_string(hide_password=False))
    report["environment"] = environment
    print_table(report)
    print_base(report)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = args.output or RESULTS_DIR / f"bench_layers-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
