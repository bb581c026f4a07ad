"""Loading official childcare (어린이집) lists: Seoul Open Data OA-20300 and the national 어린이집 기본정보 export.

Both importers stream the CSV (UTF-8 with or without BOM, else cp949) row by row with the ``csv`` module,
COPY the parsed rows into a temporary staging table and finish set-based in SQL: coordinates are checked
and, where unusable, replaced by a point inside the 법정동 (else the 시군구) named in the address; 시군구,
법정동 and 행정동 are filled by point-in-polygon; then ``facilities`` is upserted by code and every change of
현원, 정원, 반수 (classes by age), enrolment by age or status of an existing centre is written to
``enrollment_changes``.

Snapshots (each row dated by its 데이터기준일자; a snapshot is dated by its newest row) may come in any order with the
same state and the same history. Every import records what the snapshot said of each centre it lists
(``facility_observations``: status, 현원, 정원, classes and children by age). A centre's row follows its newest
listing (a row older than the newest one stored is not applied, but is an observation all the same); its status
and ``enrollment_changes`` are derived from its observations in snapshot order plus, after each observation, the
first *full* snapshot of its 시도 that did not list it (``unlisted`` from that snapshot's date, with a history
row; a centre closed when last listed stays closed). Partial snapshots (extracts) infer nothing from absent
centres. ``snapshot="auto"`` treats a file listing closed (폐지) centres as full.

Live reports win over older snapshots: a figure a centre's staff reported (``geo.vacancy.reports``) after a
snapshot's data date (from the next day 00:00 Asia/Seoul) is kept instead of the snapshot's (현원, children by
age, free places, and classes when reported); each differing figure is recorded with both values in
``vacancy_conflicts`` and the row is flagged (column ``live_report``). Everything a report does not give (정원,
status, address, ...) follows the snapshot.

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
from geo.designations.register import refresh_services
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
    ("is_new", "boolean"), ("unlisted_on", "date"),
    ("location_approximate", "boolean"), ("location_offset_m", "double precision"), ("live_report_id", "bigint"),
    ("live_reported_at", "timestamptz"),
)
# Figures a staff report gives (geo.vacancy.reports): a report made after a snapshot's data date wins over it.
_LIVE_COLUMNS: tuple[str, ...] = ("enrolled", "enrolled_by_age", "free_by_age", "classes_by_age")

# facilities columns written by the importers (all compared to decide updated vs unchanged).
_FACILITY_COLUMNS: tuple[str, ...] = (
    "name", "facility_type", "status", "sido_name", "sigungu_name", "district_code", "admin_dong_id",
    "legal_dong_code", "postal_code", "address", "phone", "fax", "homepage", "rooms", "room_area_m2",
    "playgrounds", "cctv_count", "staff_count", "staff_by_role", "has_bus", "capacity", "enrolled",
    "classes_by_age", "enrolled_by_age", "free_by_age", "services_imported", "opening_hours", "approved_on",
    "suspended_from", "suspended_until", "closed_on", "data_date", "geocode_quality", "source", "geom_4326",
    "location_approximate", "location_offset_m",
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
        _locate(conn, fmt, lat_col=ctx.lat_col, lon_col=ctx.lon_col, issues=issues,
                exact_max_m=limits.location_exact_max_m)
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
    """Record what the snapshot says of each centre, apply it to ``facilities`` and derive status and history
    (see the module docstring).

    Every staged row becomes an observation (``facility_observations``: what this snapshot said of the centre).
    The current row of a centre follows its newest listing (rows older than what is stored are not applied);
    its status and ``enrollment_changes`` are then derived from its observations in data-date order and from the
    full snapshots of its region that did not list it (``_derive``), so that any import order gives the same
    state and the same history.
    """
    result = run.result
    # The run's date, kind and coverage, read by _derive with those of earlier runs.
    conn.execute(text("UPDATE import_runs SET data_date = :d, snapshot = :s, coverage = :c WHERE id = :id"),
                 {"d": run.data_date, "s": run.snapshot, "c": run.coverage, "id": run.run_id})
    conn.execute(text("UPDATE _childcare_staging s SET facility_id = f.id FROM facilities f WHERE f.code = s.code"))
    inserted = conn.execute(composed(conn, sql.SQL("""
        WITH new AS (
            INSERT INTO facilities (code, {cols})
            SELECT s.code, {s_cols} FROM _childcare_staging s WHERE s.facility_id IS NULL ORDER BY s.row_number
            RETURNING id, code
        )
        UPDATE _childcare_staging s SET facility_id = new.id, is_new = true
        FROM new WHERE new.code = s.code
    """).format(cols=_cols(_FACILITY_COLUMNS), s_cols=_cols(_FACILITY_COLUMNS, "s")))).rowcount
    result.inserted = inserted
    _observe(conn, run, fmt)
    touched = conn.execute(text("SELECT facility_id FROM _childcare_staging")).scalars().all()
    # An older listing never overwrites a newer one (it is in the history all the same).
    stale = conn.execute(text("""
        SELECT s.row_number, s.code, s.data_date, coalesce(newest.data_date, f.data_date) AS stored
        FROM _childcare_staging s JOIN facilities f ON f.id = s.facility_id
        CROSS JOIN LATERAL (SELECT max(o.data_date) AS data_date FROM facility_observations o
                            WHERE o.facility_id = s.facility_id AND o.source = :source) newest
        WHERE s.data_date < coalesce(newest.data_date, f.data_date) AND s.is_new IS NULL
    """), {"source": fmt.source}).all()
    for r in stale:
        issues.skip(r.row_number, r.code, None,
                    f"snapshot of {r.data_date} is older than the stored one of {r.stored}; not applied (kept in "
                    "the history)")
    if stale:
        conn.execute(text("DELETE FROM _childcare_staging WHERE row_number = ANY(:rows)"),
                     {"rows": [r.row_number for r in stale]})
    result.live_kept = _keep_live_figures(conn, run, issues)
    # A centre that a full snapshot of its region newer than this listing did not list is unlisted as of the first
    # such snapshot (a centre closed when last listed stays closed, as a full snapshot leaves it).
    conn.execute(text("""
        UPDATE _childcare_staging s SET unlisted_on = (
            SELECT min(r.data_date) FROM import_runs r
            WHERE r.kind = :kind AND r.snapshot = 'full' AND s.sido_name = ANY(r.coverage) AND r.id <> :run_id
              AND r.data_date > (SELECT max(o.snapshot_date) FROM facility_observations o
                                 WHERE o.facility_id = s.facility_id AND o.source = :source))
        WHERE s.status <> :closed
    """), {"kind": fmt.kind, "closed": FacilityStatus.closed.value, "run_id": run.run_id, "source": fmt.source})
    unlisted = conn.execute(text("""
        SELECT s.row_number, s.code, s.data_date, s.unlisted_on, f.status <> :unlisted AS moved
        FROM _childcare_staging s JOIN facilities f ON f.id = s.facility_id
        WHERE s.unlisted_on IS NOT NULL ORDER BY s.row_number
    """), {"unlisted": FacilityStatus.unlisted.value}).all()
    for r in unlisted:
        issues.flag(r.row_number, r.code, fmt.status,
                    f"listed in this snapshot of {r.data_date} but not in the full snapshot of {r.unlisted_on} "
                    "already imported; stored as unlisted")
    result.unlisted = sum(1 for r in unlisted if r.moved)
    conn.execute(text("UPDATE _childcare_staging SET status = :unlisted, data_date = unlisted_on "
                      "WHERE unlisted_on IS NOT NULL"), {"unlisted": FacilityStatus.unlisted.value})
    conn.execute(composed(conn, sql.SQL("""
        UPDATE _childcare_staging s SET changed = ROW({f_cols}) IS DISTINCT FROM ROW({s_cols})
        FROM facilities f WHERE f.id = s.facility_id
    """).format(f_cols=_cols(_FACILITY_COLUMNS, "f"), s_cols=_cols(_FACILITY_COLUMNS, "s"))))
    conn.execute(composed(conn, sql.SQL("""
        UPDATE facilities f SET ({cols}, updated_at) = ({s_cols}, now())
        FROM _childcare_staging s WHERE s.facility_id = f.id AND s.changed
    """).format(cols=_cols(_FACILITY_COLUMNS), s_cols=_cols(_FACILITY_COLUMNS, "s"))))
    result.updated, result.unchanged = conn.execute(text(
        "SELECT count(*) FILTER (WHERE changed), count(*) FILTER (WHERE NOT changed) FROM _childcare_staging "
        "WHERE is_new IS NULL")).one()
    _derive(conn, run, fmt, touched=list(touched))
    # The effective services: the official ones and the designations (an import never removes a designation).
    refresh_services(conn, facility_ids=list(touched))


def _observe(conn: Connection, run: ImportRun, fmt: CsvFormat) -> None:
    """What this snapshot (dated by its newest row, ``run.data_date``) says of each centre it lists: one observation
    per centre, source and snapshot date, with the row's own date (a re-import of the same snapshot replaces its
    observations with the same values)."""
    if run.data_date is None:
        return
    conn.execute(text("""
        INSERT INTO facility_observations (facility_id, source, snapshot_date, data_date, import_run_id, sido_name,
                                           status, enrolled, capacity, enrolled_by_age, classes_by_age)
        SELECT s.facility_id, :source, :snapshot_date, s.data_date, :run_id, s.sido_name, s.status, s.enrolled,
               s.capacity, s.enrolled_by_age, s.classes_by_age
        FROM _childcare_staging s
        ORDER BY s.row_number
        ON CONFLICT (facility_id, source, snapshot_date) DO UPDATE SET
            data_date = EXCLUDED.data_date, sido_name = EXCLUDED.sido_name, status = EXCLUDED.status,
            enrolled = EXCLUDED.enrolled, capacity = EXCLUDED.capacity, enrolled_by_age = EXCLUDED.enrolled_by_age,
            classes_by_age = EXCLUDED.classes_by_age
    """), {"source": fmt.source, "snapshot_date": run.data_date, "run_id": run.run_id})


# The states of a centre in snapshot order: each observation (dated by its row), and after an observation the
# first full snapshot of its region (before the next observation) that did not list it, as ``unlisted`` with the
# figures last observed (a centre closed when last listed stays closed). :ids are the centres to derive.
_STATES_SQL = """
    WITH runs AS (
        SELECT r.data_date, min(r.id) AS run_id, r.coverage FROM import_runs r
        WHERE r.kind = :kind AND r.snapshot = 'full' AND r.data_date IS NOT NULL
        GROUP BY r.data_date, r.coverage
    ), obs AS (
        SELECT o.facility_id, o.snapshot_date, o.data_date, o.status, o.enrolled, o.capacity, o.enrolled_by_age,
               o.classes_by_age, o.import_run_id, o.sido_name,
               lead(o.snapshot_date) OVER (PARTITION BY o.facility_id ORDER BY o.snapshot_date) AS next_snapshot
        FROM facility_observations o WHERE o.facility_id = ANY(:ids) AND o.source = :source
    )
    SELECT obs.facility_id, obs.snapshot_date AS sort_date, obs.data_date, obs.status, obs.enrolled, obs.capacity,
           obs.enrolled_by_age, obs.classes_by_age, obs.import_run_id
    FROM obs
    UNION ALL
    SELECT obs.facility_id, gap.data_date, gap.data_date, :unlisted, obs.enrolled, obs.capacity,
           obs.enrolled_by_age, obs.classes_by_age, gap.run_id
    FROM obs CROSS JOIN LATERAL (
        SELECT runs.data_date, runs.run_id FROM runs
        WHERE obs.sido_name = ANY(runs.coverage) AND runs.data_date > obs.snapshot_date
          AND (obs.next_snapshot IS NULL OR runs.data_date < obs.next_snapshot)
        ORDER BY runs.data_date, runs.run_id LIMIT 1) gap
    WHERE obs.status <> :closed
"""


def _derive(conn: Connection, run: ImportRun, fmt: CsvFormat, *, touched: list[int]) -> None:
    """Status, data date and history (``enrollment_changes``) of the centres this import concerns, from their
    observations in data-date order (``_STATES_SQL``); the history is brought to the derived rows (rows already
    there are kept, others removed or added), so re-importing changes nothing."""
    result = run.result
    ids = conn.execute(text("""
        SELECT unnest(CAST(:touched AS integer[]))
        UNION
        SELECT f.id FROM facilities f
        WHERE :full AND f.source = :source AND f.sido_name = ANY(:coverage)
          AND EXISTS (SELECT 1 FROM facility_observations o WHERE o.facility_id = f.id)
    """), {"touched": touched, "full": run.snapshot == "full", "source": fmt.source,
           "coverage": run.coverage or []}).scalars().all()
    params = {"ids": list(ids), "kind": fmt.kind, "source": fmt.source,
              "unlisted": FacilityStatus.unlisted.value, "closed": FacilityStatus.closed.value}
    conn.execute(text("DROP TABLE IF EXISTS _childcare_states"))
    conn.execute(text("CREATE TEMP TABLE _childcare_states ON COMMIT DROP AS " + _STATES_SQL), params)
    # The current status and data date: those of the newest state (a listing or an absence from a full snapshot).
    unlisted = conn.execute(text("""
        WITH newest AS (
            SELECT DISTINCT ON (facility_id) facility_id, data_date, status FROM _childcare_states
            ORDER BY facility_id, sort_date DESC
        ), moved AS (
            UPDATE facilities f SET status = n.status, data_date = n.data_date, updated_at = now()
            FROM newest n
            WHERE f.id = n.facility_id AND (f.status, f.data_date) IS DISTINCT FROM (n.status, n.data_date)
              AND (n.status = :unlisted OR f.status = :unlisted)
              AND f.id NOT IN (SELECT facility_id FROM _childcare_staging WHERE facility_id IS NOT NULL)
            RETURNING f.id, f.status
        )
        SELECT id FROM moved WHERE status = :unlisted
    """), params).scalars().all()
    result.unlisted += len(unlisted)
    history = _cols(_HISTORY_INSERT)
    same = sql.SQL(" AND ").join(
        sql.SQL("e.{c} IS NOT DISTINCT FROM d.{c}").format(c=sql.Identifier(c))
        for c in ("observed_on", "previous_data_date", *_HISTORY_INSERT))
    conn.execute(text("DROP TABLE IF EXISTS _childcare_derived"))
    conn.execute(composed(conn, sql.SQL("""
        CREATE TEMP TABLE _childcare_derived ON COMMIT DROP AS
        SELECT facility_id, import_run_id, data_date AS observed_on, previous_data_date, {history}
        FROM (
            SELECT t.*, lag(t.data_date) OVER w AS previous_data_date,
                   {lags}
            FROM _childcare_states t WINDOW w AS (PARTITION BY t.facility_id ORDER BY t.sort_date)
        ) x
        WHERE previous_data_date IS NOT NULL
          AND ROW({befores}) IS DISTINCT FROM ROW({afters})
    """).format(
        history=history,
        lags=sql.SQL(", ").join(
            sql.SQL("lag(t.{c}) OVER w AS {b}, t.{c} AS {a}").format(
                c=sql.Identifier(c), b=sql.Identifier(f"{c}_before"), a=sql.Identifier(f"{c}_after"))
            for c in _HISTORY_COLUMNS),
        befores=_cols(tuple(f"{c}_before" for c in _HISTORY_COLUMNS)),
        afters=_cols(tuple(f"{c}_after" for c in _HISTORY_COLUMNS)))))
    conn.execute(composed(conn, sql.SQL("""
        DELETE FROM enrollment_changes e WHERE e.facility_id = ANY(:ids)
          AND NOT EXISTS (SELECT 1 FROM _childcare_derived d WHERE d.facility_id = e.facility_id AND {same})
    """).format(same=same)), params)
    result.enrollment_changes = conn.execute(composed(conn, sql.SQL("""
        INSERT INTO enrollment_changes (facility_id, import_run_id, observed_on, previous_data_date, {history})
        SELECT d.facility_id, d.import_run_id, d.observed_on, d.previous_data_date, {d_history}
        FROM _childcare_derived d
        WHERE NOT EXISTS (SELECT 1 FROM enrollment_changes e WHERE e.facility_id = d.facility_id AND {same})
        ORDER BY d.facility_id, d.observed_on
    """).format(history=history, d_history=_cols(_HISTORY_INSERT, "d"), same=same))).rowcount
    conn.execute(text("DROP TABLE _childcare_states"))
    conn.execute(text("DROP TABLE _childcare_derived"))


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
