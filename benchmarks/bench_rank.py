"""The rank check (``geo.admission.waitlist.my_ranks``) of one code path against another, in one process, on the
``bench_load`` database: client CPU ms and PostgreSQL backend CPU ms per call, interleaved, with spread.

Run ``python -m benchmarks.bench_rank --old /work/main/geo/admission`` (see benchmarks/README.md, bench_load). The
old path is ``waitlist.py`` and ``ranking.py`` loaded from ``--old`` under other module names; the new path is this
checkout's. Each call runs in a transaction that is rolled back, so every call sees the same "last looked" rows:
``--state seen`` first records every parent's view once (committed; the steady state of repeated checks),
``--state changed`` clears the views before each round (every call writes a full snapshot and explains changes).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil
from sqlalchemy import Connection, text

from benchmarks.bench_load import DATA_DIR, DATABASE, PG_PORT, cluster_settings
from geo.admission import waitlist as new_waitlist
from geo.db import make_engine


def load_old(directory: Path) -> ModuleType:
    """``waitlist.py`` of ``directory`` with that directory's ``ranking.py`` (other modules from this checkout)."""
    modules = {}
    for name in ("ranking", "waitlist"):
        spec = importlib.util.spec_from_file_location(f"old_{name}", directory / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        modules[name] = module
    old = modules["waitlist"]
    for attr in ("RankedEntry", "explain_changes", "rank"):
        setattr(old, attr, getattr(modules["ranking"], attr))
    return old


def backend_cpu_s(conn: Connection) -> tuple[psutil.Process, float]:
    """The connection's PostgreSQL backend process and its CPU seconds so far."""
    proc = psutil.Process(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
    t = proc.cpu_times()
    return proc, t.user + t.system


def main(argv: list[str] | None = None) -> int:
    """Time both paths, interleaved per round; print ms per call, median [min-max] over rounds, and the ratios."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_rank", description=__doc__.split("\n")[0])
    parser.add_argument("--old", type=Path, required=True, help="directory with the old waitlist.py, ranking.py")
    parser.add_argument("--parents", type=int, default=200, help="parents checked per round and path")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--state", choices=("seen", "changed"), default="seen")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--pg-port", type=int, default=PG_PORT)
    parser.add_argument("--profile", choices=("old", "new"), help="cProfile one path instead of timing")
    args = parser.parse_args(argv)
    settings = cluster_settings(args.data_dir, args.pg_port)
    engine = make_engine(settings.local_database_url(DATABASE))
    paths: dict[str, Any] = {"old": load_old(args.old), "new": new_waitlist}
    with engine.connect() as conn:
        parents = conn.execute(text("""SELECT DISTINCT ch.parent_user_id FROM children ch JOIN waitlist_entries e
                                       ON e.child_id = ch.id WHERE e.status IN ('waiting', 'offered')
                                       ORDER BY 1 LIMIT :n"""), {"n": args.parents}).scalars().all()
        conn.rollback()
        if args.state == "seen":
            with conn.begin():
                for p in parents:
                    new_waitlist.my_ranks(conn, parent_user_id=p)
        same = []
        for p in parents[:20]:  # both paths answer the same
            answers = []
            for name in ("old", "new"):
                with conn.begin() as tx:
                    answers.append(paths[name].my_ranks(conn, parent_user_id=p))
                    tx.rollback()
            same.append(answers[0] == answers[1])
        print(f"identical answers: {sum(same)}/{len(same)}")
        if args.profile:
            import cProfile
            import pstats
            prof = cProfile.Profile()
            prof.enable()
            for p in parents:
                with conn.begin() as tx:
                    paths[args.profile].my_ranks(conn, parent_user_id=p)
                    tx.rollback()
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
            return 0
        figures: dict[str, list[tuple[float, float]]] = {"old": [], "new": []}
        for r in range(args.rounds):
            for name in (("old", "new") if r % 2 == 0 else ("new", "old")):
                if args.state == "changed":
                    with conn.begin():
                        conn.execute(text("DELETE FROM waitlist_rank_views"))
                proc, db0 = backend_cpu_s(conn)
                conn.rollback()
                c0 = time.process_time()
                for p in parents:
                    with conn.begin() as tx:
                        paths[name].my_ranks(conn, parent_user_id=p)
                        tx.rollback()
                c1 = time.process_time()
                t = proc.cpu_times()
                figures[name].append(((c1 - c0) * 1000 / len(parents),
                                      (t.user + t.system - db0) * 1000 / len(parents)))
    def fmt(xs: list[float]) -> str:
        return f"{statistics.median(xs):.2f} [{min(xs):.2f}-{max(xs):.2f}]"
    for name in ("old", "new"):
        print(f"{name}: client CPU ms/call {fmt([f[0] for f in figures[name]])}, "
              f"db CPU ms/call {fmt([f[1] for f in figures[name]])}")
    for i, label in ((0, "client"), (1, "db")):
        print(f"new/old {label}: {fmt([n[i] / o[i] for n, o in zip(figures['new'], figures['old'], strict=True)])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
