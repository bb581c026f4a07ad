"""The ``dolbom`` command end to end: ``run`` serves /health with the default data; CLI errors name the problem."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import re
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import httpx
from sqlalchemy import Engine, text

from geo.ingest.bundled import BUNDLED_OA20300, load_bundled_seoul

DOLBOM = str(Path(sys.executable).with_name("dolbom"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(engine: Engine) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": engine.url.render_as_string(hide_password=False)}


def _bundled_operating_rows() -> tuple[int, str]:
    """Rows of the shipped OA-20300 snapshot that have a 운영현황 (what the importer can load), and the SHA-256
    of the decompressed file; read here with the csv module, independently of the importer."""
    with gzip.open(BUNDLED_OA20300, "rb") as fh:
        raw = fh.read()
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    return sum(1 for row in rows if row["운영현황"].strip()), hashlib.sha256(raw).hexdigest()


def test_bundled_snapshot_is_the_shared_file(shared_data: Path) -> None:
    source = shared_data / "childcare" / "seoul_childcare_OA-20300_20260721_full.csv"
    assert _bundled_operating_rows()[1] == hashlib.sha256(source.read_bytes()).hexdigest()


def test_run_migrates_loads_the_bundled_seoul_snapshot_and_serves(make_database) -> None:
    engine = make_database("cli_run")
    port = _free_port()
    # Two workers (DOLBOM_WORKERS): the data is loaded once, before uvicorn starts the worker processes.
    proc = subprocess.Popen([DOLBOM, "run", "--port", str(port)], env={**_env(engine), "DOLBOM_WORKERS": "2"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        body = None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
                break
            except httpx.HTTPError:
                time.sleep(0.5)
        assert body is not None, proc.stdout.read() if proc.poll() is not None and proc.stdout else "no answer"
        assert body["status"] == "ok"
        assert body["facilities"] == _bundled_operating_rows()[0]
        pids = {httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).json()["worker_pid"] for _ in range(200)}
        assert len(pids) == 2 and proc.pid not in pids
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    with engine.connect() as conn:
        sources = conn.execute(text("SELECT DISTINCT source FROM facilities")).scalars().all()
        latest = conn.execute(text("SELECT max(data_date) FROM facilities")).scalar_one()
        districts = conn.execute(text("SELECT count(*) FROM districts WHERE code LIKE '11%'")).scalar_one()
    assert sources != ["synthetic"] and "synthetic" not in sources
    assert latest == date(2026, 7, 21) and districts == 25
    # A second start leaves a loaded database alone.
    again = load_bundled_seoul(engine)
    assert again.imported is None and not again.boundaries_loaded
    assert again.facilities_present == body["facilities"]


def test_map_writes_a_folium_map_of_a_search(seoul_engine: Engine, tmp_path: Path) -> None:
    out = tmp_path / "mapo.html"
    done = subprocess.run([DOLBOM, "map", "--out", str(out), "--district", "마포구", "--service", "야간연장",
                           "--age", "2"], env=_env(seoul_engine), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with seoul_engine.connect() as conn:
        expected = conn.execute(text("""
            SELECT count(*) FROM facilities f JOIN districts d ON d.name = '마포구'
            WHERE f.status IN ('active', 'reopened') AND 'extended_hours' = ANY(f.services)
              AND (f.free_by_age ->> '2')::int >= 1 AND ST_Intersects(d.geom_4326, f.geom_4326)""")).scalar_one()
    page = out.read_text(encoding="utf-8")
    assert expected > 0 and page.count("L.circleMarker(") == expected
    assert f"어린이집 {expected}곳" in page and "OA-20300" in page
    assert f"{expected} centres" in done.stderr

    bad = tmp_path / "bad.html"
    done = subprocess.run([DOLBOM, "map", "--out", str(bad), "--lat", "37.55", "--lon", "126.92"],
                          env=_env(seoul_engine), capture_output=True, text=True)
    assert done.returncode == 1 and "error" in done.stderr and "Traceback" not in done.stderr
    assert "--radius-m" in done.stderr and not bad.exists()


def test_import_error_names_row_and_column(make_database, tmp_path: Path) -> None:
    engine = make_database("cli_errors")
    subprocess.run([DOLBOM, "boundaries", "load"], env=_env(engine), check=True, capture_output=True)
    path = tmp_path / "pop.csv"
    path.write_text("행정구역,2026년06월_계_총인구수,2026년06월_계_연령구간인구수,"
                    + ",".join(f"2026년06월_계_{a}세" for a in range(6))
                    + '\n"서울특별시 종로구 사직동(1111053000)",100,10,1,2,3,x,2,2\n', encoding="utf-8")
    done = subprocess.run([DOLBOM, "import", "population", str(path)], env=_env(engine),
                          capture_output=True, text=True)
    assert done.returncode == 0
    assert "row 2" in done.stderr and "2026년06월_계_3세" in done.stderr

    missing = tmp_path / "missing.csv"
    missing.write_text("행정구역\n", encoding="utf-8")
    done = subprocess.run([DOLBOM, "import", "population", str(missing)], env=_env(engine),
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert "error" in done.stderr and "0세" in done.stderr

    # A NUL byte and a file cut short: one line naming the problem, exit 1, no traceback.
    nul = tmp_path / "nul.csv"
    nul.write_bytes(path.read_bytes().replace(b"100,10", b"100,1\x000"))
    cut = tmp_path / "cut.csv"
    cut.write_bytes(path.read_bytes().rstrip(b"\n")[:-3])
    for bad, words in ((nul, ("row 2", "2026년06월_계_연령구간인구수", "NUL")), (cut, ("cut short",))):
        done = subprocess.run([DOLBOM, "import", "population", str(bad)], env=_env(engine),
                              capture_output=True, text=True)
        assert done.returncode == 1
        assert _one_error_line(done.stderr)
        assert all(w in done.stderr for w in words), done.stderr


def _one_error_line(stderr: str) -> bool:
    lines = [line for line in stderr.splitlines() if line.strip()]
    return len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in stderr


def test_cli_errors_are_one_line_never_a_traceback(tmp_path: Path) -> None:
    # No PostgreSQL listens on port 1: a connection error, not a traceback; the password is never shown.
    env = {**os.environ, "DATABASE_URL": "postgresql://dolbom:s3cret-pw@127.0.0.1:1/dolbom"}
    for args in (["db", "migrate"], ["seed"], ["boundaries", "load"], ["import", "seoul", str(tmp_path)],
                 ["import", "seoul", str(tmp_path / "missing.csv")], ["import", "seoul", "--snapshot", "x", "y"],
                 ["osm", "import", str(tmp_path / "missing.osm")], ["no-such-command"]):
        done = subprocess.run([DOLBOM, *args], env=env, capture_output=True, text=True)
        assert done.returncode != 0, args
        assert _one_error_line(done.stderr), (args, done.stderr)
        assert "s3cret-pw" not in done.stderr + done.stdout
    status = subprocess.run([DOLBOM, "db", "status"], env=env, capture_output=True, text=True)
    assert status.returncode == 0
    assert "s3cret-pw" not in status.stderr + status.stdout and "127.0.0.1:1" in status.stderr


def test_import_seoul_prints_the_row_report(make_database, shared_data: Path) -> None:
    engine = make_database("cli_seoul")
    env = _env(engine)
    # No `boundaries load` first: the import loads Seoul's boundaries itself when none are loaded.
    path = shared_data / "childcare" / "seoul_childcare_OA-20300_20260721_full.csv"
    done = subprocess.run([DOLBOM, "import", "seoul", str(path)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    skipped = [line for line in done.stderr.splitlines() if line.strip().startswith("skipped")]
    # The three rows of this snapshot without 운영현황, each named by row and column.
    assert "no boundaries loaded yet" in done.stderr
    assert len(skipped) == 3 and all("column 운영현황" in line for line in skipped)
    again = subprocess.run([DOLBOM, "import", "seoul", str(path)], env=env, capture_output=True, text=True)
    assert again.returncode == 0
    counts = re.search(r"│\s*(\d+)\s*│\s*(\d+)\s*│\s*(\d+)\s*│\s*(\d+)\s*│\s*(\d+)\s*│", again.stderr)
    assert counts is not None, again.stderr
    rows, inserted, updated, unchanged, skipped_again = map(int, counts.groups())
    assert (rows, inserted, updated, unchanged, skipped_again) == (9487, 0, 0, 9484, 3)
