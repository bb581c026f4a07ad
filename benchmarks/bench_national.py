"""Per-item cost at Seoul size against national size: import, search and ranking, measured in one run.

Run ``python -m benchmarks.bench_national`` (see benchmarks/README.md). Two throw-away databases in the local
cluster are built the same way, only the size differs:

- ``small`` (Seoul-sized): Seoul's boundaries, a synthetic 기본정보 file of 9,500 operating centres in Seoul;
- ``large`` (national): the boundaries of all 17 시도, a synthetic file of 28,000 operating centres;

both by ``geo.ingest.synthetic_national`` (placed by 행정동 0-5 population: the MOIS file of ``--shared-data`` is
imported first when present, attributes copied from the real Seoul snapshot and the real 광주 export), then
``--applications`` (1,000,000) waiting entries in ``large`` and as many per operating centre in ``small``
(``geo.admission.seeding``), so queues are as long in both.

Parts, each in rounds that alternate which database goes first:

- ``import``: seconds per centre of ``import_national_basic`` into an emptied ``facilities`` table;
- ``search``: p50 of the exact SQL of radius (1 km, operating), nearest (k=10) and 행정동 area searches
  (``geo.search`` statements on a psycopg connection set up like the read pool), at random operating centres;
- ``ranking``: p50 of ``waitlist.queue`` of a random centre's age class (``queue``), per entry of that queue
  (``queue_per_entry``), of a parent's ``my_ranks`` (every entry of theirs re-ranked, rolled back) per entry
  (``rank_per_entry``), and of the rank recompute an application or offer triggers (``_record_ranks``: queue
  plus chain event, rolled back; ``recompute``).

Every figure is the per-round p50, every ratio large/small is computed within a round; both are reported as
median [min-max] over rounds. Results are printed and written to ``benchmarks/results/bench_national-<UTC>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, text

from benchmarks.bench_read import (
    area_requests,
    libpq_url,
    nearest_requests,
    query_points,
    radius_requests,
    run_sql,
    sql_connection,
    throwaway_database,
)
from benchmarks.harness import median_range as _s
from benchmarks.harness import quantile, ratio_spread, spread, timed_ms
from geo.admission import waitlist
from geo.admission.rules import childcare_year
from geo.admission.seeding import seed_applications
from geo.db import check_database
from geo.ingest.boundaries import load_missing_boundaries
from geo.ingest.bundled import BUNDLED_OA20300
from geo.ingest.childcare import import_national_basic
from geo.ingest.population import import_mois_population
from geo.ingest.synthetic_national import SIDO_CODES, AttributePool, attribute_pool, generate_national_file
from geo.settings import PROJECT_ROOT, Settings

RESULTS_DIR = Path(__file__).resolve().parent / "results"
MOIS_CSV = "population/mois_jumin_pop_by_admdong_single_age_sex_20250131.csv"
GWANGJU_CSV = "childcare/gwangju_childcare_basicinfo_national_format_20260630.csv"
PARTS = ("import", "search", "ranking")
SEARCH_CASES = ("radius", "nearest", "area_dong")
RANKING_CASES = ("queue", "queue_per_entry", "rank_per_entry", "recompute")


@dataclass(frozen=True)
class Size:
    """One side of the comparison."""

    name: str
    centres: int
    sido_codes: tuple[str, ...]


SMALL = Size("small", 9_500, ("11",))
LARGE = Size("large", 28_000, SIDO_CODES)


@dataclass
class Prepared:
    """A database with its synthetic file."""

    size: Size
    engine: Engine
    path: Path



def _p50_summary(ms: dict[tuple[str, str], list[list[float]]], cases: Iterable[str], *, repeats: int,
                 requests: int) -> dict[str, Any]:
    """Per case: p50 at each size (spread over rounds) and the large/small ratio of the per-round p50s."""
    return {"repeats": repeats, "requests_per_round": requests, "cases": {case: {
        "small_p50_ms": spread([quantile(r, 0.5) for r in ms[("small", case)]]),
        "large_p50_ms": spread([quantile(r, 0.5) for r in ms[("large", case)]]),
        "large/small": ratio_spread(ms[("large", case)], ms[("small", case)]),
    } for case in cases}}

def prepare(engine: Engine, size: Size, *, work: Path, shared_data: Path | None, seed: int) -> Prepared:
    """Boundaries (+ MOIS 0-5 population when available) and the size's synthetic file, imported once."""
    load_missing_boundaries(engine, size.sido_codes)
    regional: AttributePool | None = None
    if shared_data is not None and (shared_data / MOIS_CSV).is_file():
        import_mois_population(engine, shared_data / MOIS_CSV)
    if shared_data is not None and (shared_data / GWANGJU_CSV).is_file():
        regional = attribute_pool(shared_data / GWANGJU_CSV).operating()
    path = work / f"synthetic_national_{size.name}_20260630.csv"
    generate_national_file(engine, path, centres=size.centres, seed=seed, sido_codes=size.sido_codes,
                           seoul_pool=attribute_pool(BUNDLED_OA20300).operating(), regional_pool=regional)
    import_national_basic(engine, path)
    return Prepared(size, engine, path)


def _empty_facilities(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE facilities, enrollment_changes, import_runs CASCADE"))


def import_part(sides: Sequence[Prepared], *, repeats: int) -> dict[str, Any]:
    """Seconds per centre of re-importing each file into an emptied table, alternating order per round."""
    per_item: dict[str, list[float]] = {p.size.name: [] for p in sides}
    rows: dict[str, int] = {}
    for round_no in range(repeats):
        order = list(sides) if round_no % 2 == 0 else list(reversed(sides))
        for side in order:
            _empty_facilities(side.engine)
            start = time.perf_counter()
            result = import_national_basic(side.engine, side.path)
            elapsed = time.perf_counter() - start
            rows[side.size.name] = result.rows_read
            per_item[side.size.name].append(elapsed / result.rows_read)
    for side in sides:
        with side.engine.begin() as conn:
            conn.execute(text("ANALYZE facilities"))
    return {"rows": rows, "repeats": repeats,
            "s_per_centre": {name: spread(values) for name, values in per_item.items()},
            "large/small": spread([lg / sm for lg, sm in zip(per_item["large"], per_item["small"], strict=True)])}


def search_part(sides: Sequence[Prepared], *, repeats: int, requests: int, warmup: int) -> dict[str, Any]:
    """p50 of each search's SQL on both databases, interleaved request by request."""
    plans: dict[tuple[str, str], list[Any]] = {}
    for side in sides:
        settings = Settings(DATABASE_URL=libpq_url(side.engine))
        plans[(side.size.name, "radius")] = radius_requests(query_points(side.engine, count=requests), settings)
        plans[(side.size.name, "nearest")] = nearest_requests(query_points(side.engine, count=requests, seed=8),
                                                              settings)
        plans[(side.size.name, "area_dong")] = area_requests(side.engine, settings, kind="dong", count=requests)
    ms: dict[tuple[str, str], list[list[float]]] = {key: [] for key in plans}
    conns = {side.size.name: sql_connection(side.engine) for side in sides}
    try:
        for (name, _case), plan in plans.items():
            for request in plan[:warmup]:
                run_sql(conns[name], request.statement)
        for round_no in range(repeats):
            for case in SEARCH_CASES:
                times: dict[str, list[float]] = {side.size.name: [] for side in sides}
                for i in range(requests):
                    names = [side.size.name for side in sides]
                    if (i + round_no) % 2:
                        names.reverse()
                    for name in names:
                        statement = plans[(name, case)][i].statement
                        times[name].append(timed_ms(lambda c=conns[name], s=statement: run_sql(c, s)))
                for name, values in times.items():
                    ms[(name, case)].append(values)
    finally:
        for conn in conns.values():
            conn.close()
    return _p50_summary(ms, SEARCH_CASES, repeats=repeats, requests=requests)


def seed_part(sides: Sequence[Prepared], *, applications: int, seed: int, year: int) -> dict[str, Any]:
    """``applications`` entries in the large database and as many per operating centre in the small one."""
    operating = {}
    for side in sides:
        with side.engine.connect() as conn:
            operating[side.size.name] = conn.execute(text(
                "SELECT count(*) FROM facilities WHERE status = 'active'")).scalar_one()
    per_centre = applications / max(operating["large"], 1)
    out = {}
    for side in sides:
        count = applications if side.size.name == "large" else max(1, round(per_centre * operating["small"]))
        start = time.perf_counter()
        result = seed_applications(side.engine, count=count, year=year, seed=seed)
        out[side.size.name] = {"entries": result.entries, "centres": result.centres, "children": result.children,
                               "seconds": round(time.perf_counter() - start, 1)}
    return out


def _ranking_samples(engine: Engine, *, year: int, count: int, seed: int) -> dict[str, list[Any]]:
    """Random (centre, age class) queues and random parents with entries, drawn the same way on each side."""
    with engine.connect() as conn:
        queues = conn.execute(text("""SELECT DISTINCT facility_id, age_class FROM waitlist_entries
                                      WHERE year = :y AND status = 'waiting' ORDER BY 1, 2"""), {"y": year}).all()
        parents = conn.execute(text("""SELECT DISTINCT ch.parent_user_id FROM children ch
                                       JOIN waitlist_entries e ON e.child_id = ch.id AND e.year = :y
                                       ORDER BY 1"""), {"y": year}).scalars().all()
    rng = np.random.default_rng(seed)
    return {"queues": [tuple(queues[i]) for i in rng.integers(len(queues), size=count)],
            "parents": [int(parents[i]) for i in rng.integers(len(parents), size=count)]}


def ranking_part(sides: Sequence[Prepared], *, repeats: int, requests: int, year: int,
                 warmup: int) -> dict[str, Any]:
    """p50 of a queue, of a parent's ranks per entry and of the rank recompute, both sides interleaved."""
    samples = {side.size.name: _ranking_samples(side.engine, year=year, count=requests, seed=5) for side in sides}
    ms: dict[tuple[str, str], list[list[float]]] = {(s.size.name, c): [] for s in sides for c in RANKING_CASES}
    conns = {side.size.name: side.engine.connect() for side in sides}
    at = datetime(year, 3, 2, tzinfo=UTC)

    def one(name: str, i: int, times: dict[tuple[str, str], list[float]]) -> None:
        conn = conns[name]
        facility_id, age_class = samples[name]["queues"][i]
        start = time.perf_counter()
        length = len(waitlist.queue(conn, facility_id, year=year, age_class=age_class))
        elapsed = (time.perf_counter() - start) * 1000.0
        times[(name, "queue")].append(elapsed)
        times[(name, "queue_per_entry")].append(elapsed / max(length, 1))
        with conn.begin_nested() if conn.in_transaction() else conn.begin() as tx:
            start = time.perf_counter()
            ranks = waitlist.my_ranks(conn, parent_user_id=samples[name]["parents"][i], now=at)
            times[(name, "rank_per_entry")].append((time.perf_counter() - start) * 1000.0 / max(len(ranks), 1))
            times[(name, "recompute")].append(timed_ms(
                lambda: waitlist.record_ranks(conn, facility_id, year, age_class, now=at)))
            tx.rollback()

    try:
        for side in sides:
            scratch: dict[tuple[str, str], list[float]] = {key: [] for key in ms}
            for i in range(min(warmup, requests)):
                one(side.size.name, i, scratch)
        for round_no in range(repeats):
            times: dict[tuple[str, str], list[float]] = {key: [] for key in ms}
            for i in range(requests):
                names = [side.size.name for side in sides]
                if (i + round_no) % 2:
                    names.reverse()
                for name in names:
                    one(name, i, times)
            for key, values in times.items():
                ms[key].append(values)
    finally:
        for conn in conns.values():
            conn.close()
    return _p50_summary(ms, RANKING_CASES, repeats=repeats, requests=requests)


def report(results: dict[str, Any]) -> str:
    """The ratios as a plain text table: median [min-max] over rounds."""
    lines = []
    if "data" in results:
        d = results["data"]
        lines.append("data: " + "; ".join(f"{name} {v['facilities']:,} centres ({v['operating']:,} operating), "
                                          f"{v.get('entries', 0):,} entries" for name, v in d.items()))
    if "import" in results:
        r = results["import"]
        lines.append(f"import ({r['repeats']} rounds): s/centre small {_s(r['s_per_centre']['small'], '{:.2e}')} "
                     f"large {_s(r['s_per_centre']['large'], '{:.2e}')}; large/small {_s(r['large/small'])}")
    for part in ("search", "ranking"):
        if part in results:
            r = results[part]
            lines.append(f"{part} ({r['repeats']} rounds x {r['requests_per_round']}): p50 ms small -> large, "
                         "large/small")
            for case, c in r["cases"].items():
                lines.append(f"  {case:<16} {c['small_p50_ms']['median']:8.3f} -> {c['large_p50_ms']['median']:8.3f}"
                             f"  {_s(c['large/small'])}")
    return "\n".join(lines)


def run(*, small: Size = SMALL, large: Size = LARGE, applications: int = 1_000_000, parts: Sequence[str] = PARTS,
        repeats: int = 5, requests: int = 100, warmup: int = 10, import_repeats: int = 3,
        shared_data: Path | None = None, work: Path, seed: int = 20260630, keep: bool = False,
        database: str = "national", log: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Build both databases (``dolbom_bench_<database>_small``/``_large``), run ``parts`` and return the results
    (the databases are dropped unless ``keep``)."""
    year = childcare_year(date(2026, 3, 1))
    results: dict[str, Any] = {}
    started = time.perf_counter()
    with throwaway_database(f"{database}_{small.name}", keep=keep) as (small_engine, _f1), \
            throwaway_database(f"{database}_{large.name}", keep=keep) as (large_engine, _f2):
        sides = []
        for engine, size in ((small_engine, small), (large_engine, large)):
            t0 = time.perf_counter()
            sides.append(prepare(engine, size, work=work, shared_data=shared_data, seed=seed))
            log(f"{size.name}: {size.centres} centres generated and imported in {time.perf_counter() - t0:.0f} s")
        results["environment"] = check_database(small_engine)
        if "import" in parts:
            results["import"] = import_part(sides, repeats=import_repeats)
            log(f"import done at {time.perf_counter() - started:.0f} s")
        if "search" in parts:
            results["search"] = search_part(sides, repeats=repeats, requests=requests, warmup=warmup)
            log(f"search done at {time.perf_counter() - started:.0f} s")
        if "ranking" in parts:
            results["seed"] = seed_part(sides, applications=applications, seed=seed, year=year)
            log(f"applications seeded at {time.perf_counter() - started:.0f} s: {results['seed']}")
            results["ranking"] = ranking_part(sides, repeats=repeats, requests=requests, year=year, warmup=warmup)
            log(f"ranking done at {time.perf_counter() - started:.0f} s")
        results["data"] = {}
        for side in sides:
            with side.engine.connect() as conn:
                total, operating = conn.execute(text("SELECT count(*), count(*) FILTER (WHERE status = 'active') "
                                                     "FROM facilities")).one()
                entries = conn.execute(text("SELECT count(*) FROM waitlist_entries")).scalar_one()
            results["data"][side.size.name] = {"facilities": int(total), "operating": int(operating),
                                               "entries": int(entries)}
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print and save."""
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_national", description=__doc__.split("\n")[0])
    parser.add_argument("--parts", choices=PARTS, nargs="+", default=list(PARTS))
    parser.add_argument("--small-centres", type=int, default=SMALL.centres)
    parser.add_argument("--large-centres", type=int, default=LARGE.centres)
    parser.add_argument("--applications", type=int, default=1_000_000, help="entries in the large database")
    parser.add_argument("--repeats", type=int, default=5, help="rounds of search and ranking (default 5)")
    parser.add_argument("--import-repeats", type=int, default=3, help="rounds of import (default 3)")
    parser.add_argument("--requests", type=int, default=100, help="calls per case and round (default 100)")
    parser.add_argument("--shared-data", type=Path,
                        default=Path(os.environ.get("DOLBOM_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data")))
    parser.add_argument("--keep", action="store_true", help="keep the throw-away databases")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dolbom-national-") as tmp:
        results = run(small=Size("small", args.small_centres, SMALL.sido_codes),
                      large=Size("large", args.large_centres, LARGE.sido_codes), applications=args.applications,
                      parts=args.parts, repeats=args.repeats, requests=args.requests,
                      import_repeats=args.import_repeats,
                      shared_data=args.shared_data if args.shared_data.is_dir() else None, work=Path(tmp),
                      keep=args.keep, log=lambda m: print(m, file=sys.stderr, flush=True))
    results["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                          "load_average": os.getloadavg()}
    print(report(results))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS_DIR / f"bench_national-{stamp}.json"
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
