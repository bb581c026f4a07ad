"""Import results with a row-level report, shared by every importer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ImportResult:
    """Counts and row-level issues of one import.

    ``report`` holds one entry per skipped or flagged row:
    ``{"row": <1-based data row, header = row 1>, "code": ..., "column": ..., "action": "skipped"|"flagged",
    "reason": ...}``.
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
    import_run_id: int | None = None
    report: list[dict[str, Any]] = field(default_factory=list)
    _flagged_rows: set[int] = field(default_factory=set, repr=False)

    def skip(self, row: int, reason: str, *, code: str | None = None, column: str | None = None) -> None:
        """Record a row that was not loaded."""
        self.skipped += 1
        self.report.append({"row": row, "code": code, "column": column, "action": "skipped", "reason": reason})

    def flag(self, row: int, reason: str, *, code: str | None = None, column: str | None = None) -> None:
        """Record a row that was loaded with a caveat (e.g. located by 법정동 centroid); counted once per row."""
        if row not in self._flagged_rows:
            self._flagged_rows.add(row)
            self.flagged += 1
        self.report.append({"row": row, "code": code, "column": column, "action": "flagged", "reason": reason})

    def summary(self) -> str:
        """One line for the CLI."""
        return (f"{self.kind} {self.source_name}: {self.rows_read} rows, {self.inserted} inserted, "
                f"{self.updated} updated, {self.unchanged} unchanged, {self.skipped} skipped, "
                f"{self.flagged} flagged, {self.enrollment_changes} enrollment changes")
