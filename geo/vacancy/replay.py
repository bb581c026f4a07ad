"""Replay the changes between two OA-20300 snapshots through the vacancy report API, as a stream of reports.

The centres whose 현원, 정원 or children by age differ between the snapshots (2026-07-01 -> 2026-07-21: 1,515)
are reported with the newer snapshot's figures: children by class group (아동수-*), class counts (반수-*) and
free places by age estimated as ``geo.domain.free_places_by_age`` does. Each report is an HTTP POST to
``/vacancy/centres/{code}/reports`` (so it is validated, audited and pushed like a staff report); reports the
API refuses are counted by the field it names.
"""

from __future__ import annotations

import csv
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from geo.domain import free_places_by_age
from geo.ingest.childcare import CHILD_COLUMNS, CLASS_COLUMNS
from geo.ingest.csvio import detect_encoding


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding=detect_encoding(path), newline="") as fh:
        return {r["어린이집코드"]: r for r in csv.DictReader(fh)}


def _int(value: str | None) -> int:
    try:
        return int(float(value or 0))
    except ValueError:
        return 0


def changed_reports(old_path: Path, new_path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(code, report body) for every centre in both snapshots whose 현원, 정원 or 아동수-* changed, in code order."""
    old, new = _rows(old_path), _rows(new_path)
    keys = ["현원", "정원", *CHILD_COLUMNS.values()]
    out = []
    for code in sorted(set(old) & set(new)):
        o, n = old[code], new[code]
        if all(o.get(k) == n.get(k) for k in keys):
            continue
        enrolled = {g: _int(n.get(col)) for g, col in CHILD_COLUMNS.items()}
        classes = {g: _int(n.get(col)) for g, col in CLASS_COLUMNS.items()}
        free = free_places_by_age(classes, enrolled, capacity=_int(n.get("정원")), enrolled=_int(n.get("현원")))
        out.append((code, {"enrolled_by_age": enrolled, "classes_by_age": classes,
                           "free_by_age": {a: free[a] for a in ("0", "1", "2", "3", "4", "5")}}))
    return out


@dataclass
class ReplayResult:
    """Outcome of a replay: reports sent, accepted (with their event ids), refused by status and field."""

    sent: int = 0
    accepted: int = 0
    event_ids: list[int] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        """One line for the CLI."""
        refused = ", ".join(f"{k}: {v}" for k, v in self.refused.most_common()) or "none"
        return f"{self.sent} reports sent, {self.accepted} accepted, refused: {refused}"


def replay(client: httpx.Client, reports: list[tuple[str, dict[str, Any]]], *, token: str,
           concurrency: int = 4) -> ReplayResult:
    """POST every report with ``token`` (a city admin's or the centres' staff's) through ``client``."""
    result = ReplayResult()
    headers = {"Authorization": f"Bearer {token}"}

    def send(item: tuple[str, dict[str, Any]]) -> tuple[int, Any]:
        code, body = item
        resp = client.post(f"/vacancy/centres/{code}/reports", json=body, headers=headers)
        try:
            return resp.status_code, resp.json()
        except ValueError:
            return resp.status_code, {}

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for status, body in pool.map(send, reports):
            result.sent += 1
            if status == 201:
                result.accepted += 1
                result.event_ids.append(int(body["seq"]))
            else:
                result.refused[f"{status} {body.get('param') or body.get('title') or ''}".strip()] += 1
    return result
