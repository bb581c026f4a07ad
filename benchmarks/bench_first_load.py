"""The map's first load in a real browser: bytes transferred, requests and time to the first markers, this
checkout's page against a baseline checkout's (``--baseline-dir``, e.g. main exported with ``git archive``) and
against the page as it was before issue 24, measured in the same run.

Run ``python -m benchmarks.bench_first_load`` (see benchmarks/README.md). Three API servers (one uvicorn worker
each) run on the same database (a throw-away Seoul import, or ``--url``):

- ``before``: the baseline's code, ``DOLBOM_COMPRESS=false`` and the page opened as ``/?list=full`` (the full
  items, ``f=json``), what the page loaded before issue 24;
- ``today``: the baseline's code with its defaults, ``/``;
- ``after``: this checkout's code with its defaults, ``/``.

Without ``--baseline-dir`` the baseline is this checkout (``today`` and ``after`` are then the same code).
Each round opens the page once per variant (the order rotating) in a fresh browser context (empty cache) of
Debian's chromium, requests to any host but 127.0.0.1 aborted (as the browser tests do). Measured per load:
requests that reached our server, bytes transferred (headers + encoded bodies, from the browser), milliseconds
from navigation to the first marker or cluster on the map (a MutationObserver in the page) and to the filled
list; and where the time to the first markers goes (navigation and resource timing): the HTML's last byte, the
end of the parser's scripts (DOMContentLoaded), the start and end of the first centre-list request.
Reported: per variant the median over rounds, and per round the ratios after / today and after / before, as
median [min-max]. Output: a table and ``benchmarks/results/bench_first_load-<UTC>.json``.
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
from contextlib import ExitStack, contextmanager
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
    "before": {"code": "baseline", "env": {"DOLBOM_COMPRESS": "false"}, "path": "/?list=full"},
    "today": {"code": "baseline", "env": {}, "path": "/"},
    "after": {"code": "this", "env": {}, "path": "/"},
}
RATIOS = (("after", "today"), ("after", "before"))
MEASURES = ("bytes", "requests", "first_marker_ms", "list_ms")
# Where the time to the first markers goes (ms since navigation): the HTML's last byte, the parser's scripts done
# (DOMContentLoaded: every classic and deferred script has run), the first centre-list request's start and end.
TIMELINE = ("html_ms", "scripts_ms", "list_request_ms", "list_response_ms")
TIMELINE_SCRIPT = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const list = performance.getEntriesByType("resource").find((r) => r.name.includes("/facilities/radius"));
  return {html_ms: nav.responseEnd, scripts_ms: nav.domContentLoadedEventStart,
          list_request_ms: list ? list.startTime : -1, list_response_ms: list ? list.responseEnd : -1};
}"""
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
def api_server(database_url: str, env: dict[str, str], *, code_dir: Path = PROJECT_ROOT) -> Iterator[str]:
    """One uvicorn worker of the API in ``code_dir`` (this checkout, or an exported baseline, run with this
    virtualenv); yields its base URL."""
    port = free_port()
    cmd = uvicorn_command(sys.executable, "api.app:create_app", port, factory=True)
    base = f"http://127.0.0.1:{port}"
    # The code directory first on the path, so that a baseline's api/ and geo/ win over this checkout's.
    path = os.pathsep.join(filter(None, [str(code_dir), os.environ.get("PYTHONPATH")]))
    with running_server(cmd, base_url=base, ready_path="/health", cwd=code_dir,
                        env={**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": path, **env},
                        timeout_s=120):
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
        timeline = {name: float(value) for name, value in page.evaluate(TIMELINE_SCRIPT).items()}
        ours = [r for r in finished if urlsplit(r.url).hostname == "127.0.0.1"]
        total = 0
        for request in ours:
            sizes = request.sizes()
            total += sizes["responseHeadersSize"] + sizes["responseBodySize"]
        return {"bytes": float(total), "requests": float(len(ours)), "first_marker_ms": first_marker_ms,
                "list_ms": list_ms, **timeline}
    finally:
        context.close()


def summary(values: list[float]) -> dict[str, float]:
    """Median, min and max."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def run(database_url: str, *, rounds: int, timeout_ms: int, baseline_dir: Path = PROJECT_ROOT) -> dict[str, Any]:
    """Interleaved rounds of every variant; per-variant medians and per-round ratios (``RATIOS``)."""
    from playwright.sync_api import sync_playwright

    code_dirs = {"baseline": baseline_dir, "this": PROJECT_ROOT}
    loads: dict[str, list[dict[str, float]]] = {name: [] for name in VARIANTS}
    with ExitStack() as stack:
        bases = {name: stack.enter_context(api_server(database_url, spec["env"], code_dir=code_dirs[spec["code"]]))
                 for name, spec in VARIANTS.items()}
        pw = stack.enter_context(sync_playwright())
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for name in VARIANTS:  # warm every server (pools, PostgreSQL caches), not measured
                load_once(browser, bases[name] + VARIANTS[name]["path"], timeout_ms=timeout_ms)
            names = list(VARIANTS)
            for round_no in range(rounds):
                shift = round_no % len(names)  # each variant takes each place in the order in turn
                for name in names[shift:] + names[:shift]:
                    loads[name].append(load_once(browser, bases[name] + VARIANTS[name]["path"],
                                                 timeout_ms=timeout_ms))
        finally:
            browser.close()
    report: dict[str, Any] = {"rounds": rounds, "baseline_dir": str(baseline_dir), "variants": {}, "ratios": {},
                              "loads": loads}
    for name, runs in loads.items():
        report["variants"][name] = {m: summary([r[m] for r in runs]) for m in MEASURES + TIMELINE}
    for top, bottom in RATIOS:
        report["ratios"][f"{top}/{bottom}"] = {
            measure: summary([a[measure] / b[measure] for a, b in zip(loads[top], loads[bottom], strict=True)])
            for measure in MEASURES}
    return report


def print_table(report: dict[str, Any]) -> None:
    """Human-readable table: medians per variant, then the ratios as median [min-max]."""
    names = list(VARIANTS)
    pairs = [f"{top}/{bottom}" for top, bottom in RATIOS]
    print(f"{'measure':<18}" + "".join(f"{name:>10}" for name in names) + "".join(f"   {p:<22}" for p in pairs))
    for measure in MEASURES + TIMELINE:
        row = f"{measure:<18}" + "".join(f"{report['variants'][n][measure]['median']:>10.0f}" for n in names)
        if measure in MEASURES:
            for pair in pairs:
                r = report["ratios"][pair][measure]
                row += f"   {r['median']:.3f} [{r['min']:.3f}-{r['max']:.3f}]".ljust(25)
        print(row)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, prepare data, run, print and save."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_first_load",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="an existing database with the Seoul import (else a throw-away one)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline-dir", type=Path, default=PROJECT_ROOT,
                        help="the code of the today and before variants, e.g. main exported with "
                             "`git -C <main> archive main | tar -x -C <dir>` (default: this checkout)")
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
        return run(url, rounds=args.rounds, timeout_ms=int(args.timeout_s * 1000),
                   baseline_dir=args.baseline_dir.resolve())

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
    report["environment"] = environment | {"seconds": round(time.monotonic() - started, 1),
                                           "load_average_after": os.getloadavg()}
    print_table(report)
    print("load average (1, 5, 15 min): before {} after {}".format(
        *(", ".join(f"{x:.1f}" for x in report["environment"][k]) for k in ("load_average", "load_average_after"))))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = args.output or RESULTS_DIR / f"bench_first_load-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
