"""Loading official childcare (어린이집) lists: Seoul Open Data OA-20300 and the national 어린이집 기본정보 export.

Both importers stream the CSV (UTF-8 with or without BOM, else cp949) row by row with the ``csv`` module,
COPY the parsed rows into a temporary staging table and finish set-based in SQL: coordinates are checked
and, where unusable, replaced by a point inside the 법정동 (else the 시군구) named in the address; 시군구,
법정동 and 행정동 are filled by point-in-polygon; then ``facilities`` is upserted by code and every change of
현원, 정원, 반수 (classes by age), enrolment by age or status of an existing centre is written to
``enrollment_changes``.

Snapshots (each row dated by its 데이터기준일자) may come in any order: a row older than the stored one is not
applied; a centre first seen in a snapshot older than the newest *full* snapshot of its 시도 is stored as
``unlisted``; a full snapshot marks the centres of its 시도 that it no longer lists (and no newer snapshot
listed) as ``unlisted`` with a history row, except those already closed. Partial snapshots (extracts) infer
nothing from absent centres. ``snapshot="auto"`` treats a file listing closed (폐지) centres as full.

One file is one import run (``geo.ingest.run``), one transaction: a file that cannot be read, lacks required
columns, is cut short, holds a NUL byte or is mostly unusable rows raises ``ImportFailed`` and writes nothing;
problems of single rows are reported in the ``ImportResult`` (row number, code, column, reason; bounded per kind)
and in ``import_runs.report``, never silently dropped. Re-importing the same file changes nothing
(``facilities.updated_at`` included): rows are compared field by field before they are written.

All geometries are EPSG:4326 points (lon, lat).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from psycopg import sql
from sqlalchemy import Connection, Engine, text

from geo.db import composed
from geo.domain import SOURCE_TIME_ZONE, FacilityStatus
from geo.errors import ImportFailed
from geo.ingest.childcare.formats import (
    NATIONAL_BASIC,
    SEOUL_OA20300,
    SNAPSHOT_MODES,
    CsvFormat,
    date_from_file_name,
)
from geo.ingest.childcare.locate import _locate, _Lookups
from geo.ingest.childcare.rows import _INPUT_COLUMNS, _Context, _Issues, _parse_row
from geo.ingest.csvio import data_rows, field_count_problem, file_sha256, open_csv
from geo.ingest.report import ImportResult
from geo.ingest.run import DEFAULT_LIMITS, ImportLimits, ImportRun, import_run

# Columns computed in SQL after the COPY.
_DERIVED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("geom_4326", "geometry(Point, 4326)"), ("geocode_quality", "text"), ("admin_dong_id", "integer"),
    ("offset_m", "double precision"), ("facility_id", "integer"), ("changed", "boolean"),
    ("history_changed", "boolean"), ("unlisted_on", "date"), ("live_report_id", "bigint"),
    ("live_reported_at", "timestamptz"),
)
# Figures a staff report gives (geo.vacancy.reports): a report made after a snapshot's data date wins over it.
_LIVE_COLUMNS: tuple[str, ...] = ("enrolled", "enrolled_by_age", "free_by_age", "classes_by_age")

# facilities columns written by the importers (all compared to decide updated vs unchanged).
_FACILITY_COLUMNS: tuple[str, ...] = (
    "name", "facility_type", "status", "sido_name", "sigungu_name", "district_code", "admin_dong_id",
    "legal_dong_code", "postal_code", "address", "phone", "fax", "homepage", "rooms", "room_area_m2",
    "playgrounds", "cctv_count", "staff_count", "staff_by_role", "has_bus", "capacity", "enrolled",
    "classes_by_age", "enrolled_by_age", "free_by_age", "services", "opening_hours", "approved_on",
    "suspended_from", "suspended_until", "closed_on", "data_date", "geocode_quality", "source", "geom_4326",
)
# Compared to decide whether a change goes to the history (enrollment_changes: <column>_before/_after).
_HISTORY_COLUMNS: tuple[str, ...] = ("enrolled", "capacity", "enrolled_by_age", "classes_by_age", "status")
_HISTORY_INSERT: tuple[str, ...] = tuple(f"{c}_{when}" for c in _HISTORY_COLUMNS for when in ("before", "after"))


# --------------------------------------------------------------------------------------------------------------
# Public API


def import_seoul_oa20300(engine: Engine | Connection, path: Path, *, progress: bool = False,
                         snapshot: str = "auto", limits: ImportLimits = DEFAULT_LIMITS) -> ImportResult:
    """Import Seoul OA-20300 "서울시 어린이집 정보(표준 데이터)" (62 columns) into ``facilities``.

    Also reads the 2025 redistribution whose coordinate columns are named ``위도``/``경도`` and whose
    우편번호 lost its leading zero (zero-padded back to 5 digits); the variant is detected from the header.
    Centres are keyed by 어린이집코드. Every status (정상/재개/휴지/폐지) is loaded; rows with an unknown
    어린이집유형 or an empty/unknown 운영현황 are skipped and reported.

    Parameters
    ----------
    engine
        Target database. With a ``Connection`` the import runs in a SAVEPOINT of the caller's transaction
        (the caller commits); with an ``Engine`` it is its own transaction.
    path
        The CSV file (UTF-8 with or without BOM, or cp949).
    progress
        Show a rich progress bar on stderr.
    snapshot
        ``"full"``: the file lists every centre of Seoul, so centres it does not list are marked ``unlisted``;
        ``"partial"``: an extract, nothing is inferred from absent centres; ``"auto"`` (default): full when
        the file lists closed (폐지) centres, as OA-20300 does and filtered extracts do not.
    limits
        Skip ratio and report bounds (``ImportLimits.from_settings``).

    Returns
    -------
    ImportResult
        Counts (inserted/updated/unchanged/skipped/flagged, enrollment changes) and the row-level report,
        also stored in ``import_runs``.

    Raises
    ------
    ImportFailed
        The file cannot be read or its header lacks required columns (named in the message and in
        ``extra["missing_columns"]``), is cut short, holds a NUL byte, or is mostly unusable rows; nothing
        is written.
    ImportRunning
        Another import is running.
    """
    return _import(engine, path, SEOUL_OA20300, progress=progress, default_data_date=None, snapshot=snapshot,
                   limits=limits)


def import_national_basic(engine: Engine | Connection, path: Path, *, progress: bool = False,
                          data_date: date | None = None, snapshot: str = "auto",
                          limits: ImportLimits = DEFAULT_LIMITS) -> ImportResult:
    """Import the national 보육정보공개 "어린이집 기본정보" export (24 columns) into ``facilities``.

    The format has no 어린이집코드, so each centre gets a derived key
    ``"NB-" + sha1("시도|시군구|어린이집명|인가일자")[:12]`` (see ``national_key``), stable across snapshots as
    long as those four fields do not change. When several rows share a key (the same name re-licensed on the
    same day, e.g. after a move) the first keeps it and later ones get ``"-" + sha1(주소)[:6]`` appended and
    are flagged; a row identical to an earlier one is skipped. The format has no 제공서비스 and no per-age
    figures: ``services`` is empty, ``opening_hours`` the standard hours and ``free_by_age`` only
    ``{"total": 정원 − 현원}``.

    Parameters
    ----------
    engine
        Target database (``Engine``, or a ``Connection`` whose transaction the caller commits).
    path
        The CSV file (UTF-8 with or without BOM, or cp949).
    progress
        Show a rich progress bar on stderr.
    data_date
        Reference date of the snapshot. The export carries it only in its file name
        (``...-기준일(20260630)``), so by default the first 8-digit date in the file name is used.
    snapshot, limits
        As for ``import_seoul_oa20300``; a full snapshot covers the 시도 named in the file.

    Raises
    ------
    ImportFailed
        The file cannot be read, lacks required columns, is cut short, holds a NUL byte or is mostly
        unusable rows; nothing is written.
    ImportRunning
        Another import is running.
    """
    return _import(engine, path, NATIONAL_BASIC, progress=progress,
                   default_data_date=data_date or date_from_file_name(path.name), snapshot=snapshot, limits=limits)



def _import(bind: Engine | Connection, path: Path, fmt: CsvFormat, *, progress: bool,
            default_data_date: date | None, snapshot: str, limits: ImportLimits) -> ImportResult:
    if snapshot not in SNAPSHOT_MODES:
        raise ImportFailed(f"snapshot must be one of {', '.join(SNAPSHOT_MODES)}, not {snapshot!r}")
    issues = _Issues()
    with open_csv(path, required=fmt.required(), coordinates=fmt.coordinates, kind=fmt.kind) as (
            header, reader, position), \
            import_run(bind, kind=fmt.kind, source_name=path.name, sha256=file_sha256(path), limits=limits,
                       progress=progress, total_bytes=path.stat().st_size) as run:
        conn, result = run.conn, run.result
        lat_col, lon_col = next((lat, lon) for lat, lon in fmt.coordinates if lat in header and lon in header)
        ctx = _Context(fmt, _Lookups.load(conn), issues, lat_col, lon_col, default_data_date)
        _create_staging(conn)
        raw = conn.connection.driver_connection
        assert raw is not None
        copy_sql = sql.SQL("COPY _childcare_staging ({}) FROM STDIN").format(
            sql.SQL(", ").join(sql.Identifier(name) for name, _ in _INPUT_COLUMNS))
        with raw.cursor() as cur, cur.copy(copy_sql) as copy:
            for number, values in data_rows(header, reader, name=path.name):
                result.rows_read += 1
                problem = field_count_problem(header, values)
                if problem:
                    issues.skip(number, None, None, problem)
                else:
                    staged = _parse_row(ctx, number, dict(zip(header, values, strict=True)))
                    if staged is not None:
                        copy.write_row(staged)
                if result.rows_read % 500 == 0:
                    run.bar.advance_to(position())
                    run.check_skip_ratio(len(issues.skips), result.rows_read)
        run.check_skip_ratio(len(issues.skips), result.rows_read)
        run.data_date = max(ctx.data_dates, default=None)
        run.coverage = sorted(ctx.sidos)
        if snapshot == "auto":
            # An extract of operating centres (such as the 2025 redistribution) lists no closed one; a full
            # snapshot of OA-20300 or the national export lists thousands.
            snapshot = "full" if ctx.statuses.get(FacilityStatus.closed) else "partial"
        run.snapshot = snapshot
        run.bar.step("locating centres")
        _locate(conn, fmt, lat_col=ctx.lat_col, lon_col=ctx.lon_col, issues=issues)
        run.bar.step("writing facilities")
        _upsert(conn, run, fmt, ctx, issues)
        issues.emit(result)
        conn.execute(text("DROP TABLE _childcare_staging"))
        # Fresh statistics, so that the planner picks the spatial indexes right after a bulk load.
        conn.execute(text("ANALYZE facilities"))
    return result


def _create_staging(conn: Connection) -> None:
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(sql_type))
        for name, sql_type in (*_INPUT_COLUMNS, *_DERIVED_COLUMNS))
    conn.execute(text("DROP TABLE IF EXISTS _childcare_staging"))
    conn.execute(composed(conn, sql.SQL("CREATE TEMP TABLE _childcare_staging ({}) ON COMMIT DROP").format(columns)))



def _cols(columns: tuple[str, ...], alias: str | None = None) -> sql.Composed:
    """``a.x, a.y`` (or ``x, y``) as quoted identifiers."""
    return sql.SQL(", ").join(sql.Identifier(alias, c) if alias else sql.Identifier(c) for c in columns)


def _upsert(conn: Connection, run: ImportRun, fmt: CsvFormat, ctx: _Context, issues: _Issues) -> None:
    """Compare staged rows with ``facilities`` and apply the snapshot (see the module docstring).

    Rows older than what is stored are not applied; centres first seen in a snapshot older than the newest
    full snapshot of their region are stored as ``unlisted``; a full snapshot marks the centres of its region
    that it no longer lists as ``unlisted``. Every change of 현원, 정원, 반수, enrolment by age or status goes
    to ``enrollment_changes``.
    """
    result = run.result
    conn.execute(text("UPDATE _childcare_staging s SET facility_id = f.id FROM facilities f WHERE f.code = s.code"))
    # An older snapshot never overwrites a newer one.
    stale = conn.execute(text("""
        SELECT s.row_number, s.code, s.data_date, f.data_date AS stored
        FROM _childcare_staging s JOIN facilities f ON f.id = s.facility_id
        WHERE s.data_date < f.data_date
    """)).all()
    for r in stale:
        issues.skip(r.row_number, r.code, None,
                    f"snapshot of {r.data_date} is older than the stored one of {r.stored}; not applied")
    if stale:
        conn.execute(text("DELETE FROM _childcare_staging WHERE row_number = ANY(:rows)"),
                     {"rows": [r.row_number for r in stale]})
    result.live_kept = _keep_live_figures(conn, run, issues)
    conn.execute(composed(conn, sql.SQL("""
        UPDATE _childcare_staging s SET
            changed = ROW({f_cols}) IS DISTINCT FROM ROW({s_cols}),
            history_changed = ROW({f_hist}) IS DISTINCT FROM ROW({s_hist})
        FROM facilities f WHERE f.id = s.facility_id
    """).format(f_cols=_cols(_FACILITY_COLUMNS, "f"), s_cols=_cols(_FACILITY_COLUMNS, "s"),
                f_hist=_cols(_HISTORY_COLUMNS, "f"), s_hist=_cols(_HISTORY_COLUMNS, "s"))))
    # Centres this file lists but a newer full snapshot of their region did not: no longer listed as of then
    # (a centre closed when last listed stays closed, as a full snapshot leaves it).
    conn.execute(text("""
        UPDATE _childcare_staging s SET unlisted_on = newest.data_date
        FROM (SELECT unnest(r.coverage) AS sido_name, max(r.data_date) AS data_date FROM import_runs r
              WHERE r.kind = :kind AND r.snapshot = 'full' AND r.id <> :run_id GROUP BY 1) newest
        WHERE s.facility_id IS NULL AND newest.sido_name = s.sido_name AND s.data_date < newest.data_date
          AND s.status <> :closed
    """), {"kind": fmt.kind, "run_id": run.run_id, "closed": FacilityStatus.closed.value})
    for r in conn.execute(text("SELECT row_number, code, data_date, unlisted_on FROM _childcare_staging "
                               "WHERE unlisted_on IS NOT NULL ORDER BY row_number")):
        issues.flag(r.row_number, r.code, fmt.status,
                    f"listed in this snapshot of {r.data_date} but not in the full snapshot of {r.unlisted_on} "
                    "already imported; stored as unlisted")
    history = _cols(_HISTORY_INSERT)
    result.enrollment_changes = conn.execute(composed(conn, sql.SQL("""
        INSERT INTO enrollment_changes (facility_id, import_run_id, observed_on, previous_data_date, {history})
        SELECT f.id, :run_id, s.data_date, f.data_date, {pairs}
        FROM _childcare_staging s JOIN facilities f ON f.id = s.facility_id
        WHERE s.history_changed
    """).format(history=history, pairs=_history_pairs("f", "s"))), {"run_id": run.run_id}).rowcount
    result.updated = conn.execute(composed(conn, sql.SQL("""
        UPDATE facilities f SET ({cols}, updated_at) = ({s_cols}, now())
        FROM _childcare_staging s WHERE s.facility_id = f.id AND s.changed
    """).format(cols=_cols(_FACILITY_COLUMNS), s_cols=_cols(_FACILITY_COLUMNS, "s")))).rowcount
    result.unchanged = conn.execute(text(
        "SELECT count(*) FROM _childcare_staging WHERE facility_id IS NOT NULL AND NOT changed")).scalar_one()
    result.inserted = conn.execute(composed(conn, sql.SQL("""
        INSERT INTO facilities (code, {cols})
        SELECT s.code, {s_cols} FROM _childcare_staging s WHERE s.facility_id IS NULL ORDER BY s.row_number
    """).format(cols=_cols(_FACILITY_COLUMNS), s_cols=_cols(_FACILITY_COLUMNS, "s")))).rowcount
    result.enrollment_changes += _unlist(conn, run, fmt, ctx)


def _keep_live_figures(conn: Connection, run: ImportRun, issues: _Issues) -> int:
    """Keep the figures of a staff report made after the snapshot's data date (from the next day 00:00 in
    ``SOURCE_TIME_ZONE`` on) instead of the snapshot's, record each differing figure in ``vacancy_conflicts``
    (both values) and flag the row. Returns the number of centres whose live figures were kept.

    The snapshot still gives everything a report does not (정원, status, address, ...); free places in total
    follow the new 정원: 정원 − the reported 현원.
    """
    conn.execute(text("""
        UPDATE _childcare_staging s SET live_report_id = r.id, live_reported_at = r.reported_at
        FROM (SELECT DISTINCT ON (v.facility_id) v.id, v.facility_id, v.reported_at FROM vacancy_reports v
              WHERE v.facility_id IN (SELECT facility_id FROM _childcare_staging WHERE facility_id IS NOT NULL)
              ORDER BY v.facility_id, v.reported_at DESC, v.id DESC) r
        WHERE r.facility_id = s.facility_id AND s.data_date IS NOT NULL
          AND r.reported_at >= ((s.data_date + 1)::timestamp AT TIME ZONE :tz)
    """), {"tz": SOURCE_TIME_ZONE})
    live = """
        SELECT s.row_number, s.facility_id, s.code, s.data_date, s.live_report_id, s.live_reported_at,
               to_jsonb(s.enrolled) AS s_enrolled, s.enrolled_by_age AS s_enrolled_by_age,
               s.free_by_age AS s_free_by_age, s.classes_by_age AS s_classes_by_age,
               to_jsonb(r.enrolled) AS l_enrolled, r.enrolled_by_age AS l_enrolled_by_age,
               r.free_by_age || jsonb_build_object('total', greatest(0, coalesce(s.capacity, 0) - r.enrolled))
                   AS l_free_by_age,
               coalesce(r.classes_by_age, s.classes_by_age) AS l_classes_by_age
        FROM _childcare_staging s JOIN vacancy_reports r ON r.id = s.live_report_id
    """
    pairs = sql.SQL(", ").join(
        sql.SQL("({}, {}, {})").format(sql.Literal(c), sql.Identifier(f"s_{c}"), sql.Identifier(f"l_{c}"))
        for c in _LIVE_COLUMNS)
    conn.execute(composed(conn, sql.SQL("""
        INSERT INTO vacancy_conflicts (facility_id, import_run_id, vacancy_report_id, field, snapshot_value,
                                       live_value, snapshot_date, reported_at)
        SELECT x.facility_id, :run_id, x.live_report_id, v.field, v.snapshot_value, v.live_value, x.data_date,
               x.live_reported_at
        FROM ({live}) x CROSS JOIN LATERAL (VALUES {pairs}) v(field, snapshot_value, live_value)
        WHERE v.snapshot_value IS DISTINCT FROM v.live_value
          AND NOT EXISTS (SELECT 1 FROM vacancy_conflicts c
                          WHERE c.facility_id = x.facility_id AND c.vacancy_report_id = x.live_report_id
                            AND c.field = v.field AND c.snapshot_date = x.data_date
                            AND c.snapshot_value IS NOT DISTINCT FROM v.snapshot_value)
        ORDER BY x.row_number, v.field
    """).format(live=sql.SQL(live), pairs=pairs)), {"run_id": run.run_id})
    rows = conn.execute(text(live + " ORDER BY s.row_number")).all()
    for r in rows:
        issues.flag(r.row_number, r.code, "live_report",
                    f"reported live at {r.live_reported_at.isoformat()}, after this snapshot of {r.data_date}: "
                    f"live figures kept (현원 {r.l_enrolled}, snapshot {r.s_enrolled}; see vacancy_conflicts)")
    conn.execute(composed(conn, sql.SQL("""
        UPDATE _childcare_staging s SET enrolled = x.l_enrolled::int, enrolled_by_age = x.l_enrolled_by_age,
            free_by_age = x.l_free_by_age, classes_by_age = x.l_classes_by_age
        FROM ({live}) x WHERE x.row_number = s.row_number
    """).format(live=sql.SQL(live))))
    return len(rows)


def _history_pairs(before: str, after: str) -> sql.Composed:
    """``before.enrolled, after.enrolled, ...`` in ``_HISTORY_INSERT`` order."""
    return sql.SQL(", ").join(sql.Identifier(alias, column) for column in _HISTORY_COLUMNS
                              for alias in (before, after))


def _unlist(conn: Connection, run: ImportRun, fmt: CsvFormat, ctx: _Context) -> int:
    """Mark as ``unlisted`` (with a history row) the centres that should be listed but are not: those first
    seen in this older snapshot (``unlisted_on``) and, for a full snapshot, the centres of its region that it
    does not list although nothing newer said otherwise. Returns the number of history rows written."""
    keep = [c for c in _HISTORY_COLUMNS if c != "status"]
    same = sql.SQL(", ").join(sql.Identifier("f", c) for c in keep for _ in range(2))
    figures = _cols(tuple(f"{c}_{when}" for c in keep for when in ("before", "after")))
    written = conn.execute(composed(conn, sql.SQL("""
        WITH late AS (
            SELECT f.id, s.data_date, s.unlisted_on, f.status
            FROM _childcare_staging s JOIN facilities f ON f.code = s.code
            WHERE s.unlisted_on IS NOT NULL
        ), history AS (
            INSERT INTO enrollment_changes (facility_id, import_run_id, observed_on, previous_data_date, {figures},
                                            status_before, status_after)
            SELECT f.id, :run_id, late.unlisted_on, late.data_date, {same}, late.status, :unlisted
            FROM late JOIN facilities f ON f.id = late.id
        )
        UPDATE facilities f SET status = :unlisted, data_date = late.unlisted_on
        FROM late WHERE f.id = late.id
    """).format(figures=figures, same=same)), {"run_id": run.run_id, "unlisted": FacilityStatus.unlisted.value})
    count = written.rowcount
    if run.snapshot != "full" or run.data_date is None:
        return count
    gone = conn.execute(composed(conn, sql.SQL("""
        WITH gone AS (
            SELECT f.id FROM facilities f
            WHERE f.source = :source AND f.sido_name = ANY(:coverage) AND f.data_date < :snapshot_date
              AND f.status <> ALL(:kept) AND f.code NOT IN (SELECT unnest(CAST(:listed AS text[])))
        ), history AS (
            INSERT INTO enrollment_changes (facility_id, import_run_id, observed_on, previous_data_date, {figures},
                                            status_before, status_after)
            SELECT f.id, :run_id, :snapshot_date, f.data_date, {same}, f.status, :unlisted
            FROM gone JOIN facilities f ON f.id = gone.id
        )
        UPDATE facilities f SET status = :unlisted, data_date = :snapshot_date, updated_at = now()
        FROM gone WHERE f.id = gone.id
    """).format(figures=figures, same=same)), {
        "run_id": run.run_id, "unlisted": FacilityStatus.unlisted.value, "source": fmt.source,
        "coverage": run.coverage, "snapshot_date": run.data_date, "listed": list(ctx.seen),
        # A centre already closed stays closed: that is what it was when last listed.
        "kept": [FacilityStatus.closed.value, FacilityStatus.unlisted.value],
    }).rowcount
    run.result.unlisted = count + gone
    return count + gone
