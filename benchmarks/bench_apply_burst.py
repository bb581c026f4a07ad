"""Bursts of waitlist applications against one real uvicorn worker: every parent applies at the same moment.

Two shapes (issue #19): ``one``, every application to the same centre (each waits on the centre's advisory
lock), and ``spread``, the applications over many centres (10 per centre). Each burst is preceded in the same
run by its baseline: the same number of applications sent one at a time on the same server. Reported: the
burst's wall time over the baseline's, latency percentiles, the status counts (anything but 201 is a failure),
and ``/health`` polled every 0.25 s during the burst (its worst answer time and any non-200).

Run ``python -m benchmarks.bench_apply_burst`` (the project-local cluster; a scratch database ``dolbom_burst``
is created and dropped). The seeding and the burst are shared with the regression test
``tests/api/test_apply_burst.py``, which asserts the statuses and ranks, never times.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date

import httpx
from sqlalchemy import Engine, text

from benchmarks.harness import free_port, running_server
from geo.admission.rules import childcare_year
from geo.auth.accounts import issue_token
from geo.settings import Settings

PREFIX = "BURST"  # codes of the seeded centres and e-mails of the seeded parents
DATABASE = "dolbom_burst"


@dataclass(frozen=True)
class Application:
    """One parent's application: their bearer token, their child and the centre."""

    token: str
    child_id: int
    centre: str


@dataclass
class Burst:
    """What a burst saw: per application its status (None: no answer) and seconds; ``/health`` polls."""

    statuses: list[int | None] = field(default_factory=list)
    times_s: list[float] = field(default_factory=list)
    health: list[tuple[int | None, float]] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)  # client errors of unanswered requests, by type
    wall_s: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        """Applications by status (``"none"``: the client got no answer)."""
        return dict(Counter("none" if s is None else str(s) for s in self.statuses))


def seed(engine: Engine, settings: Settings, *, centres: int, per_centre: int, tag: str = "") -> list[Application]:
    """``centres`` operating centres (codes ``BURST<tag>-<n>``) and ``per_centre`` identity-verified parents for
    each, with one child in this year's 0세반 and a bearer token; committed (use a scratch database). Returns
    one application per parent, centre by centre in turn."""
    year = childcare_year(date.today())
    born = date(year - 1, 3, 1)  # 0세반 of the current 보육연도
    out: list[Application] = []
    with engine.begin() as conn:
        codes = conn.execute(text("""
            INSERT INTO facilities (code, name, facility_type, status, district_code, capacity, classes_by_age,
                                    free_by_age, geocode_quality, source, geom_4326)
            SELECT :p || '-' || i, '버스트어린이집' || i, '국공립', 'active', '11110', 20,
                   '{"0": 2}'::jsonb, '{"0": 0}'::jsonb, 'source', 'bench_apply_burst',
                   ST_SetSRID(ST_MakePoint(126.97 + i * 0.001, 37.57), 4326)
            FROM generate_series(1, :n) AS i ORDER BY i RETURNING code"""),
            {"p": PREFIX + tag, "n": centres}).scalars().all()
        parents = conn.execute(text("""
            INSERT INTO users (email, password_hash, role, verified_at, verified_name)
            SELECT lower(:p) || '-' || i || '@example.kr', 'not-a-login', 'parent', now(), '부모' || i
            FROM generate_series(1, :n) AS i ORDER BY i RETURNING id"""),
            {"p": PREFIX + tag, "n": centres * per_centre}).scalars().all()
        children = conn.execute(text("""
            INSERT INTO children (public_id, parent_user_id, name, birth_date, enrolled)
            SELECT md5(random()::text || p)::text, p, '아이' || p, :born, false
            FROM unnest(CAST(:parents AS bigint[])) WITH ORDINALITY AS t(p, i) ORDER BY i RETURNING id"""),
            {"parents": list(parents), "born": born}).scalars().all()
        for i, (parent_id, child_id) in enumerate(zip(parents, children, strict=True)):
            token = issue_token(conn, settings, user_id=parent_id, kind="bearer", label="burst").secret
            out.append(Application(token, int(child_id), codes[i % centres]))
    return out


async def _apply(client: httpx.AsyncClient, app: Application, burst: Burst, index: int) -> None:
    started = time.perf_counter()
    try:
        resp = await client.post("/waitlist/entries", json={"child_id": app.child_id, "centre": app.centre},
                                 headers={"Authorization": f"Bearer {app.token}"})
        burst.statuses[index] = resp.status_code
    except httpx.HTTPError as exc:
        burst.statuses[index] = None
        burst.errors[type(exc).__name__] += 1
    burst.times_s[index] = time.perf_counter() - started


async def _poll_health(client: httpx.AsyncClient, burst: Burst, done: asyncio.Event, every_s: float) -> None:
    while not done.is_set():
        started = time.perf_counter()
        try:
            status: int | None = (await client.get("/health")).status_code
        except httpx.HTTPError as exc:
            status = None
            burst.errors[f"health {type(exc).__name__}"] += 1
        burst.health.append((status, time.perf_counter() - started))
        try:
            await asyncio.wait_for(done.wait(), timeout=every_s)
        except TimeoutError:
            pass


async def _burst(base_url: str, apps: Sequence[Application], *, concurrency: int, timeout_s: float,
                 health_every_s: float, health_timeout_s: float) -> Burst:
    burst = Burst(statuses=[None] * len(apps), times_s=[0.0] * len(apps))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(timeout_s)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as client, \
            httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(health_timeout_s),
                              # A new connection per probe, as a load balancer's or Kubernetes' probes make: a
                              # kept-alive one may be closed by the server just as the next probe is sent.
                              limits=httpx.Limits(max_keepalive_connections=0)) as health_client:
        done = asyncio.Event()
        poller = asyncio.create_task(_poll_health(health_client, burst, done, health_every_s))
        started = time.perf_counter()
        if concurrency == 1:  # the baseline: one after another (not 1,000 requests queued on one connection)
            for i, app in enumerate(apps):
                await _apply(client, app, burst, i)
        else:
            await asyncio.gather(*(_apply(client, app, burst, i) for i, app in enumerate(apps)))
        burst.wall_s = time.perf_counter() - started
        done.set()
        await poller
    return burst


def burst(base_url: str, apps: Sequence[Application], *, concurrency: int | None = None, timeout_s: float = 180.0,
          health_every_s: float = 0.25, health_timeout_s: float = 10.0) -> Burst:
    """Send every application of ``apps`` at once (``concurrency`` connections at most; default: all), polling
    ``/health`` meanwhile. ``timeout_s`` bounds each application, ``health_timeout_s`` each health check (hang
    guards: an unanswered request counts as None; a load balancer would have taken the worker out long before
    ``/health`` took 10 s)."""
    return asyncio.run(_burst(base_url, apps, concurrency=concurrency or len(apps), timeout_s=timeout_s,
                              health_every_s=health_every_s, health_timeout_s=health_timeout_s))


def queue_ranks(base_url: str, centre: str) -> list[int]:
    """The ranks of the centre's public 0세반 queue, as served."""
    resp = httpx.get(f"{base_url}/waitlist/centres/{centre}/queue", params={"age_class": 0}, timeout=60)
    resp.raise_for_status()
    return sorted(int(row["rank"]) for row in resp.json())


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def summary(result: Burst) -> dict[str, object]:
    """Counts, wall time, latency p50/p95/max (s) and ``/health``'s worst time and failures."""
    health_s = [s for _, s in result.health]
    return {"counts": result.counts, "wall_s": round(result.wall_s, 3),
            "p50_s": round(statistics.median(result.times_s), 3) if result.times_s else None,
            "p95_s": round(_percentile(result.times_s, 0.95), 3), "max_s": round(max(result.times_s, default=0), 3),
            "health_polls": len(result.health), "health_failures": sum(1 for s, _ in result.health if s != 200),
            "health_counts": dict(Counter("none" if s is None else str(s) for s, _ in result.health)),
            "health_max_s": round(max(health_s, default=0.0), 3), "errors": dict(result.errors)}


def measure(engine: Engine, settings: Settings, base_url: str, *, shape: str, applications: int,
            run: str = "") -> dict[str, object]:
    """One shape: a warm-up (5 applications), the baseline (the applications one at a time, on fresh centres),
    then the burst (all at once, on other fresh centres)."""
    centres = 1 if shape == "one" else max(1, applications // 10)
    per_centre = applications // centres
    burst(base_url, seed(engine, settings, centres=1, per_centre=5, tag=f"{run}{shape}w"), concurrency=1)
    sequential = seed(engine, settings, centres=centres, per_centre=per_centre, tag=f"{run}{shape}s")
    base = burst(base_url, sequential, concurrency=1)
    burst_apps = seed(engine, settings, centres=centres, per_centre=per_centre, tag=f"{run}{shape}b")
    result = burst(base_url, burst_apps)
    return {"shape": shape, "applications": len(burst_apps), "centres": centres, "baseline": summary(base),
            "burst": summary(result), "burst_over_baseline": round(result.wall_s / base.wall_s, 3)}


@contextmanager
def uvicorn_worker(database_url: str, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """One uvicorn worker (the default ``dolbom serve``) on ``database_url``; yields its base URL."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, **(extra_env or {})}
    cmd = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1",
           "--port", str(port), "--workers", "1", "--log-level", "warning", "--no-access-log"]
    base = f"http://127.0.0.1:{port}"
    with running_server(cmd, base_url=base, ready_path="/ogc/conformance", env=env):
        yield base


@contextmanager
def scratch_database(settings: Settings) -> Iterator[Engine]:
    """``dolbom_burst`` on the project-local cluster, migrated; dropped afterwards."""
    from geo.db import make_engine
    from geo.ops import provision
    from geo.ops.migrate import upgrade

    provision.up(settings)
    provision.drop_database(settings, DATABASE)
    provision.ensure_database(settings, DATABASE)
    engine = make_engine(settings.local_database_url(DATABASE))
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        provision.drop_database(settings, DATABASE)


def log_cost(engine: Engine, url: str, *, shape: str, applications: int, rounds: int) -> dict[str, object]:
    """The transparency log's cost on applications (docs/transparency-log.md): the same shape measured with the
    log off (its trigger disabled, ``DOLBOM_LOG_ON_WRITE=false``: no receipt, no publication after the commit)
    and on, alternating ``rounds`` times on fresh servers; the ratios of on over off, per round."""
    runs: dict[str, list[dict[str, object]]] = {"off": [], "on": []}
    for round_ in range(rounds):
        for mode in ("off", "on"):
            with engine.begin() as conn:
                verb = "DISABLE" if mode == "off" else "ENABLE"
                conn.execute(text(f"ALTER TABLE waitlist_chain {verb} TRIGGER waitlist_log_enqueue"))
            env = {"DOLBOM_LOG_ON_WRITE": "false" if mode == "off" else "true"}
            with uvicorn_worker(url, env) as base_url:
                runs[mode].append(measure(engine, Settings(DATABASE_URL=url), base_url, shape=shape,
                                          applications=applications, run=f"{mode}{round_}"))
    def wall(run: dict[str, object], part: str) -> float:
        return float(run[part]["wall_s"])  # type: ignore[index]

    return {"shape": shape, "applications": applications, "rounds": rounds,
            "sequential_on_over_off": [round(wall(on, "baseline") / wall(off, "baseline"), 3)
                                       for on, off in zip(runs["on"], runs["off"], strict=True)],
            "burst_on_over_off": [round(wall(on, "burst") / wall(off, "burst"), 3)
                                  for on, off in zip(runs["on"], runs["off"], strict=True)],
            "off": runs["off"], "on": runs["on"]}


def main(argv: list[str] | None = None) -> int:
    """Run both shapes on one uvicorn worker and print one JSON object per shape."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_apply_burst", description=__doc__.split("\n")[0])
    parser.add_argument("--applications", type=int, default=100, help="per shape (spread: 10 per centre)")
    parser.add_argument("--shapes", nargs="+", choices=("one", "spread"), default=["one", "spread"])
    parser.add_argument("--log-cost", type=int, default=0, metavar="ROUNDS",
                        help="measure the transparency log's cost instead: off/on alternated ROUNDS times")
    args = parser.parse_args(argv)
    settings = Settings(DATABASE_URL=None)
    with scratch_database(settings) as engine:
        url = settings.local_database_url(DATABASE)
        if args.log_cost:
            for shape in args.shapes:
                print(json.dumps(log_cost(engine, url, shape=shape, applications=args.applications,
                                          rounds=args.log_cost), ensure_ascii=False, default=str), flush=True)
            return 0
        with uvicorn_worker(url) as base_url:
            for shape in args.shapes:
                print(json.dumps(measure(engine, Settings(DATABASE_URL=url), base_url, shape=shape,
                                         applications=args.applications), ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
