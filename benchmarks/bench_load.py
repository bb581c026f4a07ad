"""신학기 load test: the locust mix (``benchmarks/load/locustfile.py``) against 1 and 2 uvicorn workers, with and
without a read replica, at rising concurrency; and each request type alone for its CPU cost (capacity plan).

Run ``python -m benchmarks.bench_load`` (see benchmarks/README.md). What it does:

1. A PostGIS cluster of its own (``--data-dir``, default /tmp/dolbom-load-pg, unix socket only, ``--pg-port``),
   with one standby when a configuration needs a replica (``geo.ops.provision.up(settings, replicas=1)``; a
   provisioning error is one ``error:`` line, before any data is loaded). A database
   ``dolbom_load`` with the bundled Seoul data (``geo.ingest.bundled.load_default_seoul``) and ``--parents``
   identity-verified parents seeded in bulk: bearer token, one child in a 0-2세반, ``--entries`` applications to
   centres near home; for the portal's pages (issue 24) web sessions, centre staff of ``--staff-centres`` of
   those centres, care slots and bookings (``seed_portal``).
2. One uvicorn server per configuration (``--workers N``, httptools + uvloop, 127.0.0.1), all running at once;
   the replica configurations get ``DOLBOM_REPLICA_URLS`` = the standby.
3. Rounds: for each concurrency, every configuration in turn (order rotated per round), each a headless locust
   run (``-u N -r N --run-time T --json-file``), the seed snapshot (active entries) rewritten before each run. Then each
   request type alone (locust ``--tags``) on the 1-worker configuration, types interleaved.
4. Per run: requests/s, p50, p99 per request name and overall (locust's CSV), failures, and CPU seconds of the
   server process tree, of the PostgreSQL clusters (primary and standby trees) and of locust itself (/proc via
   psutil). Ratios to the 1-worker, no-replica run of the same round and concurrency; median [min-max] over rounds.

Output: ``<out>/bench_load-<UTC>.md`` (tables) and ``.json`` (every run), default ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import Engine, text

from benchmarks.bench_read import libpq_url
from benchmarks.harness import median_range as _s
from benchmarks.harness import running_server, spread, tree_cpu_s, uvicorn_command
from geo.errors import ProvisioningError
from geo.settings import PROJECT_ROOT, Settings

RESULTS_DIR = Path(__file__).resolve().parent / "results"
LOCUSTFILE = Path(__file__).resolve().parent / "load" / "locustfile.py"
DATABASE = "dolbom_load"
BASE_PORT = 8400
PG_PORT = 55600
DATA_DIR = Path("/tmp/dolbom-load-pg")
# Request types measured alone (locust tags) for the per-core figures, and the locust user classes that have
# tasks of each (a class left without tasks by ``--tags`` must not be started).
API_TYPES = ("search", "detail", "rank", "apply")
PORTAL_TYPES = ("my-applications", "rank-poll", "booking-search", "staff-queue")
TYPES = API_TYPES + PORTAL_TYPES
USER_CLASSES = {**dict.fromkeys(API_TYPES, "Parent"), "my-applications": "PortalParent",
                "rank-poll": "PortalParent", "booking-search": "PortalParent", "staff-queue": "CentreStaff"}
PASSWORD_HASH_OF = "load-test parent"


@dataclass(frozen=True)
class Config:
    """One server configuration."""

    workers: int
    replica: bool

    @property
    def name(self) -> str:
        """``1w``, ``2w+replica``..."""
        return f"{self.workers}w" + ("+replica" if self.replica else "")


CONFIGS = (Config(1, False), Config(2, False), Config(1, True), Config(2, True))
BASELINE = Config(1, False)


def parse_config(value: str) -> Config:
    """``1w``, ``2w``, ``1w+replica``, ``2w+replica``."""
    workers, _, extra = value.partition("w")
    if not workers.isdigit() or extra not in ("", "+replica"):
        raise argparse.ArgumentTypeError(f"config {value!r}: expected like 1w, 2w, 1w+replica")
    return Config(int(workers), extra == "+replica")


# ---------------------------------------------------------------------------------------------------------
# Cluster, data, seed
# ---------------------------------------------------------------------------------------------------------


def cluster_settings(data_dir: Path, pg_port: int) -> Settings:
    """Settings of the harness's own local cluster (the project-local provisioning in another directory)."""
    return Settings(DATABASE_URL=None, DOLBOM_DATA_DIR=data_dir, DOLBOM_PG_PORT=pg_port)


def prepare_database(settings: Settings, *, fresh: bool) -> Engine:
    """``dolbom_load`` migrated and loaded with the bundled Seoul data (kept and reused unless ``fresh``)."""
    from geo.db import make_engine
    from geo.ingest.bundled import load_default_seoul
    from geo.ops import provision
    from geo.ops.migrate import upgrade

    if fresh:
        provision.drop_database(settings, DATABASE)
    provision.ensure_database(settings, DATABASE)
    engine = make_engine(settings.local_database_url(DATABASE))
    upgrade(engine)
    load_default_seoul(engine)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    return engine


def seed_parents(engine: Engine, *, parents: int, entries: int, centres: int = 60,
                 targets: int = 8, seed: int = 20260301) -> int:
    """``parents`` identity-verified parents with one child (0-2세반, some priority claims),
    each with ``entries`` applications among the ``targets`` seeded centres nearest to a home near one of them.

    ``centres`` operating centres with 0-2세 classes are drawn at random: the popular ones of 신학기, whose
    queues the rank checks compute. Returns the parents seeded (0 when the database already has them).
    """
    from geo.admission import waitlist as wl
    from geo.admission.rules import childcare_year
    from geo.auth.accounts import hash_password

    rng = random.Random(seed)
    year = childcare_year(date.today())
    with engine.begin() as conn:
        if conn.execute(text("SELECT count(*) FROM users WHERE email LIKE 'load-parent-%'")).scalar_one():
            return 0
        picked = conn.execute(text("""
            SELECT code, ST_Y(geom_4326) AS lat, ST_X(geom_4326) AS lon FROM facilities
            WHERE status = 'active' AND (classes_by_age->>'0')::int >= 1 AND (classes_by_age->>'2')::int >= 1
            ORDER BY md5(code || :salt) LIMIT :n"""), {"salt": str(seed), "n": centres}).all()
        ids = conn.execute(text("""
            INSERT INTO users (email, password_hash, role, verified_at, verified_name)
            SELECT 'load-parent-' || i || '@example.kr', :h, 'parent', now(), '부모' || i
            FROM generate_series(1, :n) AS i ORDER BY i RETURNING id"""),
            {"h": hash_password(PASSWORD_HASH_OF), "n": parents}).scalars().all()
        for user_id in ids:
            age_class = rng.randrange(3)
            claims = rng.sample(["dual_income", "multi_child", "single_parent_protected", "sibling_enrolled"],
                                k=rng.randrange(3))
            born = date(year - 1 - age_class, rng.randint(1, 12), 1)
            home = rng.choice(picked)
            nearest = nearest_codes(picked, home.lat, home.lon, targets)
            # A sibling is enrolled at the nearest centre: the claim names it and counts only there.
            details = {"sibling_enrolled": nearest[0]} if "sibling_enrolled" in claims else {}
            child = wl.register_child(conn, parent_user_id=user_id, name=f"아이{user_id}", birth_date=born,
                                      claims=claims, claim_details=details)
            for code in nearest[:entries]:
                wl.apply(conn, parent_user_id=user_id, child_id=child["id"], facility_code=code)
    return len(ids)


def seed_portal(engine: Engine, *, staff_centres: int = 20, slot_centres: int = 400, slot_days: int = 14,
                booking_share: float = 0.3, seed: int = 20260301) -> dict[str, int]:
    """What the portal pages of the mix need besides the parents: centre staff, bookable slots and bookings.

    ``staff_centres`` of the centres the seeded parents applied to (the popular ones, with queues) get one staff
    account each (``users`` + ``user_centres`` rows, the parents' shared password hash, as ``seed_parents``).
    ``slot_centres`` operating centres offering a bookable service publish a slot per service and day for the
    next ``slot_days`` days (``geo.booking.slots.create_slot``, as the staff's slot page), and ``booking_share``
    of the parents book one near home (``geo.booking.bookings.book``), so "my bookings" and the slots' counts are
    not empty. Returns what was seeded (all zero when the database already has the staff).
    """
    from datetime import time as clock
    from datetime import timedelta

    from geo.auth.accounts import hash_password
    from geo.booking import bookings, slots
    from geo.domain import SEOUL_TZ

    rng = random.Random(seed)
    hours = {"holiday": (clock(8), clock(18)), "extended_hours": (clock(19, 30), clock(23, 30)),
             "hourly": (clock(9), clock(13)), "twenty_four_hour": (clock(8), clock(8))}
    today = datetime.now(UTC).astimezone(SEOUL_TZ).date()
    with engine.begin() as conn:
        if conn.execute(text("SELECT count(*) FROM users WHERE email LIKE 'load-staff-%'")).scalar_one():
            return {"staff": 0, "slots": 0, "bookings": 0}
        codes = conn.execute(text("""
            SELECT f.code FROM facilities f WHERE EXISTS (
                SELECT 1 FROM waitlist_entries e JOIN children ch ON ch.id = e.child_id
                JOIN users u ON u.id = ch.parent_user_id
                WHERE e.facility_id = f.id AND u.email LIKE 'load-parent-%')
            ORDER BY f.code LIMIT :n"""), {"n": staff_centres}).scalars().all()
        staff = conn.execute(text("""
            INSERT INTO users (email, password_hash, role, email_confirmed_at)
            SELECT 'load-staff-' || i || '@example.kr', :h, 'centre_staff', now()
            FROM generate_series(1, :n) AS i ORDER BY i RETURNING id"""),
            {"h": hash_password(PASSWORD_HASH_OF), "n": len(codes)}).scalars().all()
        conn.execute(text("""
            INSERT INTO user_centres (user_id, facility_id)
            SELECT s.id, f.id FROM unnest(CAST(:ids AS bigint[]), CAST(:codes AS text[])) AS s(id, code)
            JOIN facilities f ON f.code = s.code"""), {"ids": list(staff), "codes": list(codes)})
        offering = conn.execute(text("""
            SELECT code, services FROM facilities
            WHERE status = 'active' AND services && CAST(:bookable AS text[])
            ORDER BY md5(code || :salt) LIMIT :n"""),
            {"bookable": list(hours), "salt": str(seed), "n": slot_centres}).all()
        slot_ids = []
        for centre in offering:
            for service in [s for s in centre.services if s in hours][:2]:
                start, end = hours[service]
                for d in range(slot_days):
                    places = {str(a): rng.randint(1, 4) for a in range(6) if rng.random() < 0.7} or {"2": 2}
                    slot_ids.append(slots.create_slot(conn, facility_code=centre.code, service=service,
                                                      day=today + timedelta(days=d), start=start, end=end,
                                                      places_by_age=places))
        conn.execute(text("UPDATE users SET verified_phone = '010-5' || lpad((id / 10000 % 1000)::text, 3, '0') "
                          "|| '-' || lpad((id % 10000)::text, 4, '0') "
                          "WHERE email LIKE 'load-parent-%' AND verified_phone IS NULL"))
        parents = conn.execute(text("""
            SELECT u.id, ST_Y(f.geom_4326) AS lat, ST_X(f.geom_4326) AS lon
            FROM users u JOIN children ch ON ch.parent_user_id = u.id
            JOIN LATERAL (SELECT facility_id FROM waitlist_entries e WHERE e.child_id = ch.id
                          ORDER BY e.applied_at, e.id LIMIT 1) e ON true
            JOIN facilities f ON f.id = e.facility_id
            WHERE u.email LIKE 'load-parent-%' ORDER BY u.id""")).all()
        booked = 0
        for parent in parents:
            if rng.random() >= booking_share:
                continue
            age = rng.randrange(6)
            near = slots.search_slots(conn, lat=parent.lat, lon=parent.lon, age=age, radius_m=2000, limit=5)
            if near:
                bookings.book(conn, slot_id=int(rng.choice(near)["id"]), parent_user_id=parent.id, child_age=age,
                              join_waitlist=True)
                booked += 1
    return {"staff": len(staff), "slots": len(slot_ids), "bookings": booked}


def nearest_codes(centres: Sequence[Any], lat: float, lon: float, count: int) -> list[str]:
    """Codes of the ``count`` centres nearest to (lat, lon) (equirectangular distance: fine within a city)."""
    scale = math.cos(math.radians(lat))
    return [c.code for c in sorted(centres, key=lambda c: (c.lat - lat) ** 2 + ((c.lon - lon) * scale) ** 2)[:count]]


def write_seed(engine: Engine, path: Path, *, tokens: dict[int, str],
               sessions: dict[int, tuple[str, str]] | None = None, targets: int = 8) -> dict[str, int]:
    """The snapshot the locustfile reads: parents with a bearer token and a web session, their child and its
    active entries now, the seeded centres near home to apply to, centres / areas to search and open, the
    seeded centre staff with a web session and their centre, and places to search care slots near.

    Tokens are stored hashed, so their secrets exist only when issued: ``tokens`` (user id -> secret) and
    ``sessions`` (user id -> (session secret, CSRF token)) cache them for the harness's lifetime; users without
    one get a new one (``issue_token``, what the portal's login does once the password is checked: the mix
    measures the pages, not the password hash).
    """
    from geo.auth.accounts import issue_token

    settings = Settings(DATABASE_URL=libpq_url(engine))
    with engine.begin() as conn:
        seeded = conn.execute(text("""
            SELECT DISTINCT f.code, ST_Y(f.geom_4326) AS lat, ST_X(f.geom_4326) AS lon
            FROM waitlist_entries e JOIN facilities f ON f.id = e.facility_id
            JOIN children ch ON ch.id = e.child_id JOIN users u ON u.id = ch.parent_user_id
            WHERE u.email LIKE 'load-parent-%' ORDER BY f.code""")).all()
        rows = conn.execute(text("""
            SELECT u.id AS user_id, ch.id AS child_id, ch.birth_date,
                   coalesce(json_agg(json_build_object('entry', e.public_id, 'centre', f.code,
                                                       'lat', ST_Y(f.geom_4326), 'lon', ST_X(f.geom_4326))
                                     ORDER BY e.applied_at, e.id)
                            FILTER (WHERE e.id IS NOT NULL), '[]') AS entries
            FROM users u JOIN children ch ON ch.parent_user_id = u.id
            LEFT JOIN waitlist_entries e ON e.child_id = ch.id AND e.status IN ('waiting', 'offered')
            LEFT JOIN facilities f ON f.id = e.facility_id
            WHERE u.email LIKE 'load-parent-%' GROUP BY u.id, ch.id ORDER BY u.id""")).all()
        sessions = {} if sessions is None else sessions

        def session_of(user_id: int) -> tuple[str, str]:
            if user_id not in sessions:
                issued = issue_token(conn, settings, user_id=user_id, kind="session")
                assert issued.csrf is not None
                sessions[user_id] = (issued.secret, issued.csrf)
            return sessions[user_id]

        for r in rows:
            if r.user_id not in tokens:
                tokens[r.user_id] = issue_token(conn, settings, user_id=r.user_id, kind="bearer",
                                                label="load run").secret
            session_of(r.user_id)
        staff = [{"session": session_of(s.id)[0], "csrf": session_of(s.id)[1], "centre": s.code,
                  "ages": list(s.ages)}
                 for s in conn.execute(text("""
            SELECT u.id, f.code, array_agg(DISTINCT e.age_class ORDER BY e.age_class) AS ages
            FROM users u JOIN user_centres uc ON uc.user_id = u.id JOIN facilities f ON f.id = uc.facility_id
            JOIN waitlist_entries e ON e.facility_id = f.id AND e.status IN ('waiting', 'offered')
            WHERE u.email LIKE 'load-staff-%' GROUP BY u.id, f.code ORDER BY u.id""")).all()]
        places = conn.execute(text("SELECT DISTINCT name FROM admin_dongs WHERE name IS NOT NULL "
                                   "ORDER BY name")).scalars().all()
        centres = conn.execute(text("""
            SELECT id, ST_Y(geom_4326) AS lat, ST_X(geom_4326) AS lon FROM facilities
            WHERE status IN ('active', 'reopened') ORDER BY md5(code) LIMIT 2000""")).all()
        districts = conn.execute(text("SELECT code FROM districts ORDER BY code")).scalars().all()
        dongs = conn.execute(text("SELECT kostat_code FROM admin_dongs WHERE kostat_code IS NOT NULL "
                                  "ORDER BY kostat_code")).scalars().all()
    from geo.admission.rules import childcare_year

    year = childcare_year(date.today())
    parents = []
    for r in rows:
        entries = list(r.entries)
        home = (entries[0]["lat"], entries[0]["lon"]) if entries else (seeded[0].lat, seeded[0].lon)
        parents.append({"token": tokens[r.user_id], "session": sessions[r.user_id][0],
                        "csrf": sessions[r.user_id][1], "child_id": r.child_id,
                        "age_class": year - r.birth_date.year - 1, "home": home,
                        "entries": [{"entry": e["entry"], "centre": e["centre"]} for e in entries],
                        "targets": nearest_codes(seeded, home[0], home[1], targets)})
    path.write_text(json.dumps({"parents": parents, "centres": [{"id": c.id, "lat": c.lat, "lon": c.lon}
                                                                for c in centres],
                                "districts": list(districts), "dongs": list(dongs), "staff": staff,
                                "places": list(places)}, ensure_ascii=False),
                    encoding="utf-8")
    return {"parents": len(parents), "entries": sum(len(p["entries"]) for p in parents), "staff": len(staff)}


# ---------------------------------------------------------------------------------------------------------
# Servers and CPU accounting
# ---------------------------------------------------------------------------------------------------------


def postmaster_pid(pg_dir: Path) -> int | None:
    """The postmaster of the cluster in ``pg_dir`` (first line of postmaster.pid), if running."""
    try:
        return int((pg_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (FileNotFoundError, ValueError):
        return None


@dataclass
class Server:
    """A running configuration."""

    config: Config
    port: int
    process: subprocess.Popen[bytes]

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def serve_config(config: Config, *, database_url: str, replica_urls: str, port: int) -> Iterator[Server]:
    """uvicorn with ``config.workers`` workers on the database (and on the standby when ``config.replica``)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DOLBOM_WORKERS", "DOLBOM_REPLICA_URLS")}
    env |= {"DATABASE_URL": database_url, "DOLBOM_REPLICA_URLS": replica_urls if config.replica else "",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    command = uvicorn_command(sys.executable, "api.app:create_app", port, factory=True)
    command += ["--workers", str(config.workers)]
    with running_server(command, base_url=f"http://127.0.0.1:{port}", ready_path="/health", env=env,
                        timeout_s=90.0) as process:
        yield Server(config, port, process)


def settle(servers: Any, pg_pids: Sequence[int], *, idle_cores: float = 0.15, step_s: float = 0.5,
           timeout_s: float = 60.0) -> float:
    """Wait until the servers and the database use less than ``idle_cores`` of CPU; returns the seconds waited.

    A server keeps working on requests whose client has gone (the sync handlers in its thread pool run to the
    end): after a run that overloaded it, that backlog would steal CPU from the next run (measured: a 14 s
    stall of the sync endpoints in the first run after a 64-user warm-up).
    """
    pids = [s.process.pid for s in servers] + list(pg_pids)
    started = time.perf_counter()
    before = sum(tree_cpu_s(p) for p in pids)
    while time.perf_counter() - started < timeout_s:
        time.sleep(step_s)
        now = sum(tree_cpu_s(p) for p in pids)
        if (now - before) / step_s < idle_cores:
            break
        before = now
    return time.perf_counter() - started


# ---------------------------------------------------------------------------------------------------------
# One locust run
# ---------------------------------------------------------------------------------------------------------


def bucket_percentile(response_times: dict[int, int], count: int, q: float) -> int:
    """The ``q`` quantile of locust's rounded response-time buckets ({ms: requests}), as locust computes it
    (``locust.stats.calculate_response_time_percentile``; not imported: importing locust monkey-patches the
    process for gevent)."""
    wanted = int(count * q)
    processed = 0
    for ms in sorted(response_times, reverse=True):
        processed += response_times[ms]
        if count - processed <= wanted:
            return ms
    return 0


def read_stats(path: Path, run_time_s: float) -> dict[str, dict[str, float]]:
    """Locust's final ``--json-file``: per request name (and ``Aggregated``) count, failures, rps, p50, p99 (ms).

    Not the ``*_stats.csv``: locust writes that once a second, and its last write misses the final second or so
    of the run (measured: 145 applications in the CSV for 162 in the database and in the JSON).
    Requests/s of every name are over the run time (or the first to the last request, if longer): not over the
    window of the requests alone, which is short when the server stalls (measured: 65 requests, then nothing).
    """
    entries = json.loads(path.read_text(encoding="utf-8"))
    if not entries:
        return {}
    window_s = max(max(e["last_request_timestamp"] or 0 for e in entries) - min(e["start_time"] for e in entries),
                   run_time_s)
    combined: dict[int, int] = {}
    out: dict[str, dict[str, float]] = {}

    def summary(count: int, failures: int, times: dict[int, int]) -> dict[str, float]:
        return {"requests": count, "failures": failures, "rps": count / window_s,
                "p50_ms": float(bucket_percentile(times, count, 0.5)) if count else math.nan,
                "p99_ms": float(bucket_percentile(times, count, 0.99)) if count else math.nan}

    for e in entries:
        times = {int(k): int(v) for k, v in e["response_times"].items()}
        for k, v in times.items():
            combined[k] = combined.get(k, 0) + v
        previous = out.get(e["name"])
        if previous is not None:  # the same name with two methods: not in this mix
            raise ValueError(f"request name {e['name']!r} used by two methods")
        out[e["name"]] = summary(int(e["num_requests"]), int(e["num_failures"]), times)
    out["Aggregated"] = summary(sum(int(e["num_requests"]) for e in entries),
                                sum(int(e["num_failures"]) for e in entries), combined)
    return out


def read_failures(path: Path) -> list[dict[str, Any]]:
    """Locust's ``*_failures.csv``: method, name, error (status and the first 300 characters) and occurrences
    (the messages; their counts are in the JSON stats)."""
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return [{"method": row["Method"], "name": row["Name"], "error": row["Error"][:300],
                 "occurrences": int(row["Occurrences"])} for row in csv.DictReader(f)]


def locust_run(server: Server, *, users: int, run_time_s: float, seed_path: Path, out_dir: Path, label: str,
               pg_pids: Sequence[int], tags: Sequence[str] = ()) -> dict[str, Any]:
    """One headless locust run against ``server``; stats per request name plus CPU seconds per process group."""
    prefix = out_dir / label
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(users),
               "-r", str(users), "--run-time", f"{run_time_s:g}s", "--host", server.base_url, "--csv", str(prefix),
               "--json-file", str(prefix),
               "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "5", "--exit-code-on-error", "0",
               "--skip-log-setup"]
    if tags:
        # The user classes first (positional): after ``--tags`` they would be read as tags.
        command[5:5] = sorted({USER_CLASSES[t] for t in tags})
        command += ["--tags", *tags]
    env = {**os.environ, "DOLBOM_LOAD_SEED": str(seed_path)}
    server_before = tree_cpu_s(server.process.pid)
    pg_before = sum(tree_cpu_s(p) for p in pg_pids)
    started = time.perf_counter()
    locust_cpu = 0.0
    # stderr to a file, not a pipe: nobody reads it during the run, and a full pipe would stall locust.
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            proc = psutil.Process(process.pid)
            while process.poll() is None:
                try:
                    t = proc.cpu_times()
                    locust_cpu = t.user + t.system
                except psutil.NoSuchProcess:
                    break
                time.sleep(0.25)
            process.wait(timeout=run_time_s + 60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        stderr.seek(0)
        tail = stderr.read()[-2000:].decode(errors="replace")
    elapsed = time.perf_counter() - started
    server_cpu = tree_cpu_s(server.process.pid) - server_before
    pg_cpu = sum(tree_cpu_s(p) for p in pg_pids) - pg_before
    stats_file = Path(f"{prefix}.json")
    if process.returncode != 0 or not stats_file.exists():
        raise RuntimeError(f"locust {label} exited with {process.returncode}: {tail}")
    stats = read_stats(stats_file, run_time_s)
    failures = read_failures(Path(f"{prefix}_failures.csv"))
    total = stats.get("Aggregated", {"requests": 0})
    requests = max(1, int(total["requests"]))
    return {"config": server.config.name, "users": users, "tags": list(tags), "seconds": elapsed,
            # Users still in a request at the end hold locust for its stop timeout (5 s): the server stalled.
            "stalled": elapsed > run_time_s + 3.0,
            "stats": stats, "failures": failures, "server_cpu_s": server_cpu, "db_cpu_s": pg_cpu,
            "locust_cpu_s": locust_cpu,
            "server_cpu_ms_per_request": server_cpu * 1000 / requests,
            "db_cpu_ms_per_request": pg_cpu * 1000 / requests,
            "locust_cpu_share": locust_cpu / max(elapsed, 1e-9)}


# ---------------------------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------------------------


def run(*, configs: Sequence[Config], users: Sequence[int], rounds: int, run_time_s: float,
        type_users: int, types: Sequence[str], engine: Engine, settings: Settings, database: str,
        out_dir: Path, base_port: int = BASE_PORT, warmup_s: float = 3.0) -> dict[str, Any]:
    """Every configuration at every concurrency in interleaved rounds, then each request type alone.

    Each server first gets ``warmup_s`` seconds of the mix at the lowest concurrency, not reported: the first
    requests of a worker open its pool's connections and prepare statements, which a server in service has long
    done. After every run the harness waits until the servers and the database are idle (``settle``).
    """
    runs: list[dict[str, Any]] = []
    type_runs: list[dict[str, Any]] = []
    database_url = libpq_url(engine)
    replicas = settings.local_replica_url(1, database) if any(c.replica for c in configs) else ""
    pg_dirs = [settings.pg_dir] + ([settings.local.data_dir / "pg-replica-1"] if replicas else [])
    pg_pids = [p for p in (postmaster_pid(d) for d in pg_dirs) if p is not None]
    seed_path = out_dir / "seed.json"
    tokens: dict[int, str] = {}
    sessions: dict[int, tuple[str, str]] = {}
    with ExitStack() as stack:
        servers = {c: stack.enter_context(serve_config(c, database_url=database_url, replica_urls=replicas,
                                                       port=base_port + i)) for i, c in enumerate(configs)}
        if warmup_s > 0:
            for config, server in servers.items():
                write_seed(engine, seed_path, tokens=tokens, sessions=sessions)
                locust_run(server, users=min(users), run_time_s=warmup_s, seed_path=seed_path, out_dir=out_dir,
                           label=f"warmup-{config.name}", pg_pids=pg_pids)
                settle(servers.values(), pg_pids)
        for round_no in range(rounds):
            for u in users:
                shift = round_no % len(configs)
                for config in list(configs[shift:]) + list(configs[:shift]):
                    write_seed(engine, seed_path, tokens=tokens, sessions=sessions)
                    result = locust_run(servers[config], users=u, run_time_s=run_time_s, seed_path=seed_path,
                                        out_dir=out_dir, label=f"r{round_no}-u{u}-{config.name}", pg_pids=pg_pids)
                    runs.append(result | {"round": round_no, "settle_s": settle(servers.values(), pg_pids)})
                    print(f"round {round_no} u={u} {config.name}: {result['stats']['Aggregated']['rps']:.1f} "
                          f"req/s", file=sys.stderr)
            if types:
                single = servers[configs[0]]
                shift = round_no % len(types)
                for kind in list(types[shift:]) + list(types[:shift]):
                    write_seed(engine, seed_path, tokens=tokens, sessions=sessions)
                    result = locust_run(single, users=type_users, run_time_s=run_time_s, seed_path=seed_path,
                                        out_dir=out_dir, label=f"r{round_no}-type-{kind}", pg_pids=pg_pids,
                                        tags=[kind])
                    type_runs.append(result | {"round": round_no, "type": kind,
                                              "settle_s": settle(servers.values(), pg_pids)})
                    print(f"round {round_no} type {kind}: {result['stats']['Aggregated']['rps']:.1f} req/s",
                          file=sys.stderr)
    return {"runs": runs, "type_runs": type_runs, "summary": summarise(runs, configs, users),
            "per_type": summarise_types(type_runs)}


def summarise(runs: list[dict[str, Any]], configs: Sequence[Config], users: Sequence[int]) -> dict[str, Any]:
    """Per (config, users): rps/p50/p99 over rounds, per request name, and ratios to the baseline of the same
    round and concurrency."""
    baseline = configs[0].name
    out: dict[str, Any] = {}
    for u in users:
        by_round = {(r["round"], r["config"]): r for r in runs if r["users"] == u}
        for config in configs:
            mine = [r for r in runs if r["users"] == u and r["config"] == config.name]
            if not mine:
                continue
            names = sorted({n for r in mine for n in r["stats"]})
            entry: dict[str, Any] = {"rounds": len(mine), "stalled": sum(bool(r.get("stalled")) for r in mine),
                                     "failures": sum(r["stats"]["Aggregated"]["failures"]
                                                                          for r in mine),
                                     "server_cpu_ms_per_request": spread([r["server_cpu_ms_per_request"]
                                                                          for r in mine]),
                                     "db_cpu_ms_per_request": spread([r["db_cpu_ms_per_request"] for r in mine]),
                                     "locust_cpu_share": spread([r["locust_cpu_share"] for r in mine]),
                                     "names": {}}
            for name in names:
                values = [r["stats"][name] for r in mine if name in r["stats"]]
                entry["names"][name] = {k: spread([v[k] for v in values if not math.isnan(v[k])] or [math.nan])
                                        for k in ("rps", "p50_ms", "p99_ms")}
                entry["names"][name]["requests"] = sum(int(v["requests"]) for v in values)
            ratios: dict[str, list[float]] = {"rps": [], "p50_ms": [], "p99_ms": []}
            for r in mine:
                base = by_round.get((r["round"], baseline))
                if base is None:
                    continue
                for k in ratios:
                    if base["stats"]["Aggregated"][k] > 0:
                        ratios[k].append(r["stats"]["Aggregated"][k] / base["stats"]["Aggregated"][k])
            entry["vs_baseline"] = {k: spread(v) for k, v in ratios.items() if v}
            out[f"{config.name}@{u}"] = entry
    return out


def summarise_types(type_runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per request type run alone: rps, CPU ms per request (server, database) and requests/s per core."""
    out: dict[str, Any] = {}
    for kind in dict.fromkeys(r["type"] for r in type_runs):
        mine = [r for r in type_runs if r["type"] == kind]
        per_core = [1000.0 / (r["server_cpu_ms_per_request"] + r["db_cpu_ms_per_request"]) for r in mine
                    if r["server_cpu_ms_per_request"] + r["db_cpu_ms_per_request"] > 0]
        entry = {"rps": spread([r["stats"]["Aggregated"]["rps"] for r in mine]),
                 "p50_ms": spread([r["stats"]["Aggregated"]["p50_ms"] for r in mine]),
                 "server_cpu_ms_per_request": spread([r["server_cpu_ms_per_request"] for r in mine]),
                 "db_cpu_ms_per_request": spread([r["db_cpu_ms_per_request"] for r in mine]),
                 "rps_per_core": spread(per_core or [math.nan]),
                 "failures": sum(r["stats"]["Aggregated"]["failures"] for r in mine),
                 "names": sorted({n for r in mine for n in r["stats"] if n != "Aggregated"})}
        if kind == "apply":
            # Withdrawals keep the child under the limit of 3: report applications per core too.
            apps = [r["stats"].get("apply", {"requests": 0})["requests"] / max(1e-9, r["server_cpu_s"] + r["db_cpu_s"])
                    for r in mine]
            entry["applications_per_core_s"] = spread(apps)
        out[kind] = entry
    return out


# ---------------------------------------------------------------------------------------------------------
# Capacity plan
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Peak:
    """The national 신학기 peak. Every number here is an assumption (README "Capacity plan" says why)."""

    applications: int = 1_000_000  # applications nationally in the first days of the application period
    first_day_share: float = 0.5  # of them on the first day
    peak_hour_share: float = 0.2  # of the first day's in its busiest hour (the 09:00 opening rush)
    searches_per_application: float = 7.0  # map searches (radius / nearest / area)
    details_per_application: float = 6.0  # centre panels and public queues opened
    rank_checks_per_application: float = 5.0  # GET /waitlist/me during the peak hour
    # The portal (issue 24): "my applications" opened per application in the peak hour, how long the page stays
    # open each time (it asks for its live rank fragment every ``poll_interval_s``), care-slot searches and the
    # staff queue page reloads per application.
    portal_opens_per_application: float = 3.0
    portal_open_minutes: float = 2.0
    poll_interval_s: float = 5.0
    booking_searches_per_application: float = 1.0
    staff_queue_views_per_application: float = 0.5
    utilisation: float = 0.6  # target CPU use of a core at the peak (headroom for bursts and failover)
    cores_per_replica: int = 4  # cores of one read replica's machine

    @property
    def applications_per_s(self) -> float:
        """Applications per second in the peak hour."""
        return self.applications * self.first_day_share * self.peak_hour_share / 3600.0

    @property
    def polls_per_open(self) -> float:
        """Live rank fragments asked for by one opening of "my applications"."""
        return self.portal_open_minutes * 60.0 / self.poll_interval_s

    @property
    def open_pages(self) -> float:
        """"My applications" pages open at any moment of the peak hour."""
        return self.portal_opens_per_application * self.applications_per_s * self.portal_open_minutes * 60.0


def with_plan(result: dict[str, Any]) -> dict[str, Any]:
    """``result`` plus its ``capacity_plan`` when every request type of the API was measured alone (the portal's
    types are added when they were measured too)."""
    if all(k in result["per_type"] for k in API_TYPES):
        return result | {"capacity_plan": capacity_plan(result["per_type"])}
    return result


def capacity_plan(per_type: dict[str, Any], peak: Peak = Peak()) -> dict[str, Any]:
    """Cores, workers and replicas for ``peak`` from the measured CPU per request of each type (medians).

    API CPU scales with uvicorn workers (one worker uses at most one core); database CPU of searches and centre
    reads goes to the replicas, that of rank checks (they record the view), applications and the portal's pages
    (their sync handlers read and write on the primary's engine) to the primary. ``open_pages_per_core``: the
    parents with "my applications" open (one poll every ``poll_interval_s``) that one core of API plus one of
    database carry, from the poll's measured CPU.
    """
    rates = {"search": peak.searches_per_application, "detail": peak.details_per_application,
             "rank": peak.rank_checks_per_application, "apply": 1.0,
             "my-applications": peak.portal_opens_per_application,
             "rank-poll": peak.portal_opens_per_application * peak.polls_per_open,
             "booking-search": peak.booking_searches_per_application,
             "staff-queue": peak.staff_queue_views_per_application}
    rows: dict[str, Any] = {}
    api_cores = primary_cores = replica_cores = 0.0
    for kind, per_application in rates.items():
        if kind not in per_type:
            continue
        rps = per_application * peak.applications_per_s
        server = rps * per_type[kind]["server_cpu_ms_per_request"]["median"] / 1000.0
        db = rps * per_type[kind]["db_cpu_ms_per_request"]["median"] / 1000.0
        on_replica = kind in ("search", "detail")
        rows[kind] = {"peak_rps": rps, "api_cores": server, "db_cores": db,
                      "db_on": "replicas" if on_replica else "primary"}
        api_cores += server
        if on_replica:
            replica_cores += db
        else:
            primary_cores += db
    poll = per_type.get("rank-poll")
    open_pages_per_core = ({"api": 1000.0 * peak.poll_interval_s / poll["server_cpu_ms_per_request"]["median"],
                            "db": 1000.0 * peak.poll_interval_s / poll["db_cpu_ms_per_request"]["median"]}
                           if poll else None)
    return {"peak": {**peak.__dict__, "applications_per_s": peak.applications_per_s,
                     "polls_per_open": peak.polls_per_open, "open_pages": peak.open_pages},
            "open_pages_per_core": open_pages_per_core, "types": rows,
            "api_cores": api_cores, "primary_cores": primary_cores, "replica_cores": replica_cores,
            "workers": math.ceil(api_cores / peak.utilisation),
            "primary_cores_needed": math.ceil(primary_cores / peak.utilisation),
            "replicas": math.ceil(replica_cores / (peak.utilisation * peak.cores_per_replica))}


# ---------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------


def markdown(result: dict[str, Any], environment: dict[str, Any]) -> str:
    """The report: configurations x concurrency, per request name, per type alone."""
    lines = [f"# bench_load {environment['run_at']}", "",
             f"Load average at start {environment['load_average']}, {environment['cpus']} CPUs, "
             f"{environment.get('rounds')} rounds x {environment.get('run_time_s')} s per run. "
             "Figures: median [min–max] over rounds; ratios computed within each round against the "
             f"{environment.get('baseline')} run at the same concurrency.", "",
             "## Configurations x concurrency (all requests)", "",
             "| config | users | req/s | p50 ms | p99 ms | req/s ratio | p50 ratio | p99 ratio | failures "
             "| stalled runs | server CPU ms/req | db CPU ms/req | locust CPU share |",
             "|---|---:|---|---|---|---|---|---|---:|---:|---:|---:|---:|"]
    for key, e in result["summary"].items():
        config, users = key.rsplit("@", 1)
        agg = e["names"]["Aggregated"]
        ratios = e.get("vs_baseline", {})
        lines.append(f"| {config} | {users} | {_s(agg['rps'], '{:.1f}')} | {_s(agg['p50_ms'], '{:.0f}')} | "
                     f"{_s(agg['p99_ms'], '{:.0f}')} | {_s(ratios.get('rps'))} | {_s(ratios.get('p50_ms'))} | "
                     f"{_s(ratios.get('p99_ms'))} | {e['failures']} | {e.get('stalled', 0)} | "
                     f"{e['server_cpu_ms_per_request']['median']:.2f} | {e['db_cpu_ms_per_request']['median']:.2f} | "
                     f"{e['locust_cpu_share']['median']:.0%} |")
    lines += ["", "## Per request name (req/s, p50, p99 ms)", "",
              "| config | users | name | requests | req/s | p50 ms | p99 ms |", "|---|---:|---|---:|---|---|---|"]
    for key, e in result["summary"].items():
        config, users = key.rsplit("@", 1)
        for name, n in e["names"].items():
            if name == "Aggregated":
                continue
            lines.append(f"| {config} | {users} | {name} | {n['requests']} | {_s(n['rps'], '{:.1f}')} | "
                         f"{_s(n['p50_ms'], '{:.0f}')} | {_s(n['p99_ms'], '{:.0f}')} |")
    if result["per_type"]:
        lines += ["", "## Each request type alone (1 worker, no replica): CPU per request and requests/s per core",
                  "", "| type | requests | req/s | p50 ms | server CPU ms/req | db CPU ms/req | req/s per core | "
                  "failures |", "|---|---|---|---|---|---|---|---:|"]
        for kind, e in result["per_type"].items():
            extra = (f" (applications/s per core {_s(e['applications_per_core_s'], '{:.0f}')})"
                     if "applications_per_core_s" in e else "")
            lines.append(f"| {kind} | {', '.join(e['names'])} | {_s(e['rps'], '{:.1f}')} | "
                         f"{_s(e['p50_ms'], '{:.0f}')} | {_s(e['server_cpu_ms_per_request'])} | "
                         f"{_s(e['db_cpu_ms_per_request'])} | {_s(e['rps_per_core'], '{:.0f}')}{extra} | "
                         f"{e['failures']} |")
    failed = [(r, f) for r in result["runs"] + result["type_runs"] for f in r.get("failures", [])]
    if failed:
        lines += ["", "## Failures", "", "| run | name | occurrences | error |", "|---|---|---:|---|"]
        for r, f in failed:
            where = f"round {r['round']}, {r['config']}, {r['users']} users" + (f", {r['type']} alone"
                                                                                if "type" in r else "")
            lines.append(f"| {where} | {f['name']} | {f['occurrences']} | {f['error'].replace('|', '/')} |")
    plan = result.get("capacity_plan")
    if plan:
        lines += ["", f"## Capacity plan (assumptions: benchmarks.bench_load.Peak; "
                      f"{plan['peak']['applications_per_s']:.1f} applications/s at the peak)", "",
                  "| type | peak req/s | API cores | database cores | database |", "|---|---:|---:|---:|---|"]
        for kind, row in plan["types"].items():
            lines.append(f"| {kind} | {row['peak_rps']:.0f} | {row['api_cores']:.2f} | {row['db_cores']:.2f} | "
                         f"{row['db_on']} |")
        lines += ["", f"API {plan['api_cores']:.1f} cores -> **{plan['workers']} workers** at "
                      f"{plan['peak']['utilisation']:.0%}; primary {plan['primary_cores']:.1f} cores -> "
                      f"**{plan['primary_cores_needed']} cores**; replicas {plan['replica_cores']:.1f} cores -> "
                      f"**{plan['replicas']} replicas** of {plan['peak']['cores_per_replica']} cores."]
        if plan.get("open_pages_per_core"):
            per_core = plan["open_pages_per_core"]
            lines += ["", f"\"My applications\" open (one poll every {plan['peak']['poll_interval_s']:g} s): one "
                          f"API core carries **{per_core['api']:,.0f}** open pages, one database core "
                          f"**{per_core['db']:,.0f}**; at the peak {plan['peak']['open_pages']:,.0f} pages are "
                          "open at once."]
    return "\n".join(lines) + "\n"


def write_report(result: dict[str, Any], environment: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """``bench_load-<stamp>.md`` and ``.json`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"bench_load-{environment['run_at']}"
    md, js = stem.with_suffix(".md"), stem.with_suffix(".json")
    md.write_text(markdown(result, environment), encoding="utf-8")
    js.write_text(json.dumps({"benchmark": "bench_load", "environment": environment, "results": result},
                             indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    return md, js


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, provision, seed, run, report."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_load", description=__doc__.split("\n")[0])
    parser.add_argument("--configs", type=parse_config, nargs="+", default=list(CONFIGS),
                        help="server configurations, the first is the baseline (default 1w 2w 1w+replica "
                             "2w+replica)")
    parser.add_argument("--users", type=int, nargs="+", default=[8, 32, 64], help="concurrency steps")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--run-time", type=float, default=20.0, help="seconds per locust run (default 20)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of unreported load per server first")
    parser.add_argument("--types", nargs="*", choices=TYPES, default=list(TYPES),
                        help="request types measured alone for the per-core figures (none: skip)")
    parser.add_argument("--type-users", type=int, default=16, help="concurrency of the single-type runs")
    parser.add_argument("--parents", type=int, default=1500, help="seeded parents (>= the largest --users)")
    parser.add_argument("--centres", type=int, default=60,
                        help="popular centres the seeded parents apply to (default 60: queues of ~50)")
    parser.add_argument("--entries", type=int, default=2, help="seeded applications per child (<= 3)")
    parser.add_argument("--staff-centres", type=int, default=20,
                        help="seeded centres whose staff use the portal's queue page (default 20)")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="the harness's own cluster")
    parser.add_argument("--pg-port", type=int, default=PG_PORT)
    parser.add_argument("--base-port", type=int, default=BASE_PORT, help="first HTTP port (one per config)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--fresh", action="store_true", help="drop and reload the load database")
    parser.add_argument("--stop", action="store_true", help="stop the harness's cluster afterwards")
    parser.add_argument("--report", type=Path, metavar="JSON",
                        help="only render the markdown (and capacity plan) of an earlier run's JSON again")
    args = parser.parse_args(argv)
    if args.report:
        saved = json.loads(args.report.read_text(encoding="utf-8"))
        result = with_plan(saved["results"])
        md, js = write_report(result, saved["environment"], args.out)
        print(md.read_text(encoding="utf-8"))
        return 0
    if args.parents < max(args.users + [args.type_users]):
        parser.error("--parents must be at least the largest concurrency (one parent per user)")

    from geo.ops import provision

    started = time.perf_counter()
    settings = cluster_settings(args.data_dir, args.pg_port)
    try:
        provision.up(settings, replicas=1 if any(c.replica for c in args.configs) else 0)
    except ProvisioningError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    engine = prepare_database(settings, fresh=args.fresh)
    seeded = seed_parents(engine, parents=args.parents, entries=args.entries, centres=args.centres)
    portal = seed_portal(engine, staff_centres=args.staff_centres)
    print(f"data ready at {time.perf_counter() - started:.0f} s ({seeded} parents seeded, portal: {portal})",
          file=sys.stderr)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    environment: dict[str, Any] = {"run_at": stamp, "python": platform.python_version(), "cpus": os.cpu_count(),
                                   "load_average": [round(x, 1) for x in os.getloadavg()], "rounds": args.rounds,
                                   "run_time_s": args.run_time, "users": args.users,
                                   "configs": [c.name for c in args.configs], "baseline": args.configs[0].name,
                                   "parents": args.parents}
    try:
        with tempfile.TemporaryDirectory(prefix="dolbom-load-") as tmp:
            result = run(configs=args.configs, users=args.users, rounds=args.rounds, run_time_s=args.run_time,
                         type_users=args.type_users, types=args.types, engine=engine, settings=settings,
                         database=DATABASE, out_dir=Path(tmp), base_port=args.base_port, warmup_s=args.warmup)
    finally:
        engine.dispose()
        if args.stop:
            provision.down(settings)
    environment["seconds"] = round(time.perf_counter() - started, 1)
    md, js = write_report(with_plan(result), environment, args.out)
    print(md.read_text(encoding="utf-8"))
    print(f"wrote {md} and {js}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
