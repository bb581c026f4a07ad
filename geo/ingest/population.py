"""MOIS 주민등록 인구 exports (jumin.mois.go.kr) onto 행정동: ages 0-5 per dong, replacing census estimates.

Two export layouts are recognised by their header:

* single ages by sex per 행정기관코드 (``행정기관코드, 기준연월, 시도명, 시군구명, 읍면동명, 계, ..., 0세남자, ...``);
* the "연령별 인구현황" table with an age range 0-5 (``행정구역`` = ``"서울특별시 종로구 사직동(1111053000)"``,
  ``2026년06월_계_0세`` ..., numbers with thousands separators).
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from geo.errors import ImportFailed
from geo.ingest.boundaries import _mois_codes, dong_name_keys
from geo.ingest.csvio import file_sha256, iter_rows, open_csv, parse_int
from geo.ingest.report import ImportResult
from geo.ingest.run import DEFAULT_LIMITS, ImportLimits, import_run, jsonb

_AREA_RE = re.compile(r"^(?P<name>.*?)\s*\((?P<code>\d{10})\)$")
_MONTH_RE = re.compile(r"^(?P<y>\d{4})년(?P<m>\d{2})월_계_(?P<age>\d)세$")


def normalise_dong_name(name: str) -> str:
    """Compare 행정동 names across sources: '종로1·2·3·4가동' == '종로1.2.3.4가동'."""
    return re.sub(r"[\s·.,ㆍ・()]", "", name)


def dong_name_variants(name: str) -> list[str]:
    """Normalised spellings to try: MOIS writes '창신제1동' and '홍제제1동' where KOSTAT has '창신1동', '홍제1동'."""
    base = normalise_dong_name(name)
    short = re.sub(r"제(\d+)동$", r"\1동", base)
    return [base] if short == base else [base, short]


def _successor_polygon(code: str, name: str, polygon_codes: dict[str, int]) -> tuple[int, str] | None:
    """The 행정동 polygon (id, 행정기관코드) that covers a dong created or renamed after the boundary vintage, from
    the code history of its 시군구 (``geo/ingest/data/mois_admin_dong_codes.csv``).

    A dong whose code the history knows came from the codes of its 시군구 abolished the day it was created
    (상일제1동/상일제2동 from 상일동 on 2021-07-01, 개포3동 from 일원2동 on 2022-12-23); a code the history does not
    know is traced by name to its abolished code and on to what replaced it on that day (신설동 and 용두동 were
    merged into 용신동 on 2009-05-04, the polygon that still covers them). Among several candidates the nearest
    code wins (codes of one area are numbered together); a chain is followed until a polygon is found.
    """
    entries = {c: (keys, created, abolished) for keys, c, created, abolished in _mois_codes().get(code[:5], [])}
    if code in entries:
        created = entries[code][1]
        frontier = [c for c, (_, _, abolished) in entries.items() if abolished and abolished == created and c != code]
    else:
        keys = dong_name_keys(name)
        olds = [c for c, (k, _, abolished) in entries.items() if k & keys and abolished]
        frontier = []
        for old in olds:
            frontier += [c for c, (_, created, _) in entries.items() if created == entries[old][2] and c != old]
        frontier = sorted(frontier, key=lambda c: min(abs(int(c) - int(o)) for o in olds))
    seen: set[str] = set()
    for _ in range(5):
        frontier = sorted((c for c in frontier if c not in seen), key=lambda c: abs(int(c) - int(code)))
        for candidate in frontier:
            if candidate in polygon_codes:
                return polygon_codes[candidate], candidate
        seen.update(frontier)
        frontier = [c for old in frontier for c, (_, created, _) in entries.items()
                    if entries[old][2] and created == entries[old][2]]
        if not frontier:
            break
    return None


def _is_dong_code(code: str) -> bool:
    return code[5:8] != "000"


def _numbers(row: dict[str, str], columns: list[str]) -> dict[str, int] | str:
    """The columns parsed as integers, or the name of the first column that is not a number."""
    out = {}
    for col in columns:
        try:
            out[col] = parse_int(row.get(col, ""))
        except ValueError:
            return col
    return out


def _rows_single_age(rows, header: list[str], result: ImportResult):  # type: ignore[no-untyped-def]
    """(row, code, sigungu, dong, total, ages{0..5}, date) from the single-age layout."""
    for number, row in rows:
        result.rows_read += 1
        code = row["행정기관코드"]
        if len(code) != 10 or not code.isdigit():
            result.skip(number, f"행정기관코드 {code!r} is not a 10-digit code", column="행정기관코드")
            continue
        if not _is_dong_code(code):
            continue
        values = _numbers(row, ["계", *(f"{a}세{sex}" for a in range(6) for sex in ("남자", "여자"))])
        if isinstance(values, str):
            result.skip(number, f"not a number: {row.get(values)!r}", code=code, column=values)
            continue
        ages = {str(a): values[f"{a}세남자"] + values[f"{a}세여자"] for a in range(6)}
        total = values["계"]
        y, m = row["기준연월"][:4], row["기준연월"][5:7]
        on = date(int(y), int(m), 1) if y.isdigit() and m.isdigit() else None
        yield number, code, row["시군구명"], row["읍면동명"], total, ages, on, "읍면동명"


def _rows_age_table(rows, header: list[str], result: ImportResult):  # type: ignore[no-untyped-def]
    """Same tuple from the 0-5 age-range layout."""
    age_cols: dict[str, str] = {}
    on: date | None = None
    for col in header:
        match = _MONTH_RE.match(col)
        if match:
            age_cols[match.group("age")] = col
            on = date(int(match.group("y")), int(match.group("m")), 1)
    total_col = next((c for c in header if c.endswith("_계_총인구수")), None)
    if sorted(age_cols) != [str(a) for a in range(6)] or total_col is None:
        raise ImportFailed("population export lacks the columns YYYY년MM월_계_0세 .. _계_5세 and _계_총인구수",
                           missing_columns=["YYYY년MM월_계_0세..5세"])
    for number, row in rows:
        result.rows_read += 1
        match = _AREA_RE.match(row["행정구역"])
        if not match:
            result.skip(number, f"행정구역 {row['행정구역']!r} has no (10-digit code)", column="행정구역")
            continue
        code = match.group("code")
        if not _is_dong_code(code):
            continue
        parts = match.group("name").split()
        values = _numbers(row, [total_col, *age_cols.values()])
        if isinstance(values, str):
            result.skip(number, f"not a number: {row.get(values)!r}", code=code, column=values)
            continue
        ages = {a: values[col] for a, col in age_cols.items()}
        total = values[total_col]
        yield number, code, " ".join(parts[1:-1]), parts[-1] if parts else "", total, ages, on, "행정구역"


def import_mois_population(engine: Engine | Connection, path: Path, *, progress: bool = False,
                           limits: ImportLimits = DEFAULT_LIMITS) -> ImportResult:
    """Set ``population_0_5`` (and by-age, total, MOIS code) of 행정동 from a MOIS export; one transaction.

    Rows are matched by 행정기관코드 when a previous import stored it, else by 시군구 code (the code's first five
    digits) and normalised dong name. A dong split or renamed after the boundary vintage is counted in the polygon
    that covers it, found in the code history (``_successor_polygon``; the row is flagged), so that 구 totals equal
    the file's; several such dongs in one polygon add up. Rows that match nothing are reported as skipped; dongs
    the file does not cover keep their census estimate. A file cut
    short, with a NUL byte or mostly unusable rows fails whole (``ImportFailed``), as another import running
    does (``ImportRunning``).
    """
    # The rows stream from the open file, so the whole import runs inside it.
    with open_csv(path) as (header, reader, position), \
            import_run(engine, kind="mois_population", source_name=path.name, sha256=file_sha256(path),
                       limits=limits, progress=progress, total_bytes=path.stat().st_size) as run:
        conn, result = run.conn, run.result
        rows = iter_rows(header, reader, name=path.name, result=result)
        if "행정기관코드" in header and "0세남자" in header:
            parsed = _rows_single_age(rows, header, result)
        elif "행정구역" in header:
            parsed = _rows_age_table(rows, header, result)
        else:
            raise ImportFailed(
                f"{path.name}: not a MOIS population export (no 행정기관코드/0세남자 or 행정구역 column)")

        dongs = conn.execute(text("SELECT id, mois_code, district_code, name FROM admin_dongs")).all()
        if not dongs:
            raise ImportFailed("no 행정동 boundaries loaded; run `dolbom boundaries load` first")
        by_code = {d.mois_code: d.id for d in dongs if d.mois_code}
        by_name = {(d.district_code, normalise_dong_name(d.name)): d.id for d in dongs}
        names = {d.id: d.name for d in dongs}
        codes_of = {d.id: d.mois_code for d in dongs}
        districts_loaded = {d.district_code for d in dongs}
        updates: dict[int, dict] = {}
        rows_of: dict[int, list[str]] = {}
        for number, code, _sigungu, dong, total, ages, on, name_column in parsed:
            if result.rows_read % 500 == 0:
                run.bar.advance_to(position())
                run.check_skip_ratio(result.skipped, result.rows_read)
            if code[:5] not in districts_loaded:
                continue  # another region than the loaded boundaries: not an error
            dong_id = by_code.get(code) or next(
                (by_name[(code[:5], v)] for v in dong_name_variants(dong) if (code[:5], v) in by_name), None)
            mois_code = code
            if dong_id is None:
                # Split or renamed after the boundary vintage: counted in the polygon that covers it.
                found = _successor_polygon(code, dong, by_code)
                if found is None:
                    result.skip(number, f"no 행정동 boundary named {dong!r} in 시군구 {code[:5]}, and none in its "
                                "code history", code=code, column=name_column)
                    continue
                dong_id, mois_code = found
                result.flag(number, f"행정동 {dong} ({code}) is not in the boundaries (split or renamed since); "
                            f"counted in the polygon of {names[dong_id]} ({mois_code}) that covers it",
                            code=code, column=name_column)
            if code in rows_of.get(dong_id, []):
                result.skip(number, "second row for the same 행정동", code=code)
                continue
            if dong_id in updates:
                # Several of today's dongs in one polygon: their figures add up.
                u = updates[dong_id]
                u["total"] += total
                u["pop05"] += sum(ages.values())
                u["ages"] = jsonb({a: u["ages_raw"][a] + ages[a] for a in ages})
                u["ages_raw"] = {a: u["ages_raw"][a] + ages[a] for a in ages}
                u["mois_code"] = codes_of[dong_id] or u["mois_code"]
                rows_of[dong_id].append(code)
                continue
            rows_of[dong_id] = [code]
            updates[dong_id] = {"id": dong_id, "mois_code": mois_code, "total": total,
                                "pop05": sum(ages.values()), "ages": jsonb(ages), "ages_raw": dict(ages), "on": on,
                                "source": f"mois:{path.name}"}
        run.check_skip_ratio(result.skipped, result.rows_read)
        run.bar.step("writing population")
        if updates:
            # Free the codes first so that a re-assignment between dongs cannot violate uniqueness mid-update.
            conn.execute(text("UPDATE admin_dongs SET mois_code = NULL WHERE mois_code = ANY(:codes)"),
                         {"codes": [u["mois_code"] for u in updates.values()]})
            conn.execute(
                text("""
                    UPDATE admin_dongs SET mois_code = :mois_code, population_total = :total,
                        population_0_5 = :pop05, population_by_age = :ages,
                        population_source = :source, population_date = :on
                    WHERE id = :id
                """),
                [{k: v for k, v in u.items() if k != "ages_raw"} for u in updates.values()],
            )
        result.updated = len(updates)
        run.data_date = next((u["on"] for u in updates.values()), None)
    return result
