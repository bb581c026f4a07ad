"""Import results with a row-level report, shared by every importer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ImportResult:
    """Counts and row-level issues of one import.

    ``report`` holds one entry per skipped or flagged row:
    ``{"row": <1-based data row, header = row 1>, "code": ..., "column": ..., "action": "skipped"|"flagged",
    "reason": ...}``, at most ``report_limit`` entries per kind of issue (action and column, e.g.
    ``"skipped:운영현황"``); ``issue_counts`` counts every issue by kind, so the report stays small however bad
    the file is.
    """

    kind: str
    source_name: str
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    flagged: int = 0
    enrollment_changes: int = 0
    # Centres marked as no longer listed (see geo.ingest.childcare).
    unlisted: int = 0
    # Centres whose staff reported after the snapshot's data date: their live figures were kept (conflicts in
    # vacancy_conflicts, one "live_report" flag per row).
    live_kept: int = 0
    import_run_id: int | None = None
    report: list[dict[str, Any]] = field(default_factory=list)
    issue_counts: dict[str, int] = field(default_factory=dict)
    report_limit: int = 1000
    _flagged_rows: set[int] = field(default_factory=set, repr=False)

    def skip(self, row: int, reason: str, *, code: str | None = None, column: str | None = None) -> None:
        """Record a row that was not loaded."""
        self.skipped += 1
        self._add({"row": row, "code": code, "column": column, "action": "skipped", "reason": reason})

    def flag(self, row: int, reason: str, *, code: str | None = None, column: str | None = None) -> None:
        """Record a row that was loaded with a caveat (e.g. located by 법정동 centroid); counted once per row."""
        if row not in self._flagged_rows:
            self._flagged_rows.add(row)
            self.flagged += 1
        self._add({"row": row, "code": code, "column": column, "action": "flagged", "reason": reason})

    def _add(self, issue: dict[str, Any]) -> None:
        kind = f"{issue['action']}:{issue['column'] or '-'}"
        count = self.issue_counts[kind] = self.issue_counts.get(kind, 0) + 1
        if count <= self.report_limit:
            self.report.append(issue)

    def omitted(self) -> dict[str, int]:
        """Issues counted but left out of ``report``, by kind."""
        return {k: n - self.report_limit for k, n in self.issue_counts.items() if n > self.report_limit}

    def summary(self) -> str:
        """One line for the CLI."""
        return (f"{self.kind} {self.source_name}: {self.rows_read} rows, {self.inserted} inserted, "
                f"{self.updated} updated, {self.unchanged} unchanged, {self.skipped} skipped, "
                f"{self.flagged} flagged, {self.enrollment_changes} enrollment changes, {self.unlisted} unlisted, "
                f"{self.live_kept} live reports kept")
