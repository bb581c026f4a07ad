"""``dolbom planner run`` end to end on the Seoul data: outputs written, counts from the database; bad options
are one clear error line and exit status 1."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine, text

DOLBOM = str(Path(sys.executable).with_name("dolbom"))


def _env(engine: Engine) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": engine.url.render_as_string(hide_password=False)}


def test_planner_run_writes_outputs(seoul_engine: Engine, tmp_path: Path) -> None:
    # --no-save: the Seoul test database is read-only for tests.
    # 마포구 only (--area 11440) keeps the test short; the whole city is tested in tests/geo/test_planner.py.
    done = subprocess.run([DOLBOM, "planner", "run", "--out", str(tmp_path), "--service", "휴일보육", "--area", "11440",
                           "--sites", "2", "--no-save"], env=_env(seoul_engine), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with seoul_engine.connect() as conn:
        holiday = conn.execute(text("""SELECT count(*) FROM facilities WHERE status IN ('active', 'reopened')
                                       AND district_code = '11440' AND 'holiday' = ANY(services)""")).scalar_one()
    assert f"{holiday} centres (휴일보육)" in done.stderr and "2 sites cover" in done.stderr
    with (tmp_path / "districts.csv").open(encoding="utf-8") as fh:
        assert sum(int(r["centres"]) for r in csv.DictReader(fh)) == holiday
    with (tmp_path / "sites.csv").open(encoding="utf-8") as fh:
        assert [r["rank"] for r in csv.DictReader(fh)] == ["1", "2"]
    for name in ("planner.gpkg", "cells.geojson", "blind_spots.csv", "report.md", "map.html"):
        assert (tmp_path / name).stat().st_size > 0


def test_planner_bad_option_is_one_line(seoul_engine: Engine, tmp_path: Path) -> None:
    # One process for the CLI path; every invalid parameter is covered in tests/geo/test_planner.py.
    done = subprocess.run([DOLBOM, "planner", "run", "--out", str(tmp_path), "--no-save", "--service", "swim"],
                          env=_env(seoul_engine), capture_output=True, text=True)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "unknown service 'swim'" in lines[0]
    assert not any(tmp_path.iterdir())
