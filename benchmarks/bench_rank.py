"""The rank check (``geo.admission.waitlist.my_ranks``) of one code path against another, in one process, on the
``bench_load`` database: client CPU ms and PostgreSQL backend CPU ms per call, interleaved, with spread.

Run ``python -m benchmarks.bench_rank --old /work/main/geo/admission`` (see benchmarks/README.md, bench_load). The
old path is ``queue.py`` (``waitlist.py`` before the split) and ``ranking.py`` loaded from ``--old`` under other
module names (its other imports come from this checkout); the new path is this checkout's. Each call runs in a
transaction that is rolled back, so every call sees the same "last looked" rows: ``--state seen`` first records
every parent's view once (committed; the steady state of repeated checks), ``--state changed`` clears the views
before each round (every call is a first look and writes full snapshots).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil
from sqlalchemy import Connection, Engine, text

from benchmarks.bench_load import DATA_DIR, DATABASE, PG_PORT, cluster_settings
from benchmarks.harness import median_range, spread
from geo.admission import waitlist as new_waitlist
from geo.db import make_engine


def load_old(directory: Path) -> ModuleType:
    """The module of ``directory`` that holds ``my_ranks`` (``queue.py`` since the waitlist was split by job,
    ``waitlist.py`` before) with that directory's ``ranking.py`` (other modules from this checkout)."""
    holder = "queue" if (directory / "queue.py").exists() else "waitlist"
    modules = {}
    for name in ("ranking", holder):
        spec = importlib.util.spec_from_file_location(f"old_{name}", directory / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        modules[name] = module
    old = modules[holder]
    for attr in ("RankedEntry", "explain_changes", "rank"):
        setattr(old, attr, getattr(modules["ranking"], attr))
    return old


def backend_cpu_s(conn: Connection) -> tuple[psutil.Process, float]:
    """The connection's PostgreSQL backend process and its CPU seconds so far."""
    proc = psutil.Process(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
    t = proc.cpu_times()
    return proc, t.user + t.system


def measure(engine: Engine, paths: dict[str, Any], *, parents: int, rounds: int, state: str,
            profile: str | None = None) -> dict[str, Any]:
    """Both paths' answers compared on the first 20 parents, then ``rounds`` of ``parents`` calls per path (order
    alternating per round): client and PostgreSQL backend CPU ms per call of every round."""
    with engine.connect() as conn:
        ids = conn.execute(text("""SELECT DISTINCT ch.parent_user_id FROM children ch JOIN waitlist_entries e
                                   ON e.child_id = ch.id WHERE e.status IN ('waiting', 'offered')
                                   ORDER BY 1 LIMIT :n"""), {"n": parents}).scalars().all()
        conn.rollback()
        if state == "seen":
            with conn.begin():
                for p in ids:
                    paths["new"].my_ranks(conn, parent_user_id=p)
        same = 0
        for p in ids[:20]:
            answers = []
            for name in ("old", "new"):
                with conn.begin() as tx:
                    answers.append(paths[name].my_ranks(conn, parent_user_id=p))
                    tx.rollback()
            same += answers[0] == answers[1]
        result: dict[str, Any] = {"identical": same, "compared": len(ids[:20]), "old": [], "new": []}
        if profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.enable()
            for p in ids:
                with conn.begin() as tx:
                    paths[profile].my_ranks(conn, parent_user_id=p)
                    tx.rollback()
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
            return result
        for r in range(rounds):
            for name in (("old", "new") if r % 2 == 0 else ("new", "old")):
                if state == "changed":
                    with conn.begin():
                        conn.execute(text("DELETE FROM waitlist_rank_views"))
                proc, db0 = backend_cpu_s(conn)
                conn.rollback()
                c0 = time.process_time()
                for p in ids:
                    with conn.begin() as tx:
                        paths[name].my_ranks(conn, parent_user_id=p)
                        tx.rollback()
                c1 = time.process_time()
                t = proc.cpu_times()
                result[name].append(((c1 - c0) * 1000 / len(ids), (t.user + t.system - db0) * 1000 / len(ids)))
    return result


def main(argv: list[str] | None = None) -> int:
    """Time both paths, interleaved per round; print ms per call, median [min-max] over rounds, and the ratios."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_rank", description=__doc__.split("\n")[0])
    parser.add_argument("--old", type=Path, required=True, help="directory with the old waitlist.py, ranking.py")
    parser.add_argument("--parents", type=int, default=200, help="parents checked per round and path")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--state", choices=("seen", "changed"), default="seen")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="the bench_load cluster")
    parser.add_argument("--pg-port", type=int, default=PG_PORT)
    parser.add_argument("--profile", choices=("old", "new"), help="cProfile one path instead of timing")
    args = parser.parse_args(argv)
    engine = make_engine(cluster_settings(args.data_dir, args.pg_port).local_database_url(DATABASE))
    try:
        result = measure(engine, {"old": load_old(args.old), "new": new_waitlist}, parents=args.parents,
                         rounds=args.rounds, state=args.state, profile=args.profile)
    finally:
        engine.dispose()
    print(f"identical answers: {result['identical']}/{result['compared']}")
    if args.profile:
        return 0
    for name in ("old", "new"):
        print(f"{name}: client CPU ms/call {median_range(spread([f[0] for f in result[name]]))}, "
              f"db CPU ms/call {median_range(spread([f[1] for f in result[name]]))}")
    for i, label in ((0, "client"), (1, "db")):
        ratios = [n[i] / o[i] for n, o in zip(result["new"], result["old"], strict=True)]
        print(f"new/old {label}: {median_range(spread(ratios))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
