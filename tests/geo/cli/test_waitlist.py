"""``dolbom waitlist`` end to end: verify names an edited table row or log row, rebuild repairs the tables,
errors are one line; simulate prints its table."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, text

from geo.admission import waitlist as wl
from tests.geo.admission.waitutil import NOW, child, parent

DOLBOM = str(Path(sys.executable).with_name("dolbom"))


def _run(engine: Engine, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    return subprocess.run([DOLBOM, *args], env=env, capture_output=True, text=True, timeout=300)


def test_waitlist_verify_names_edits_and_rebuild_repairs_them(make_database) -> None:
    engine = make_database("cli_waitlist")
    with engine.begin() as conn:
        conn.execute(text("""INSERT INTO facilities (code, name, facility_type, status, geocode_quality, source,
                                                     geom_4326)
                             VALUES ('T0002', '체인 어린이집', '국공립', 'active', 'exact', 'test',
                                     ST_SetSRID(ST_MakePoint(126.98, 37.57), 4326))"""))
        entries = []
        for i in range(4):
            mum = parent(conn, f"cli{i}@example.kr")
            kid = child(conn, mum, claims=("dual_income",) if i % 2 else ())
            entries.append(wl.apply(conn, parent_user_id=mum, child_id=kid["id"], facility_code="T0002",
                                    now=NOW + timedelta(hours=i))["entry"])
    done = _run(engine, "waitlist", "verify")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "1 of 1 centres match their logs (9 links replayed)"
    with engine.begin() as conn:  # the edit: an application moved a year back, directly in the table
        conn.execute(text("UPDATE waitlist_entries SET applied_at = applied_at - interval '1 year' "
                          "WHERE public_id = :e"), {"e": entries[2]})
    failed = _run(engine, "waitlist", "verify", "--centre", "T0002")
    assert failed.returncode == 1
    moved = (NOW + timedelta(hours=2)).isoformat()
    assert any(line.startswith(f"T0002\t{entries[2]}\tapplied_at\texpected {moved}\tfound 2025-11-26")
               for line in failed.stdout.splitlines()), failed.stdout
    # Ranks: two 맞벌이 entries first, then by application time; the moved entry jumps from 4th to 3rd.
    assert f"T0002\t{entries[2]}\trank in queue 2026/0\texpected 4\tfound 3" in failed.stdout.splitlines()
    assert "differences at 1 of 1 centres" in failed.stderr and "Traceback" not in failed.stderr
    dry = _run(engine, "waitlist", "rebuild", "--dry-run")
    assert dry.returncode == 0 and "1 of 1 centres would be rebuilt" in dry.stdout
    assert _run(engine, "waitlist", "verify").returncode == 1
    fixed = _run(engine, "waitlist", "rebuild", "--centre", "T0002")
    assert fixed.returncode == 0 and "1 of 1 centres rebuilt" in fixed.stdout
    assert _run(engine, "waitlist", "verify").returncode == 0
    with engine.begin() as conn:
        conn.execute(text("UPDATE waitlist_chain SET event = event || '{\"entry\": \"x\"}' WHERE seq = 2"))
    edited = _run(engine, "waitlist", "verify", "--centre", "T0002")
    assert edited.returncode == 1
    assert "T0002\tlink 2\tchain\texpected intact\tfound event content does not match its digest (edited)" \
        in edited.stdout.splitlines()
    missing = _run(engine, "waitlist", "verify", "--centre", "NOPE")
    assert missing.returncode == 1 and "no centre" in missing.stderr and len(missing.stderr.splitlines()) == 1


def test_keygen_then_checkpoint_signs_the_log(make_database, tmp_path: Path) -> None:
    from geo.admission import tlog

    engine = make_database("cli_checkpoint")
    key = tmp_path / "log.key"
    made = _run(engine, "waitlist", "keygen", str(key), "--name", "cli.dolbom.test/log")
    assert made.returncode == 0, made.stderr
    verifier = tlog.parse_verifier(made.stdout.strip())
    again = _run(engine, "waitlist", "keygen", str(key))
    assert again.returncode == 1 and "never overwritten" in again.stderr
    with engine.begin() as conn:
        facility_id = conn.execute(text("""INSERT INTO facilities (code, name, facility_type, status,
                                               geocode_quality, source, geom_4326)
                                           VALUES ('T0003', '로그 어린이집', '국공립', 'active', 'exact', 'test',
                                                   ST_SetSRID(ST_MakePoint(126.98, 37.57), 4326))
                                           RETURNING id""")).scalar_one()
        for i in range(3):
            wl.append_event(conn, facility_id, {"type": "apply", "entry": f"e{i}"}, now=NOW)
    env = {"DOLBOM_LOG_KEY_FILE": str(key), "DOLBOM_LOG_ORIGIN": "cli.dolbom.test/log"}
    done = subprocess.run([DOLBOM, "waitlist", "checkpoint"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "DATABASE_URL": engine.url.render_as_string(hide_password=False), **env})
    assert done.returncode == 0, done.stderr
    checkpoint = tlog.open_checkpoint(done.stdout, [verifier], origin="cli.dolbom.test/log")[0]
    assert checkpoint.size == 3


def test_waitlist_simulate_prints_the_table(seoul_engine: Engine) -> None:
    done = _run(seoul_engine, "waitlist", "simulate", "--area", "11110", "--applicant-rate", "0.1")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("area 11110:") and "| intake round (DA) |" in done.stdout
    assert "| sequential offers |" in done.stdout
    bad = _run(seoul_engine, "waitlist", "simulate", "--area", "seoul")
    assert bad.returncode == 1 and "code prefix" in bad.stderr
