"""``dolbom disclosures import`` and ``dolbom evaluations import`` end to end: a good list is imported, a bad row is
one line on stderr naming its row and column with exit status 1 and nothing written; ``refresh`` runs."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine, text

from tests.geo.disclosure.test_files import HEADER, rows
from tests.search_data import insert_search_fixture

DOLBOM = str(Path(sys.executable).with_name("dolbom"))


def _run(engine: Engine, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    return subprocess.run([DOLBOM, *args], env=env, capture_output=True, text=True, timeout=300)


def _write(path: Path, table: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(table)
    return path


def test_import_commands(make_database, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    engine = make_database("cli_disclosures")
    with engine.begin() as conn:
        ids = insert_search_fixture(conn)
        codes = [conn.execute(text("SELECT code FROM facilities WHERE id = :i"), {"i": ids[k]}).scalar_one()
                 for k in ("A", "B")]
    table = [HEADER, *rows(codes)]
    table[2][HEADER.index("처분일")] = "2026-13-40"
    bad = _run(engine, "disclosures", "import", str(_write(tmp_path / "bad.csv", table)))
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == [
        "error: bad.csv: row 3, column 처분일: not a date (YYYY-MM-DD): '2026-13-40'"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM sanctions")).scalar_one() == 0
    good = _run(engine, "disclosures", "import", str(_write(tmp_path / "good.csv", [HEADER, *rows(codes)])))
    assert good.returncode == 0, good.stderr
    assert "2 rows, 2 disclosures added" in good.stderr  # progress and summaries go to stderr (rich console)
    refreshed = _run(engine, "disclosures", "refresh")
    assert refreshed.returncode == 0 and "started or ended" in refreshed.stderr
    grades = _write(tmp_path / "grades.csv", [["어린이집코드", "평가등급", "평가일"], [codes[0], "A", "2025-06-30"]])
    assert _run(engine, "evaluations", "import", str(grades)).returncode == 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM disclosures")).scalar_one() == 2
        assert conn.execute(text("SELECT evaluation_grade FROM facilities WHERE code = :c"),
                            {"c": codes[0]}).scalar_one() == "A"
