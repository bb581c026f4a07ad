"""Daily sync from the official open APIs, paging through the whole set and feeding the childcare importer.

- Seoul open data API of OA-20300 (``{DOLBOM_SEOUL_API_URL}/{key}/json/ChildCareInfo/{start}/{end}/``, at
  most 1,000 rows a page, ``list_total_count`` and ``RESULT.CODE`` = ``INFO-000`` / ``INFO-200`` no data);
- the national 어린이집 기본정보 open API (data.go.kr style: ``?serviceKey=&pageNo=&numOfRows=&type=json``,
  ``response.header.resultCode`` = ``00``, ``response.body.totalCount`` and ``body.items.item``).

All pages are fetched first (with a timeout per request and a few retries for timeouts, connection errors
and 5xx answers); only when every page arrived, row counts add up to the announced total and no page was
empty does the sync write the rows as the official CSV layout to a temporary file and run the existing
importer (``import_seoul_oa20300`` / ``import_national_basic``) in one transaction: the same row-level
report, the same ``import_runs`` and ``enrollment_changes`` history. Anything else raises ``SyncFailed``
and the database is untouched.

Seoul API rows are keyed by the API's field names (``STCODE``, ``CRNAME``, ``LA``, ``LO``, ...), mapped to
the CSV columns by ``SEOUL_API_FIELDS``; a row keyed by the CSV column names themselves is accepted too.
"""

from __future__ import annotations

import csv
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Connection, Engine

from geo.auth.audit import audit
from geo.errors import SyncFailed
from geo.ingest.childcare import import_national_basic, import_seoul_oa20300
from geo.ingest.report import ImportResult
from geo.settings import Settings

SEOUL_SERVICE = "ChildCareInfo"

# The 62 columns of OA-20300 as published (CSV download), in order.
SEOUL_CSV_COLUMNS: tuple[str, ...] = (
    "시군구명", "어린이집코드", "어린이집명", "어린이집유형", "운영현황", "우편번호", "상세주소", "전화번호",
    "팩스번호", "홈페이지주소", "보육실수", "보육실 면적", "놀이터수", "CCTV총설치수", "보육교직원수", "정원",
    "현원", "시설 위도(좌표값)", "시설 경도(좌표값)", "통학차량운영여부", "인가일자", "휴지시작일자",
    "휴지종료일자", "폐지일자", "데이터기준일자", "제공서비스", "반수-만0세", "반수-만1세", "반수-만2세",
    "반수-만3세", "반수-만4세", "반수-만5세", "반수-영아혼합(만0~2세)", "반수-유아혼합(만3~5세)",
    "반수-특수장애", "반수-총계", "아동수-만0세", "아동수-만1세", "아동수-만2세", "아동수-만3세",
    "아동수-만4세", "아동수-만5세", "아동수-영아혼합(만0~2세)", "아동수-유아혼합(만3~5세)", "아동수-특수장애",
    "아동수-총계", "근속년수-1년미만", "근속년수-1년이상~2년미만", "근속년수-2년이상~4년미만",
    "근속년수-4년이상~6년미만", "근속년수-6년이상", "교직원현황-원장", "교직원현황-보육교사",
    "교직원현황-특수교사", "교직원현황-치료교사", "교직원현황-영양사", "교직원현황-간호사",
    "교직원현황-간호조무사", "교직원현황-조리원", "교직원현황-사무직원", "교직원현황-총계", "데이터수집일",
)

# Seoul API field -> CSV column (보육정보 open API naming); unmapped columns are looked up by their CSV name.
SEOUL_API_FIELDS: dict[str, str] = {
    "SIGUNNAME": "시군구명", "STCODE": "어린이집코드", "CRNAME": "어린이집명", "CRTYPENAME": "어린이집유형",
    "CRSTATUSNAME": "운영현황", "ZIPCODE": "우편번호", "CRADDR": "상세주소", "CRTELNO": "전화번호",
    "CRFAXNO": "팩스번호", "CRHOME": "홈페이지주소", "NRTRROOMCNT": "보육실수", "NRTRROOMSIZE": "보육실 면적",
    "PLGRDCO": "놀이터수", "CCTVINSTLCNT": "CCTV총설치수", "CHCRTESCNT": "보육교직원수", "CRCAPAT": "정원",
    "CRCHCNT": "현원", "LA": "시설 위도(좌표값)", "LO": "시설 경도(좌표값)", "CRCARGBNAME": "통학차량운영여부",
    "CRCNFMDT": "인가일자", "CRPAUSEBEGINDT": "휴지시작일자", "CRPAUSEENDDT": "휴지종료일자", "CRABLDT": "폐지일자",
    "DATASTDRDT": "데이터기준일자", "CRSPEC": "제공서비스",
    **{f"CLASS_CNT_0{a}": f"반수-만{a}세" for a in range(6)},
    "CLASS_CNT_M2": "반수-영아혼합(만0~2세)", "CLASS_CNT_M5": "반수-유아혼합(만3~5세)", "CLASS_CNT_SP": "반수-특수장애",
    "CLASS_CNT_TOT": "반수-총계",
    **{f"CHILD_CNT_0{a}": f"아동수-만{a}세" for a in range(6)},
    "CHILD_CNT_M2": "아동수-영아혼합(만0~2세)", "CHILD_CNT_M5": "아동수-유아혼합(만3~5세)",
    "CHILD_CNT_SP": "아동수-특수장애", "CHILD_CNT_TOT": "아동수-총계",
    "EM_CNT_0Y": "근속년수-1년미만", "EM_CNT_1Y": "근속년수-1년이상~2년미만", "EM_CNT_2Y": "근속년수-2년이상~4년미만",
    "EM_CNT_4Y": "근속년수-4년이상~6년미만", "EM_CNT_6Y": "근속년수-6년이상",
    "EM_CNT_A1": "교직원현황-원장", "EM_CNT_A2": "교직원현황-보육교사", "EM_CNT_A3": "교직원현황-특수교사",
    "EM_CNT_A4": "교직원현황-치료교사", "EM_CNT_A5": "교직원현황-영양사", "EM_CNT_A6": "교직원현황-간호사",
    "EM_CNT_A10": "교직원현황-간호조무사", "EM_CNT_A7": "교직원현황-조리원", "EM_CNT_A8": "교직원현황-사무직원",
    "EM_CNT_TOT": "교직원현황-총계", "DATA_COLLECT_DT": "데이터수집일",
}
SEOUL_CSV_TO_API: dict[str, str] = {v: k for k, v in SEOUL_API_FIELDS.items()}

# The 24 columns of the national 어린이집 기본정보 export; API items carry the same names.
NATIONAL_CSV_COLUMNS: tuple[str, ...] = (
    "시도", "시군구", "어린이집명", "어린이집유형구분", "운영현황", "우편번호", "주소", "어린이집전화번호",
    "어린이집팩스번호", "보육실수", "보육실면적", "놀이터수", "CCTV설치수", "보육교직원수", "정원수",
    "현원수", "위도", "경도", "통학차량운영여부", "홈페이지주소", "인가일자", "휴지시작일자", "휴지종료일자",
    "폐지일자",
)

Page = tuple[int, list[dict[str, Any]]]  # (announced total, rows)


def _get_json(client: httpx.Client, url: str, params: dict[str, Any] | None, *, what: str, retries: int,
              backoff_s: float) -> Any:
    """GET a JSON page; retries timeouts, connection errors and 5xx, then raises ``SyncFailed``."""
    last = ""
    for attempt in range(retries + 1):
        try:
            resp = client.get(url, params=params)
            if resp.status_code >= 500:
                last = f"HTTP {resp.status_code}"
            elif resp.status_code >= 400:
                raise SyncFailed(f"{what}: HTTP {resp.status_code}; nothing was written", page=what)
            else:
                try:
                    return resp.json()
                except ValueError as exc:
                    raise SyncFailed(f"{what}: the answer is not JSON; nothing was written", page=what) from exc
        except httpx.TimeoutException:
            last = "timed out"
        except httpx.TransportError as exc:
            last = f"{exc.__class__.__name__}: {exc}"
        if attempt < retries:
            time.sleep(backoff_s * (attempt + 1))
    raise SyncFailed(f"{what}: {last} after {retries + 1} attempts; nothing was written", page=what)


def fetch_all(fetch_page: Callable[[int, int], Page], *, page_size: int, source: str) -> list[dict[str, Any]]:
    """Every row of a paged API: pages 1..n of ``page_size`` until the announced total is reached.

    ``SyncFailed`` when a page is empty before the total is reached, or the rows do not add up to it."""
    rows: list[dict[str, Any]] = []
    total: int | None = None
    page = 1
    while total is None or len(rows) < total:
        announced, batch = fetch_page(page, page_size)
        if total is None:
            total = announced
            if total == 0:
                raise SyncFailed(f"{source}: the API announces no rows at all; nothing was written")
        elif announced != total:
            raise SyncFailed(f"{source}: the total changed from {total} to {announced} while paging; "
                             "nothing was written")
        if not batch:
            raise SyncFailed(f"{source}: page {page} is empty after {len(rows)} of {total} rows; "
                             "nothing was written", page=page)
        rows.extend(batch)
        page += 1
    if len(rows) != total:
        raise SyncFailed(f"{source}: received {len(rows)} rows but the API announced {total}; nothing was written")
    return rows


def seoul_page_fetcher(client: httpx.Client, settings: Settings) -> Callable[[int, int], Page]:
    """Fetch one page of the Seoul ChildCareInfo API (1-based page, rows ``start..end`` inclusive)."""
    if not settings.sync.seoul_api_key:
        raise SyncFailed("DOLBOM_SEOUL_API_KEY is not set")
    base = settings.sync.seoul_api_url.rstrip("/")

    def fetch(page: int, size: int) -> Page:
        start, end = (page - 1) * size + 1, page * size
        what = f"{SEOUL_SERVICE} rows {start}-{end}"
        body = _get_json(client, f"{base}/{settings.sync.seoul_api_key}/json/{SEOUL_SERVICE}/{start}/{end}/", None,
                         what=what, retries=settings.sync.retries, backoff_s=0.5)
        block = body.get(SEOUL_SERVICE) if isinstance(body, dict) else None
        result = (block or body or {}).get("RESULT", {}) if isinstance(body, dict) else {}
        code = str(result.get("CODE", ""))
        if code == "INFO-200":
            return (int(block.get("list_total_count", 0)) if block else 0), []
        if block is None or code != "INFO-000":
            raise SyncFailed(f"{what}: API error {code or '?'} {result.get('MESSAGE', '')}".strip()
                             + "; nothing was written", page=page, api_code=code)
        return int(block["list_total_count"]), list(block.get("row") or [])

    return fetch


def national_page_fetcher(client: httpx.Client, settings: Settings) -> Callable[[int, int], Page]:
    """Fetch one page of the national 어린이집 기본정보 API."""
    if not settings.sync.national_api_key:
        raise SyncFailed("DOLBOM_NATIONAL_API_KEY is not set")

    def fetch(page: int, size: int) -> Page:
        what = f"national page {page}"
        body = _get_json(client, settings.sync.national_api_url, {"serviceKey": settings.sync.national_api_key,
                                                             "pageNo": page, "numOfRows": size, "type": "json"},
                         what=what, retries=settings.sync.retries, backoff_s=0.5)
        response = body.get("response", {}) if isinstance(body, dict) else {}
        header = response.get("header", {})
        if str(header.get("resultCode")) != "00":
            raise SyncFailed(f"{what}: API error {header.get('resultCode')} {header.get('resultMsg', '')}; "
                             "nothing was written", page=page)
        payload = response.get("body", {})
        items = (payload.get("items") or {}).get("item") or []
        if isinstance(items, dict):  # one item comes as an object, not a list
            items = [items]
        return int(payload.get("totalCount", 0)), list(items)

    return fetch


def _seoul_csv_row(row: dict[str, Any]) -> list[str]:
    return ["" if (v := row.get(SEOUL_CSV_TO_API.get(col, col), row.get(col))) is None else str(v)
            for col in SEOUL_CSV_COLUMNS]


def _write_csv(path: Path, header: tuple[str, ...], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, quoting=csv.QUOTE_ALL)
        writer.writerow(header)
        writer.writerows(rows)


def sync_seoul(engine: Engine, settings: Settings, *, client: httpx.Client | None = None) -> ImportResult:
    """Fetch the whole OA-20300 set from the Seoul API and import it (one transaction, or nothing)."""
    with _client(client, settings) as http:
        rows = fetch_all(seoul_page_fetcher(http, settings), page_size=settings.sync.page_size,
                         source=f"Seoul {SEOUL_SERVICE}")
    with tempfile.TemporaryDirectory(prefix="dolbom-sync-") as tmp:
        path = Path(tmp) / f"seoul_oa20300_api_{date.today():%Y%m%d}.csv"
        _write_csv(path, SEOUL_CSV_COLUMNS, [_seoul_csv_row(r) for r in rows])
        with engine.begin() as conn:
            result = import_seoul_oa20300(conn, path)
            _audit_sync(conn, "sync.seoul", result, pages=-(-len(rows) // settings.sync.page_size))
            return result


def sync_national(engine: Engine, settings: Settings, *, client: httpx.Client | None = None,
                  data_date: date | None = None) -> ImportResult:
    """Fetch the whole national 어린이집 기본정보 set and import it (one transaction, or nothing)."""
    with _client(client, settings) as http:
        rows = fetch_all(national_page_fetcher(http, settings), page_size=settings.sync.page_size,
                         source="national 어린이집 기본정보")
    day = data_date or date.today()
    with tempfile.TemporaryDirectory(prefix="dolbom-sync-") as tmp:
        path = Path(tmp) / f"national_basic_api_{day:%Y%m%d}.csv"
        _write_csv(path, NATIONAL_CSV_COLUMNS,
                   [["" if r.get(c) is None else str(r.get(c)) for c in NATIONAL_CSV_COLUMNS] for r in rows])
        with engine.begin() as conn:
            result = import_national_basic(conn, path, data_date=day)
            _audit_sync(conn, "sync.national", result, pages=-(-len(rows) // settings.sync.page_size))
            return result


def _audit_sync(conn: Connection, action: str, result: ImportResult, *, pages: int) -> None:
    """The sync as a system write in the audit log (the row-level detail is in ``import_runs``)."""
    audit(conn, actor_user_id=None, action=action, entity="import_runs", entity_id=result.import_run_id,
          before=None, after={"pages": pages, "rows": result.rows_read, "inserted": result.inserted,
                              "updated": result.updated, "skipped": result.skipped,
                              "enrollment_changes": result.enrollment_changes})


class _client:
    """The given client, or a new one with the configured timeout (closed afterwards)."""

    def __init__(self, client: httpx.Client | None, settings: Settings) -> None:
        self.given = client
        self.own: httpx.Client | None = None
        self.timeout_s = settings.sync.timeout_s

    def __enter__(self) -> httpx.Client:
        if self.given is not None:
            return self.given
        self.own = httpx.Client(timeout=self.timeout_s)
        return self.own

    def __exit__(self, *exc: object) -> None:
        if self.own is not None:
            self.own.close()
