"""The map's first load in a real browser: bytes transferred, requests and time to the first markers, today's
page against the page as it was (uncompressed answers, the full centre list), measured in the same run.

Run ``python -m benchmarks.bench_first_load`` (see benchmarks/README.md). Two API servers (one uvicorn worker
each) run on the same database (a throw-away Seoul import, or ``--url``):

- ``before``: ``DOLBOM_COMPRESS=false`` and the page opened as ``/?list=full`` (the full items, ``f=json``), what
  the page loaded before issue 24;
- ``after``: the defaults (gzip, the marker list ``f=markers``, cache headers on vendored assets) and ``/``.

Each round opens the page once per variant (the order alternating) in a fresh browser context (empty cache) of
Debian's chromium, requests to any host but 127.0.0.1 aborted (as the browser tests do). Measured per load:
requests that reached our server, bytes transferred (headers + encoded bodies, from the browser), milliseconds
from navigation to the first marker or cluster on the map (a MutationObserver in the page) and to the filled
list. Reported: per variant the median over rounds, and per round the ratio after / before, as median
[min-max]. Output: a table and ``benchmarks/results/bench_first_load-<UTC>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine

from benchmarks.bench_read import analyze, load_seoul, throwaway_database
from benchmarks.harness import free_port, running_server, uvicorn_command
from geo.db import check_database, make_engine
from geo.settings import PROJECT_ROOT

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VARIANTS: dict[str, dict[str, Any]] = {
    "before": {"env": {"DOLBOM_COMPRESS": "false"}, "path": "/?list=full"},
    "after": {"env": {}, "path": "/"},
}
MEASURES = ("bytes", "requests", "first_marker_ms", "list_ms")
# Records when the first centre marker or cluster enters the map (performance.now(): ms since navigation; the
# 구/동 labels are markers too, hence the classes).
FIRST_MARKER_SCRIPT = """
window.__firstMarkerMs = null;
new MutationObserver((_, observer) => {
  if (document.querySelector("#map .leaflet-marker-icon.centre, #map .leaflet-marker-icon.cluster")) {
    window.__firstMarkerMs = performance.now();
    observer.disconnect();
  }
}).observe(document, {childList: true, subtree: true});
"""


@contextmanager
def api_server(database_url: str, env: dict[str, str]) -> Iterator[str]:
    """One uvicorn worker of our API; yields its base URL."""
    port = free_port()
    cmd = uvicorn_command(sys.executable, "api.app:create_app", port, factory=True)
    base = f"http://127.0.0.1:{port}"
    with running_server(cmd, base_url=base, ready_path="/health",
                        env={**os.environ, "DATABASE_URL": database_url, **env}, timeout_s=120):
        yield base


def load_once(browser: Any, url: str, *, timeout_ms: int) -> dict[str, float]:
    """Open ``url`` in a fresh context; the first view's requests, bytes and times."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        context.route("**/*", lambda route: route.continue_() if urlsplit(route.request.url).hostname == "127.0.0.1"
                      else route.abort())
        context.add_init_script(FIRST_MARKER_SCRIPT)
        page = context.new_page()
        finished: list[Any] = []
        page.on("requestfinished", lambda request: finished.append(request))
        page.goto(url)
        page.wait_for_function("() => window.__firstMarkerMs !== null", timeout=timeout_ms)
        page.locator("#results li").first.wait_for(timeout=timeout_ms)
        list_ms = float(page.evaluate("() => performance.now()"))
        page.wait_for_load_state("networkidle", timeout=timeout_ms)
        first_marker_ms = float(page.evaluate("() => window.__firstMarkerMs"))
        ours = [r for r in finished if urlsplit(r.url).hostname == "127.0.0.1"]
        total = 0
        for request in ours:
            sizes = request.sizes()
            total += sizes["responseHeadersSize"] + sizes["responseBodySize"]
        return {"bytes": float(total), "requests": float(len(ours)), "first_marker_ms": first_marker_ms,
                "list_ms": list_ms}
    finally:
        context.close()


def summary(values: list[float]) -> dict[str, float]:
    """Median, min and max."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def run(database_url: str, *, rounds: int, timeout_ms: int) -> dict[str, Any]:
    """Interleaved rounds of both variants; per-variant medians and per-round ratios after / before."""
    from playwright.sync_api import sync_playwright

    loads: dict[str, list[dict[str, float]]] = {name: [] for name in VARIANTS}
    with api_server(database_url, VARIANTS["before"]["env"]) as before, \
            api_server(database_url, VARIANTS["after"]["env"]) as after, sync_playwright() as pw:
        bases = {"before": before, "after": after}
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for name in VARIANTS:  # warm both servers (pools, PostgreSQL caches), not measured
                load_once(browser, bases[name] + VARIANTS[name]["path"], timeout_ms=timeout_ms)
            for round_no in range(rounds):
                order = list(VARIANTS) if round_no % 2 == 0 else list(VARIANTS)[::-1]
                for name in order:
                    loads[name].append(load_once(browser, bases[name] + VARIANTS[name]["path"],
                                                 timeout_ms=timeout_ms))
        finally:
            browser.close()
    report: dict[str, Any] = {"rounds": rounds, "variants": {}, "ratios": {}, "loads": loads}
    for name, runs in loads.items():
        report["variants"][name] = {m: summary([r[m] for r in runs]) for m in MEASURES}
    for measure in MEASURES:
        report["ratios"][measure] = summary([a[measure] / b[measure]
                                             for a, b in zip(loads["after"], loads["before"], strict=True)])
    return report


def print_table(report: dict[str, Any]) -> None:
    """Human-readable table."""
    print(f"{'measure':<18}{'before':>12}{'after':>12}   after/before median [min-max]")
    for measure in MEASURES:
        b, a = report["variants"]["before"][measure], report["variants"]["after"][measure]
        r = report["ratios"][measure]
        print(f"{measure:<18}{b['median']:>12.0f}{a['median']:>12.0f}   {r['median']:.3f} "
              f"[{r['min']:.3f}-{r['max']:.3f}]")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, prepare data, run, print and save."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_first_load",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="an existing database with the Seoul import (else a throw-away one)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--timeout-s", type=float, default=120.0, help="hang guard per page load")
    parser.add_argument("--shared-data", type=Path,
                        default=Path(os.environ.get("DOLBOM_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data")))
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the throw-away database")
    parser.add_argument("--output", type=Path, help="write the JSON report here (default benchmarks/results/)")
    args = parser.parse_args(argv)
    environment: dict[str, Any] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                                   "load_average": os.getloadavg()}
    started = time.monotonic()

    def go(engine: Engine, url: str) -> dict[str, Any]:
        environment.update(check_database(engine))
        return run(url, rounds=args.rounds, timeout_ms=int(args.timeout_s * 1000))

    if args.url:
        engine = make_engine(args.url)
        report = go(engine, args.url)
        engine.dispose()
    else:
        with throwaway_database("first_load", keep=args.keep) as (engine, filled):
            if not filled:
                load_seoul(engine, args.shared_data)
                analyze(engine)
            report = go(engine, engine.url.render_as_string(hide_password=False))
    report["environment"] = environment | {"seconds": round(time.monotonic() - started, 1)}
    print_table(report)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = args.output or RESULTS_DIR / f"bench_first_load-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
