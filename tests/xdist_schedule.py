"""How pytest-xdist shares the suite between its workers (``scripts/test`` runs ``-n 2 --dist loadfile``).

- Each test file is one unit of work, run whole by one worker: module-scoped servers, browsers and throw-away
  databases are made once. Files listed together in ``GROUPS`` form one unit (they run one after the other on
  one worker, never at the same time).
- The longest units go first, so that the run does not end with one worker busy on a long file while the other
  waits: the seconds each file took in the last run that ran it (``.pytest_cache``, kept by the controller at
  the end of a run), else the slow files (``tests/conftest.py`` SLOW_PATHS) first, then the files with the most
  tests. The controller orders; the workers collect in the usual order (they must all collect the same).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

CACHE_KEY = "dolbom/file-seconds"

# Files that must not run at the same time as each other (one unit of work). None today: every file that starts
# clusters, servers or PgBouncer uses folders, sockets and ports of its own, and each worker has its databases.
GROUPS: dict[str, str] = {}


# Seconds of the longest files (a clean clone has no cache: CI), so that the first run schedules the long files
# first: a long file scheduled last would leave one worker alone at the end. Slow files: the issue-24 run of
# 2026-12-06 (`-n 2`, load 9-16; benchmarks/README.md, "Issue 24: the test suite"), except test_access_log and
# test_gdal_clients, whose first test there also waited ~5 minutes for the Seoul template (measured alone after
# the fix of migration 0022 / estimated), test_bench_rank (alone after the fix) and tests/geo/ingest (a run of
# the folder after the fix; test_snapshot_order and test_snapshots scaled by the ratio measured alone when their
# imported states became shared templates, "Issue 24: imported states shared"); fast files: an earlier run of the
# fast subset.
SEED_SECONDS: dict[str, float] = {
    "tests/benchmarks/test_bench_load.py": 756,
    "tests/api/test_schemathesis.py": 524,
    "tests/geo/ingest/test_snapshot_order.py": 265,
    "tests/api/test_map_browser.py": 275,
    "tests/geo/ingest/test_childcare.py": 259,
    "tests/api/test_map_parent_browser.py": 188,
    "tests/api/test_inspections_browser.py": 171,
    "tests/geo/admission/test_admission_stateful.py": 165,
    "tests/geo/ingest/test_snapshots.py": 62,
    "tests/api/test_city_hardening.py": 155,
    "tests/benchmarks/test_bench_read.py": 152,
    "tests/geo/cli/test_cli.py": 149,
    "tests/geo/ingest/test_sync.py": 148,
    "tests/api/test_workers.py": 147,
    "tests/benchmarks/test_bench_first_load.py": 121,
    "tests/api/test_vacancy_stream.py": 121,
    "tests/benchmarks/test_bench_apply_burst.py": 115,
    "tests/benchmarks/test_bench_layers.py": 106,
    "tests/geo/analysis/test_planner.py": 103,
    "tests/benchmarks/test_bench_rank.py": 99,
    "tests/api/test_portal_browser.py": 98,
    "tests/api/test_docs_browser.py": 86,
    "tests/api/test_portal_bookings_browser.py": 82,
    "tests/api/test_apply_burst.py": 76,
    "tests/benchmarks/test_bench_national.py": 70,
    "tests/api/test_hardening.py": 70,
    "tests/api/test_disclosure_browser.py": 69,
    "tests/api/test_portal_alerts_browser.py": 66,
    "tests/api/test_portal_staff_browser.py": 64,
    "tests/api/test_portal_officer_browser.py": 63,
    "tests/api/test_write_position.py": 56,
    "tests/api/test_privacy_api.py": 54,
    "tests/api/test_ogc_clients.py": 42,
    "tests/geo/test_settings.py": 37,
    "tests/benchmarks/test_bench_log_scale.py": 37,
    "tests/api/test_vacancy_nchan.py": 37,
    "tests/api/test_access_log.py": 36,
    "tests/tiles/test_tiles.py": 36,
    "tests/api/test_pgbouncer_recovery.py": 36,
    "tests/api/test_facilities_api.py": 35,
    "tests/api/test_accounts_api.py": 33,
    "tests/api/test_replicas_api.py": 32,
    "tests/api/test_idempotency_api.py": 31,
    "tests/benchmarks/test_bench_replicas.py": 31,
    "tests/api/test_tlog_browser.py": 29,
    "tests/api/test_statistics_browser.py": 29,
    "tests/api/test_scale_out.py": 27,
    "tests/api/test_gdal_clients.py": 25,
}


def file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def unit_of(nodeid: str) -> str:
    path = file_of(nodeid)
    return GROUPS.get(path, path)


def expected_seconds(nodeids: Iterable[str], known: dict[str, float], slow_paths: tuple[str, ...]) -> dict[str, float]:
    """Expected seconds of each unit of work: the file's seconds in the last run that ran it, else its
    ``SEED_SECONDS``, else 300 s for a file under SLOW_PATHS and half a second a test for any other."""
    tests: dict[str, int] = {}
    for nodeid in nodeids:
        tests[file_of(nodeid)] = tests.get(file_of(nodeid), 0) + 1
    seconds: dict[str, float] = {}
    for path, count in tests.items():
        if path in known:
            guess = known[path]
        elif path in SEED_SECONDS:
            guess = SEED_SECONDS[path]
        elif path.removeprefix("tests/").startswith(slow_paths):
            guess = 300.0
        else:
            guess = 0.5 * count
        seconds[unit_of(path)] = seconds.get(unit_of(path), 0.0) + guess
    return seconds


class FileTimes:
    """Controller plugin: seconds per test file of this run, merged into the cache at the end."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.seconds: dict[str, float] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        path = file_of(report.nodeid.split("@", 1)[0])
        self.seconds[path] = self.seconds.get(path, 0.0) + report.duration

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if getattr(self.config, "cache", None) is None or not self.seconds:
            return
        known = dict(self.config.cache.get(CACHE_KEY, {}))
        known.update({path: round(s, 1) for path, s in self.seconds.items()})
        self.config.cache.set(CACHE_KEY, known)


def make_scheduler(config: pytest.Config, log: Any, slow_paths: tuple[str, ...]) -> Any:
    """``--dist loadfile`` with ``GROUPS``, the longest units first."""
    from xdist.scheduler.loadscope import LoadScopeScheduling

    known: dict[str, float] = config.cache.get(CACHE_KEY, {}) if config.cache is not None else {}

    class FileGroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

        def schedule(self) -> None:
            # LoadScopeScheduling.schedule with the units ordered by expected seconds instead of by size.
            assert self.collection_is_completed
            if self.collection is not None:
                for node in self.nodes:
                    self._reschedule(node)
                return
            if not self._check_nodes_have_same_collection():
                self.log("**Different tests collected, aborting run**")
                return
            self.collection = list(next(iter(self.registered_collections.values())))
            if not self.collection:
                return
            units: dict[str, dict[str, bool]] = {}
            for nodeid in self.collection:
                units.setdefault(self._split_scope(nodeid), {})[nodeid] = False
            seconds = expected_seconds(self.collection, known, slow_paths)
            for unit in sorted(units, key=lambda u: (-seconds.get(u, 0.0), u)):
                self.workqueue[unit] = units[unit]
            for _ in range(len(self.nodes) - len(self.workqueue)):
                unused, _assigned = self.assigned_work.popitem()
                unused.shutdown()
            for node in self.nodes:
                if node in self.assigned_work:
                    self._assign_work_unit(node)
            for node in self.nodes:
                if node in self.assigned_work:
                    self._reschedule(node)
            if not self.workqueue:
                for node in self.nodes:
                    node.shutdown()

    return FileGroupScheduling(config, log)
