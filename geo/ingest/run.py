"""The one way every importer runs: an import lock, one transaction, an ``import_runs`` row, a progress bar and a
bounded report.

``import_run`` is used by the childcare, population, boundary, OSM and default-data importers alike::

    with import_run(engine, kind="mois_population", source_name=path.name, sha256=file_sha256(path),
                    limits=limits, progress=progress) as run:
        run.conn.execute(...)          # everything inside one transaction
        run.result.skip(row, "why")    # bounded report, counted by kind
        run.bar.step("writing")        # progress on stderr (CLI), nothing otherwise

* Only one import runs at a time (``pg_try_advisory_xact_lock``): a second one fails at once with
  ``ImportRunning`` ("an import is running") instead of racing the first into a unique violation.
* The ``import_runs`` row is inserted when the run starts and completed (counts, report, ``finished_at``)
  at its end, in the same transaction: a failed import leaves no row and no data.
* JSONB values are written one way: the psycopg ``Jsonb`` adapter (``jsonb``), in bound parameters and COPY.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from psycopg.types.json import Jsonb
from sqlalchemy import Connection, Engine, text

from geo.errors import ImportFailed, ImportRunning
from geo.ingest.report import ImportResult

if TYPE_CHECKING:
    from geo.settings import Settings

# Key of the advisory lock every import takes (the bytes of "dolbom.i").
IMPORT_LOCK_KEY = 0x646F6C626F6D2E69


@dataclass(frozen=True)
class ImportLimits:
    """Bounds of one import.

    Attributes
    ----------
    max_skip_ratio
        Stop (and write nothing) once more than this share of the data rows read so far was skipped as
        unusable, after ``min_rows_for_ratio`` rows: a file that is mostly not what it claims to be.
    min_rows_for_ratio
        Rows read before the skip ratio is enforced (a short file with a few bad rows is not junk).
    report_per_kind
        Issues kept in the report per kind (action + column); every issue is still counted.
    location_exact_max_m
        A centre placed farther than this (metres) from its published point, or without a usable one, has an
        approximate location (``facilities.location_approximate``).
    """

    max_skip_ratio: float = 0.5
    min_rows_for_ratio: int = 200
    report_per_kind: int = 1000
    location_exact_max_m: float = 150.0

    @classmethod
    def from_settings(cls, settings: Settings) -> ImportLimits:
        """The limits configured in ``settings`` (``DOLBOM_IMPORT_MAX_SKIP_RATIO``,
        ``DOLBOM_IMPORT_MIN_ROWS_FOR_RATIO``, ``DOLBOM_IMPORT_REPORT_PER_KIND``,
        ``DOLBOM_IMPORT_LOCATION_EXACT_MAX_M``)."""
        return cls(max_skip_ratio=settings.imports.max_skip_ratio,
                   min_rows_for_ratio=settings.imports.min_rows_for_ratio,
                   report_per_kind=settings.imports.report_per_kind,
                   location_exact_max_m=settings.imports.location_exact_max_m)


DEFAULT_LIMITS = ImportLimits()


def jsonb(value: Any) -> Jsonb | None:
    """A JSONB parameter (None stays SQL NULL): the one way importers write JSON."""
    return None if value is None else Jsonb(value)



class Progress:
    """A rich progress bar on stderr, or nothing."""

    def __init__(self, enabled: bool, label: str, total: int | None = None) -> None:
        self.bar: Any = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

            columns: list[Any] = [TextColumn("{task.description}"), BarColumn()]
            if total:
                columns.append(DownloadColumn())
            self.bar = Progress(*columns, TimeElapsedColumn(), console=Console(stderr=True), transient=True)
            self.bar.start()
            self.task = self.bar.add_task(label, total=total)

    def advance_to(self, position: int) -> None:
        """Set the position reached (bytes read)."""
        if self.bar is not None:
            self.bar.update(self.task, completed=position)

    def step(self, description: str) -> None:
        """Name the current step."""
        if self.bar is not None:
            self.bar.update(self.task, description=description)

    def stop(self) -> None:
        """Remove the bar."""
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


@dataclass
class ImportRun:
    """An import in progress: its connection (inside the transaction), result, limits and progress bar."""

    conn: Connection
    result: ImportResult
    limits: ImportLimits
    bar: Progress
    run_id: int
    data_date: date | None = None
    snapshot: str | None = None
    coverage: list[str] | None = None

    def check_skip_ratio(self, skipped: int, rows_read: int, *, what: str = "rows") -> None:
        """Raise ``ImportFailed`` when too many of the rows read so far were skipped (see ``ImportLimits``)."""
        if rows_read >= self.limits.min_rows_for_ratio and skipped > self.limits.max_skip_ratio * rows_read:
            raise ImportFailed(
                f"{self.result.source_name}: {skipped} of the first {rows_read} {what} are unusable (more than "
                f"{self.limits.max_skip_ratio:.0%}); not a {self.result.kind} file? Nothing was written",
                skipped=skipped, rows_read=rows_read)


@contextmanager
def _transaction(bind: Engine | Connection) -> Iterator[Connection]:
    if isinstance(bind, Connection):
        with bind.begin_nested():
            yield bind
    else:
        with bind.begin() as conn:
            yield conn


@contextmanager
def import_run(bind: Engine | Connection, *, kind: str, source_name: str, sha256: str,
               limits: ImportLimits = DEFAULT_LIMITS, progress: bool = False,
               total_bytes: int | None = None) -> Iterator[ImportRun]:
    """Run an import: take the import lock, open one transaction, record it in ``import_runs``.

    Parameters
    ----------
    bind
        ``Engine`` (the import is its own transaction) or ``Connection`` (a SAVEPOINT of the caller's
        transaction; the caller commits).
    kind, source_name, sha256
        What is imported (``import_runs.kind``), from which file, and the file's SHA-256.
    limits
        Skip ratio and report bounds.
    progress
        Show a progress bar on stderr (``total_bytes``: the file size, for a byte counter).

    Raises
    ------
    ImportRunning
        Another import holds the lock; nothing is written.
    """
    result = ImportResult(kind=kind, source_name=source_name, report_limit=limits.report_per_kind)
    bar = Progress(progress, f"reading {source_name}", total_bytes)
    try:
        with _transaction(bind) as conn:
            locked = conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"),
                                  {"key": IMPORT_LOCK_KEY}).scalar_one()
            if not locked:
                raise ImportRunning(f"{source_name}: an import is running; try again when it has finished")
            run_id = conn.execute(
                text("INSERT INTO import_runs (kind, source_name, sha256, rows_read, inserted, updated, unchanged, "
                     "skipped, flagged) VALUES (:kind, :name, :sha, 0, 0, 0, 0, 0, 0) RETURNING id"),
                {"kind": kind, "name": source_name, "sha": sha256},
            ).scalar_one()
            result.import_run_id = run_id
            run = ImportRun(conn=conn, result=result, limits=limits, bar=bar, run_id=run_id)
            yield run
            conn.execute(
                text("""
                    UPDATE import_runs SET data_date = :data_date, rows_read = :rows_read, inserted = :inserted,
                        updated = :updated, unchanged = :unchanged, skipped = :skipped, flagged = :flagged,
                        report = :report, issue_counts = :issue_counts, snapshot = :snapshot,
                        coverage = :coverage, finished_at = clock_timestamp()
                    WHERE id = :id
                """),
                {"id": run_id, "data_date": run.data_date, "rows_read": result.rows_read,
                 "inserted": result.inserted, "updated": result.updated, "unchanged": result.unchanged,
                 "skipped": result.skipped, "flagged": result.flagged, "report": jsonb(result.report),
                 "issue_counts": jsonb(result.issue_counts), "snapshot": run.snapshot,
                 "coverage": run.coverage},
            )
    finally:
        bar.stop()
