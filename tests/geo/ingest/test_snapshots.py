"""Snapshot semantics and hardened input of the importers, on the real OA-20300 files.

Expectations are computed here from the CSV files with the ``csv`` module, independently of ``geo.ingest``.
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from geo.domain import free_places_by_age
from geo.errors import ImportFailed, ImportRunning
from geo.ingest.childcare import import_seoul_oa20300
from geo.ingest.population import import_mois_population
from geo.ingest.run import ImportLimits

F0721 = "seoul_childcare_OA-20300_20260721_full.csv"
F0701 = "seoul_childcare_OA-20300_20260701_full.csv"
F2022 = "seoul_childcare_OA-20300_20221026_full.csv"
F2025 = "seoul_childcare_active_20250219.csv"
STATUS = {"정상": "active", "재개": "reopened", "휴지": "suspended", "폐지": "closed"}
OPERATING = {"정상", "재개"}


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return {r["어린이집코드"]: r for r in csv.DictReader(fh)}


def _state(engine: Engine) -> dict[str, tuple]:
    with engine.connect() as conn:
        return {r.code: tuple(r[1:]) for r in conn.execute(text(
            "SELECT code, status, data_date, enrolled, classes_by_age FROM facilities"))}


# ---------------------------------------------------------------------------------------------------------------
# Snapshots: newest first, then the 2022 file; and the 2022 file first, then the newer ones


@pytest.fixture(scope="module")
def newest_first(make_database, shared_data: Path) -> Engine:
    # A copy of the state (shared with test_snapshot_order): these tests check the state, not the imports.
    return make_database("snap_newest_first", snapshots=("0701", "0721", "2022"))


@pytest.fixture(scope="module")
def oldest_first(make_database, shared_data: Path) -> Engine:
    return make_database("snap_oldest_first", snapshots=("2022", "0701", "0721"))


def test_older_snapshot_brings_no_centre_back_as_operating(newest_first: Engine, shared_data: Path) -> None:
    new = _rows(shared_data / "childcare" / F0721)
    old = _rows(shared_data / "childcare" / F2022)
    # The centres that the 2022 file lists as operating but the 2026 file no longer lists at all.
    gone = {c for c, r in old.items() if c not in new and r["운영현황"] in STATUS and r["운영현황"] != "폐지"}
    assert len({c for c in gone if old[c]["운영현황"] in OPERATING}) == 112
    state = _state(newest_first)
    operating = {c for c, s in state.items() if s[0] in ("active", "reopened")}
    assert operating == {c for c, r in new.items() if r["운영현황"] in OPERATING}
    assert {c for c, s in state.items() if s[0] == "unlisted"} == gone
    # Unlisted as of the first full snapshot after the 2022 one that no longer lists them (07-01 when it does not,
    # else 07-21), whatever the import order (here 07-01, 07-21, then 2022).
    middle = _rows(shared_data / "childcare" / F0701)
    unlisted_on = {c: date(2026, 7, 21) if c in middle else date(2026, 7, 1) for c in gone}
    assert {c: state[c][1] for c in gone} == unlisted_on
    with newest_first.connect() as conn:
        history = {r.code: r for r in conn.execute(text("""
            SELECT f.code, e.status_before, e.status_after, e.observed_on, e.previous_data_date
            FROM enrollment_changes e JOIN facilities f ON f.id = e.facility_id
            WHERE e.status_after = 'unlisted'"""))}
        runs = conn.execute(text("SELECT snapshot, coverage, data_date FROM import_runs "
                                 "WHERE kind = 'seoul_oa20300' ORDER BY id")).all()
    assert set(history) == gone
    for code, h in history.items():
        last = middle[code] if code in middle else old[code]
        assert h.status_before == STATUS[last["운영현황"]]
        assert (h.observed_on, h.previous_data_date) == (unlisted_on[code],
                                                         date.fromisoformat(last["데이터기준일자"]))
    assert [tuple(r) for r in runs] == [("full", ["서울특별시"], date(2026, 7, 1)),
                                        ("full", ["서울특별시"], date(2026, 7, 21)),
                                        ("full", ["서울특별시"], date(2022, 10, 26))]


def test_snapshot_order_does_not_matter(newest_first: Engine, oldest_first: Engine) -> None:
    newest, oldest = _state(newest_first), _state(oldest_first)
    assert set(newest) == set(oldest)
    assert newest == oldest


def test_full_snapshot_records_centres_no_longer_listed(oldest_first: Engine, shared_data: Path) -> None:
    # The first full snapshot after 2022 (07-01) no longer lists them; 07-21 lists no centre 07-01 does not.
    new = _rows(shared_data / "childcare" / F0701)
    old = _rows(shared_data / "childcare" / F2022)
    with oldest_first.connect() as conn:
        run = conn.execute(text("SELECT id FROM import_runs WHERE source_name = :n"), {"n": F0701}).scalar_one()
        unlisted = dict(conn.execute(text("""
            SELECT f.code, e.status_before FROM enrollment_changes e JOIN facilities f ON f.id = e.facility_id
            WHERE e.import_run_id = :run AND e.status_after = 'unlisted'"""), {"run": run}).all())
    # Listed (not closed) in 2022, absent in 2026: unlisted with their last listed status in the history;
    # centres closed (폐지) when last listed stay closed.
    expected = {c: STATUS[r["운영현황"]] for c, r in old.items()
                if c not in new and r["운영현황"] in STATUS and r["운영현황"] != "폐지"}
    assert unlisted == expected


def test_class_counts_changes_are_history(newest_first: Engine, shared_data: Path) -> None:
    old = _rows(shared_data / "childcare" / F0701)
    new = _rows(shared_data / "childcare" / F0721)
    groups = ["만0세", "만1세", "만2세", "만3세", "만4세", "만5세", "영아혼합(만0~2세)", "유아혼합(만3~5세)",
              "특수장애"]
    classes = [f"반수-{g}" for g in groups]
    others = ["현원", "정원", "운영현황", *[f"아동수-{g}" for g in groups]]
    only_classes = {c for c in new if c in old and new[c]["운영현황"] in STATUS and old[c]["운영현황"] in STATUS
                    and any(old[c][k] != new[c][k] for k in classes)
                    and all(old[c][k] == new[c][k] for k in others)}
    assert only_classes
    with newest_first.connect() as conn:
        run = conn.execute(text("SELECT id FROM import_runs WHERE source_name = :n"), {"n": F0721}).scalar_one()
        rows = {r.code: r for r in conn.execute(text("""
            SELECT f.code, e.classes_by_age_before, e.classes_by_age_after FROM enrollment_changes e
            JOIN facilities f ON f.id = e.facility_id WHERE e.import_run_id = :run"""), {"run": run})}
    assert only_classes <= set(rows)
    for code in only_classes:
        assert rows[code].classes_by_age_before != rows[code].classes_by_age_after


def test_extract_of_operating_centres_is_partial(make_database, shared_data: Path) -> None:
    engine = make_database("snap_partial", snapshots=("2022",))  # the import checked is the extract's
    before = _state(engine)
    result = import_seoul_oa20300(engine, shared_data / "childcare" / F2025)
    after = _state(engine)
    extract = _rows(shared_data / "childcare" / F2025)
    assert result.unlisted == 0
    # Centres missing from the extract keep what the 2022 snapshot said.
    assert {c: s for c, s in after.items() if c not in extract} == {c: s for c, s in before.items()
                                                                   if c not in extract}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT snapshot FROM import_runs WHERE source_name = :n"),
                            {"n": F2025}).scalar_one() == "partial"


# ---------------------------------------------------------------------------------------------------------------
# Free places: mixed infant classes at the 0-year-old ratio


def test_mixed_infant_classes_counted_at_one_to_three(seoul_engine: Engine, shared_data: Path) -> None:
    rows = _rows(shared_data / "childcare" / F0721)

    def num(v: str) -> int:
        return int(float(v or 0))

    checked = 0
    with seoul_engine.connect() as conn:
        stored = dict(conn.execute(text("SELECT code, free_by_age FROM facilities")).all())
    for code, r in rows.items():
        if r["운영현황"] not in OPERATING or not num(r["반수-영아혼합(만0~2세)"]):
            continue
        headroom = max(0, num(r["정원"]) - num(r["현원"]))
        # 시행규칙: a mixed class follows the ratio of its youngest child; 0-year-olds: 3 per teacher.
        zero = (max(0, 3 * num(r["반수-만0세"]) - num(r["아동수-만0세"]))
                + max(0, 3 * num(r["반수-영아혼합(만0~2세)"]) - num(r["아동수-영아혼합(만0~2세)"])))
        one = (max(0, 5 * num(r["반수-만1세"]) - num(r["아동수-만1세"]))
               + max(0, 3 * num(r["반수-영아혼합(만0~2세)"]) - num(r["아동수-영아혼합(만0~2세)"])))
        assert stored[code]["0"] == min(headroom, zero), code
        assert stored[code]["1"] == min(headroom, one), code
        checked += 1
    assert checked > 500
    # One mixed class with 3 children has no room left for anyone (at 1:5 it would show 2 places).
    assert free_places_by_age({"mixed_infant": 1}, {"mixed_infant": 3}, capacity=20, enrolled=3)["1"] == 0


# ---------------------------------------------------------------------------------------------------------------
# Bad input: nothing written


def _counts(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(conn.execute(text("SELECT (SELECT count(*) FROM facilities), (SELECT count(*) FROM "
                                       "import_runs), (SELECT count(*) FROM enrollment_changes)")).one())


def _head(shared_data: Path, rows: int) -> bytes:
    """The header and the first ``rows`` data rows of the 07-21 file, as bytes (UTF-8, CRLF line ends)."""
    lines = (shared_data / "childcare" / F0721).read_bytes().splitlines(keepends=True)
    return b"".join(lines[: rows + 1])


@pytest.mark.parametrize("cut", ["inside a quoted field", "between fields"])
def test_file_cut_short_fails_whole(engine: Engine, shared_data: Path, tmp_path: Path, cut: str) -> None:
    data = _head(shared_data, 40).rstrip(b"\r\n")
    last = data.rindex(b"\n") + 1
    # Cut after the opening quote of a field (inside it) or after a field's closing quote and comma; both
    # ends are ASCII, so the cut file is still valid UTF-8.
    separator = data.index(b'","', last + len(data[last:]) // 2)
    end = separator + 3 if cut == "inside a quoted field" else separator + 2
    path = tmp_path / "cut.csv"
    path.write_bytes(data[:end])
    before = _counts(engine)
    with pytest.raises(ImportFailed) as err:
        import_seoul_oa20300(engine, path)
    assert "cut short" in err.value.detail and "41" in err.value.detail
    assert _counts(engine) == before
    # The same rows, whole, import (so the failure is the cut alone).
    whole = tmp_path / "whole.csv"
    whole.write_bytes(data)
    with engine.connect() as conn, conn.begin():
        result = import_seoul_oa20300(conn, whole)
        assert result.rows_read == 40
        conn.rollback()


def test_nul_byte_names_row_and_column(engine: Engine, shared_data: Path, tmp_path: Path) -> None:
    lines = _head(shared_data, 10).splitlines(keepends=True)
    header = next(csv.reader([lines[0].decode("utf-8-sig")]))
    fields = lines[6].split(b'","')
    fields[5] = fields[5][:2] + b"\x00" + fields[5][2:]  # 우편번호: ASCII digits
    lines[6] = b'","'.join(fields)
    path = tmp_path / "nul.csv"
    path.write_bytes(b"".join(lines))
    before = _counts(engine)
    with pytest.raises(ImportFailed) as err:
        import_seoul_oa20300(engine, path)
    assert "row 7" in err.value.detail and f"column {header[5]}" in err.value.detail
    assert _counts(engine) == before


def test_mostly_junk_stops_at_the_skip_ratio(engine: Engine, shared_data: Path, tmp_path: Path) -> None:
    junk = b"".join(b'"%d","not a centre","x"\r\n' % i for i in range(50_000))
    path = tmp_path / "junk.csv"
    path.write_bytes(_head(shared_data, 20) + junk)
    before = _counts(engine)
    limits = ImportLimits(max_skip_ratio=0.5, min_rows_for_ratio=200)
    with pytest.raises(ImportFailed) as err:
        import_seoul_oa20300(engine, path, limits=limits)
    # It stops at the first check past the ratio, long before the 50,020 rows are read.
    assert err.value.extra["rows_read"] == 500 and err.value.extra["skipped"] == 480
    assert _counts(engine) == before


def test_report_is_bounded_and_counts_everything(seoul_engine: Engine, shared_data: Path) -> None:
    with seoul_engine.connect() as conn, conn.begin():
        result = import_seoul_oa20300(conn, shared_data / "childcare" / F0721,
                                      limits=ImportLimits(report_per_kind=10))
        stored = conn.execute(text("SELECT report, issue_counts FROM import_runs WHERE id = :id"),
                              {"id": result.import_run_id}).one()
        first = conn.execute(text("SELECT report FROM import_runs WHERE source_name = :n ORDER BY id LIMIT 1"),
                             {"n": F0721}).scalar_one()
        conn.rollback()
    # The first import of this file kept every issue (default limit 1,000 per kind): count them by kind.
    full: dict[str, int] = {}
    for issue in first:
        kind = f"{issue['action']}:{issue['column'] or '-'}"
        full[kind] = full.get(kind, 0) + 1
    assert result.issue_counts == stored.issue_counts == full
    assert any(n > 10 for n in full.values())
    by_kind: dict[str, int] = {}
    for issue in stored.report:
        kind = f"{issue['action']}:{issue['column'] or '-'}"
        by_kind[kind] = by_kind.get(kind, 0) + 1
    assert by_kind == {k: min(n, 10) for k, n in full.items()}


def test_second_import_is_told_an_import_is_running(engine: Engine, shared_data: Path, tmp_path: Path) -> None:
    path = tmp_path / "small.csv"
    path.write_bytes(_head(shared_data, 5))
    with engine.connect() as first, first.begin():
        import_seoul_oa20300(first, path)  # holds the import lock until its transaction ends
        with pytest.raises(ImportRunning) as err:
            import_seoul_oa20300(engine, path)
        assert "an import is running" in err.value.detail
        with pytest.raises(ImportRunning):
            import_mois_population(engine, shared_data / "population" / "mois_jumin_pop_age0to5_by_area_202606.csv")
        first.rollback()
    # Once the first has finished, the next one runs.
    with engine.connect() as conn, conn.begin():
        assert import_seoul_oa20300(conn, path).rows_read == 5
        conn.rollback()
