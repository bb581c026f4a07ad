"""Report -> SSE event latency with many connected clients, as a ratio to a bare NOTIFY -> LISTEN round trip.

Run ``python -m benchmarks.bench_vacancy`` (see benchmarks/README.md). In a throw-away database of the
project-local cluster: one test centre, a city admin with a bearer token, one uvicorn API process on
127.0.0.1 and ``--clients`` (default 1,000) SSE clients (httpx, one asyncio loop in this process) on
``GET /vacancy/stream``. Rounds alternate two measurements:

- ``notify``: a bare ``NOTIFY`` on one psycopg connection until ``LISTEN`` on another receives it (the floor
  of any push through PostgreSQL);
- ``report``: ``POST /vacancy/centres/{code}/reports`` until each connected client has parsed the event;
  one latency per (round, client): validation, history, audit, event row, NOTIFY, the API process's fan-out
  and SSE framing, the client's parsing. Also reported: ``post`` (the POST's own response time) and
  ``report_first`` (until the first of the clients has the event: the pipeline without the fan-out).

Reported: p50/p99/mean (ms) of both, the ratios report/notify of p50 and p99 of the same run, and the spread
of the per-block p50s (rounds split in ``--blocks`` blocks). Results are printed and written to
``benchmarks/results/bench_vacancy-<timestamp>.json`` (gitignored).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy import Engine, text

from benchmarks.harness import (
    PROJECT_ROOT,
    free_port,
    latency_stats,
    process_cpu_s,
    quantile,
    running_server,
    tree_cpu_s,
)
from geo.auth.accounts import create_user, issue_token
from geo.db import as_libpq_url
from geo.settings import Settings

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CODE = "B0000000001"


def prepare(engine: Engine) -> str:
    """One centre and a city admin; returns the admin's bearer token."""
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM facilities WHERE code = :c"), {"c": CODE})
        conn.execute(text("DELETE FROM users WHERE email = 'bench@example.kr'"))
        conn.execute(text("""
            INSERT INTO facilities (code, name, facility_type, status, district_code, capacity, enrolled,
                classes_by_age, geocode_quality, source, geom_4326)
            VALUES (:c, '벤치어린이집', 'national_public', 'active', '11440', 60, 0, :classes, 'source', 'bench',
                    ST_SetSRID(ST_MakePoint(126.91, 37.56), 4326))
        """), {"c": CODE, "classes": Jsonb({"0": 2, "1": 2, "2": 2})})
        admin = create_user(conn, email="bench@example.kr", password="bench password 1", role="city_admin")
        return issue_token(conn, Settings(), user_id=admin, kind="bearer").secret


async def _clients(url: str, *, clients: int, processes: int, workdir: Path, timeout_s: float,
                   path: str = f"/vacancy/stream?code={CODE}") -> list[asyncio.subprocess.Process]:
    """Start ``processes`` processes of ``benchmarks.sse_clients`` sharing ``clients``; return once all are open."""
    host, port = url.removeprefix("http://").split(":")
    procs = []
    for i in range(processes):
        share = clients // processes + (1 if i < clients % processes else 0)
        procs.append(await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.sse_clients", "--host", host, "--port", port,
            "--path", path, "--clients", str(share), "--out", str(workdir / f"{i}.json"),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=Path(__file__).resolve().parent.parent))
    for proc in procs:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout_s)
        if line.strip() != b"ready":
            raise RuntimeError(f"SSE client process did not open its streams: {line!r}")
    return procs


async def _measure(engine: Engine, url: str, token: str, *, clients: int, rounds: int, processes: int,
                   timeout_s: float, server_pids: list[int], stream_url: str | None = None,
                   stream_path: str = f"/vacancy/stream?code={CODE}") -> dict[str, Any]:
    dsn = as_libpq_url(engine.url.render_as_string(hide_password=False))
    notify_ms: list[float] = []
    post_ms: list[float] = []
    started: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        procs = await _clients(stream_url or url, clients=clients, processes=processes, workdir=workdir,
                               timeout_s=timeout_s, path=stream_path)
        # A new connection per report: a round can outlast the server's keep-alive timeout (the server then closes
        # the idle connection just as the next POST reuses it: "Server disconnected without sending a response").
        async with httpx.AsyncClient(timeout=httpx.Timeout(timeout_s),
                                     limits=httpx.Limits(max_keepalive_connections=0)) as http, \
                await psycopg.AsyncConnection.connect(dsn, autocommit=True) as listener, \
                await psycopg.AsyncConnection.connect(dsn, autocommit=True) as sender:
            await listener.execute("LISTEN bench_round_trip")
            headers = {"Authorization": f"Bearer {token}"}
            # CPU seconds of the API processes and of the client processes over the measured rounds: what one
            # report costs regardless of how much of the (shared) machine the run got.
            cpu_before = (sum(tree_cpu_s(pid) for pid in server_pids), sum(process_cpu_s(p.pid) for p in procs))
            try:
                for i in range(rounds):
                    # Baseline: bare NOTIFY -> LISTEN.
                    t0 = time.perf_counter()
                    await sender.execute("SELECT pg_notify('bench_round_trip', %s)", (str(i),))
                    async for _ in listener.notifies(timeout=timeout_s, stop_after=1):
                        pass
                    notify_ms.append((time.perf_counter() - t0) * 1000)
                    # Report -> every client has the event (each client process says so once all of its have).
                    t0 = time.perf_counter()
                    resp = await http.post(f"{url}/vacancy/centres/{CODE}/reports", headers=headers,
                                           json={"enrolled_by_age": {"0": i % 6}, "free_by_age": {"0": 0}})
                    resp.raise_for_status()
                    post_ms.append((time.perf_counter() - t0) * 1000)
                    seq = int(resp.json()["seq"])
                    started[seq] = t0
                    for proc in procs:
                        assert proc.stdout is not None
                        line = await asyncio.wait_for(proc.stdout.readline(), timeout_s)
                        if line.strip() != f"got {seq}".encode():
                            raise RuntimeError(f"expected every client to get event {seq}, read {line!r}")
                cpu = (sum(tree_cpu_s(pid) for pid in server_pids) - cpu_before[0],
                       sum(process_cpu_s(p.pid) for p in procs) - cpu_before[1])
            finally:
                for proc in procs:
                    assert proc.stdin is not None
                    proc.stdin.write(b"quit\n")
                    await proc.stdin.drain()
                    proc.stdin.close()
                for proc in procs:
                    await asyncio.wait_for(proc.wait(), timeout_s)
        report_ms: list[float] = []
        first_ms: list[float] = []
        reconnects = 0
        per_seq: dict[int, list[float]] = {}
        for i in range(processes):
            data = json.loads((workdir / f"{i}.json").read_text())
            reconnects += data["reconnects"]
            for seq, times in data["arrivals"].items():
                per_seq.setdefault(int(seq), []).extend(times)
        for seq, t0 in started.items():
            times = per_seq[seq]
            report_ms.extend((t - t0) * 1000 for t in times)
            first_ms.append((min(times) - t0) * 1000)
    return {"notify": notify_ms, "report": report_ms, "report_first": first_ms, "post": post_ms,
            "reconnects": reconnects, "server_cpu_s": cpu[0], "client_cpu_s": cpu[1]}


@contextmanager
def nchan_front(engine: Engine, api_url: str, *, timeout_s: float,
                nginx_workers: int = 1) -> Iterator[tuple[str, list[int]]]:
    """nginx + Nchan in front of ``api_url`` (``geo.vacancy.nchan.fanout_config``) and ``dolbom vacancy relay``;
    yields the front's URL and the pids of nginx and the relay (their CPU counts as the server's)."""
    from geo.vacancy.nchan import PUBLISH_PATH, fanout_config
    from tiles.nginx import find_nginx

    nginx = find_nginx()
    if nginx is None:
        raise SystemExit("--front nchan needs nginx and libnginx-mod-nchan (apt-get install nginx-light "
                         "libnginx-mod-nchan)")
    front_port, pub_port = free_port(), free_port()
    front = f"http://127.0.0.1:{front_port}"
    with tempfile.TemporaryDirectory() as tmp:
        prefix = Path(tmp)
        conf = prefix / "nginx.conf"
        conf.write_text(fanout_config(upstream=api_url.removeprefix("http://"), listen=f"127.0.0.1:{front_port}",
                                      publisher_listen=f"127.0.0.1:{pub_port}", prefix=prefix,
                                      worker_processes=nginx_workers,
                                      user=getpass.getuser() if os.geteuid() == 0 else None), encoding="utf-8")
        with running_server([str(nginx), "-p", str(prefix), "-c", str(conf)], base_url=front, ready_path="/health",
                            env=dict(os.environ), timeout_s=timeout_s) as server:
            relay = subprocess.Popen(
                [sys.executable, "-m", "geo.cli", "vacancy", "relay", "--publish-url",
                 f"http://127.0.0.1:{pub_port}{PUBLISH_PATH}"], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True,
                env={**os.environ, "DATABASE_URL": engine.url.render_as_string(hide_password=False)})
            try:
                assert relay.stdout is not None
                if "listening" not in relay.stdout.readline():
                    raise RuntimeError("the relay did not start")
                yield front, [server.pid, relay.pid]
            finally:
                relay.terminate()
                relay.wait(timeout=timeout_s)


def run_benchmark(engine: Engine, *, clients: int = 1000, rounds: int = 60, blocks: int = 3, workers: int = 1,
                  client_processes: int = 2, timeout_s: float = 120.0,
                  server_dir: Path | None = None, front: str = "python", nginx_workers: int = 1) -> dict[str, Any]:
    """Start the API (``workers`` uvicorn processes) on ``engine``'s database, connect ``clients`` streams from
    ``client_processes`` processes, measure ``rounds`` rounds. ``server_dir``: the checkout whose API is served
    (default this one; another commit's tree measures the code before a change with the same clients).
    ``front="nchan"``: the clients hold their streams on nginx + Nchan (fed by the relay) instead of the API."""
    token = prepare(engine)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by the server and the clients
    env = {**os.environ, "DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    command = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1", "--port",
               str(port), "--log-level", "warning", "--backlog", "4096", "--workers", str(workers)]
    try:
        with running_server(command, base_url=url, ready_path="/health", env=env, timeout_s=timeout_s,
                            cwd=server_dir or PROJECT_ROOT) as server, ExitStack() as stack:
            pids = [server.pid]
            options: dict[str, Any] = {}
            if front == "nchan":
                front_url, front_pids = stack.enter_context(nchan_front(engine, url, timeout_s=timeout_s,
                                                                        nginx_workers=nginx_workers))
                pids += front_pids
                options = {"stream_url": front_url, "stream_path": "/vacancy/stream"}
            # One warm-up (first LISTEN connection in every worker, code paths, pools) is measured and dropped.
            asyncio.run(_measure(engine, url, token, clients=min(clients, 20 * workers), rounds=2, processes=1,
                                 timeout_s=timeout_s, server_pids=pids, **options))
            samples = asyncio.run(_measure(engine, url, token, clients=clients, rounds=rounds,
                                           processes=client_processes, timeout_s=timeout_s,
                                           server_pids=pids, **options))
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    notify, report = samples["notify"], samples["report"]
    per_block = max(1, rounds // blocks)
    block_ratios = []
    block_p99_ms = []
    for b in range(blocks):
        n = notify[b * per_block:(b + 1) * per_block]
        r = report[b * per_block * clients:(b + 1) * per_block * clients]
        if n and r:
            block_ratios.append(quantile(r, 0.5) / quantile(n, 0.5))
            block_p99_ms.append(quantile(r, 0.99))
    return {
        "clients": clients, "rounds": rounds, "workers": workers, "client_processes": client_processes,
        "front": front, "nginx_workers": nginx_workers if front == "nchan" else None,
        "machine": f"{platform.machine()} {os.cpu_count()} cpu",
        "notify": latency_stats(notify), "report": latency_stats(report),
        "report_first": latency_stats(samples["report_first"]),
        "post": latency_stats(samples["post"]),
        "ratio_p50": quantile(report, 0.5) / quantile(notify, 0.5),
        "ratio_p99": quantile(report, 0.99) / quantile(notify, 0.99),
        "ratio_p50_by_block": block_ratios,
        "report_p99_ms_by_block": block_p99_ms,
        "reconnects": samples["reconnects"],
        # CPU per delivered event (one report to one client), API processes (incl. the POST) and clients.
        "server_cpu_us_per_delivery": samples["server_cpu_s"] / (rounds * clients) * 1e6,
        "client_cpu_us_per_delivery": samples["client_cpu_s"] / (rounds * clients) * 1e6,
    }


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (each its own LISTEN)")
    parser.add_argument("--client-processes", type=int, default=2, help="processes holding the SSE clients")
    parser.add_argument("--server-dir", type=Path, help="serve the API of this checkout (e.g. an older commit's)")
    parser.add_argument("--front", choices=("python", "nchan", "both"), default="python",
                        help="who holds the streams: the API (python), nginx + Nchan, or both in alternate runs")
    parser.add_argument("--pairs", type=int, default=1, help="with --front both: python/nchan pairs to run")
    parser.add_argument("--nginx-workers", type=int, default=1, help="nginx worker processes (--front nchan)")
    parser.add_argument("--keep", action="store_true", help="keep the throw-away database")
    args = parser.parse_args()
    from benchmarks.bench_read import throwaway_database

    fronts = ["python", "nchan"] * args.pairs if args.front == "both" else [args.front]
    results = []
    with throwaway_database("vacancy", keep=args.keep) as (engine, _):
        for front in fronts:
            results.append(run_benchmark(engine, clients=args.clients, rounds=args.rounds, blocks=args.blocks,
                                         workers=args.workers, client_processes=args.client_processes,
                                         server_dir=args.server_dir, front=front,
                                         nginx_workers=args.nginx_workers))
            print_result(results[-1])
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"bench_vacancy-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(results if len(results) > 1 else results[0], indent=2))
    print(f"wrote {out}")


def print_result(result: dict[str, Any]) -> None:
    """One run's figures as text."""
    print(f"front: {result['front']}")
    print(f"{'':12} {'n':>7} {'p50 ms':>9} {'p99 ms':>9} {'mean ms':>9}")
    for name in ("notify", "post", "report_first", "report"):
        s = result[name]
        print(f"{name:12} {s['n']:>7} {s['p50_ms']:>9.2f} {s['p99_ms']:>9.2f} {s['mean_ms']:>9.2f}")
    spread = ", ".join(f"{r:.1f}" for r in result["ratio_p50_by_block"])
    p99s = ", ".join(f"{ms:.0f}" for ms in result["report_p99_ms_by_block"])
    print(f"report/notify: p50 x{result['ratio_p50']:.1f}, p99 x{result['ratio_p99']:.1f} "
          f"(p50 ratio by block: {spread}; report p99 ms by block: {p99s}); {result['clients']} clients, "
          f"{result['workers']} workers, {result['reconnects']} reconnect frames")
    print(f"CPU per delivered event: API {result['server_cpu_us_per_delivery']:.1f} us, "
          f"clients {result['client_cpu_us_per_delivery']:.1f} us", flush=True)


if __name__ == "__main__":
    main()
