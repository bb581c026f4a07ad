"""The watcher as a separate process (``python -m geo.watch``) against a live uvicorn server on a throw-away
migrated database, catching each tamper of the issue: an entry's applied_at moved in the database, a verified claim
inserted there, a rank event that disagrees with the log, an edited chain event, and the chain, its heads and the
log rewritten together and re-signed with the real key (a fork). A clean log passes, twice as it grows."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from psycopg.types.json import Jsonb
from sqlalchemy import Engine, text

from geo.admission import chain, tlog, tlog_store
from geo.admission import waitlist as wl
from tests.geo.admission.waitutil import parent
from tests.serverutil import uvicorn_server

NOW = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
ORIGIN = "watch.dolbom.test/waitlist"
CENTRES = ["WATCH00001", "WATCH00002", "WATCH00003", "WATCH00004"]


@dataclass
class Live:
    url: str
    engine: Engine
    key: str
    folder: Path
    minute: int = 0

    def apply(self, centre: str, *, name: str) -> dict:
        """A verified parent applies for a new child (committed); each application a minute later."""
        self.minute += 1
        with self.engine.begin() as conn:
            mum = parent(conn, f"{name}@example.kr")
            kid = wl.register_child(conn, parent_user_id=mum, name=name, birth_date=date(2025, 5, 1), now=NOW)
            return wl.apply(conn, parent_user_id=mum, child_id=kid["id"], facility_code=centre,
                            now=NOW + timedelta(minutes=self.minute))

    def watch(self, state: str, *, key: str | None = None) -> tuple[int, str]:
        """Run the watcher process once; its exit status and output."""
        done = subprocess.run([sys.executable, "-m", "geo.watch", self.url, "--state", str(self.folder / state),
                               "--key", key or self.key, "--origin", ORIGIN],
                              capture_output=True, text=True, timeout=120)
        assert "Traceback" not in done.stderr, done.stderr
        return done.returncode, done.stdout + done.stderr


@pytest.fixture(scope="module")
def live(make_database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    engine = make_database("watch")
    folder = tmp_path_factory.mktemp("watch")
    key_file = folder / "log.key"
    signer = tlog_store.write_key(key_file, ORIGIN)
    with engine.begin() as conn:
        for code in CENTRES:
            conn.execute(text("""
                INSERT INTO facilities (code, name, facility_type, status, district_code, capacity, enrolled,
                    classes_by_age, free_by_age, geocode_quality, source, geom_4326)
                VALUES (:code, :name, 'national_public', 'active', '11140', 40, 0, :classes, :free, 'source', 'test',
                        ST_SetSRID(ST_MakePoint(126.978, 37.566), 4326))
            """), {"code": code, "name": f"감시어린이집 {code[-1]}", "classes": Jsonb({"0": 1}),
                   "free": Jsonb({"0": 0, "total": 0})})
    env = {"DOLBOM_LOG_KEY_FILE": str(key_file), "DOLBOM_LOG_ORIGIN": ORIGIN, "DOLBOM_IDENTITY_PROVIDER": "local"}
    with uvicorn_server(engine.url.render_as_string(hide_password=False), extra_env=env) as url:
        yield Live(url, engine, signer.verifier.text(), folder)


def _facility_id(conn, code: str) -> int:
    return int(conn.execute(text("SELECT id FROM facilities WHERE code = :c"), {"c": code}).scalar_one())


def _alarms(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("ALARM:")]


def test_the_watcher_process_catches_every_tamper(live: Live) -> None:
    c1, c2, c3, c4 = CENTRES
    # A clean log passes, and again after it grew (a consistency proof from the held checkpoint).
    for name in ("a1", "b1"):
        live.apply(c1, name=name)
    code, out = live.watch("first")
    assert code == 0 and "root verified" in out, out
    live.apply(c1, name="c1")
    code, out = live.watch("first")
    assert code == 0 and _alarms(out) == [], out
    held = json.loads((live.folder / "first" / "entries.jsonl").read_text().splitlines()[-1])
    assert held["centre"] == c1 and held["event"]["type"] == "rank"

    # Another key than the log's: the checkpoint is refused.
    other = tlog.Signer.generate(ORIGIN).verifier.text()
    code, out = live.watch("first", key=other)
    assert code == 1 and "bad checkpoint signature" in out, out

    # 1. An entry's applied_at moved in the database: the next rank event reorders with no logged reason.
    a2, b2 = live.apply(c2, name="a2"), live.apply(c2, name="b2")
    with live.engine.begin() as conn:
        conn.execute(text("UPDATE waitlist_entries SET applied_at = applied_at - interval '1 day' "
                          "WHERE public_id = :e"), {"e": b2["entry"]})
    live.apply(c2, name="c2")
    code, out = live.watch("first")
    assert code == 1 and any(c2 in a and "reorders" in a and b2["entry"] in a + a2["entry"] for a in _alarms(out)), out
    # ... and the re-ranking from the log's own facts names who should hold the rank.
    assert any(c2 in a and "by the log's own facts" in a and a2["entry"] in a for a in _alarms(out)), out

    # 2. A verified claim inserted directly in the database: same, at centre 3.
    live.apply(c3, name="a3")
    b3 = live.apply(c3, name="b3")
    with live.engine.begin() as conn:
        conn.execute(text("""INSERT INTO claims (child_id, category, evidence)
                             SELECT child_id, 'dual_income', 'verified_centre' FROM waitlist_entries WHERE public_id = :e"""),
                     {"e": b3["entry"]})
    live.apply(c3, name="c3")
    code, out = live.watch("first")
    assert code == 1 and any(c3 in a and "reorders" in a for a in _alarms(out)), out
    assert any(c3 in a and "by the log's own facts" in a for a in _alarms(out)), out

    # 3. A rank event that disagrees with the log (written on the chain as the server would).
    a4 = live.apply(c4, name="a4")
    with live.engine.begin() as conn:
        chain.append_event(conn, _facility_id(conn, c4),
                           {"type": "rank", "year": a4["year"], "age_class": a4["age_class"],
                            "order": ["0123456789abcdef", a4["entry"]]}, now=NOW)
    code, out = live.watch("first")
    assert code == 1 and any(c4 in a and "0123456789abcdef" in a for a in _alarms(out)), out
    rank_alarms = len(_alarms(out))

    # The copy moved on with the log (its integrity holds; only ranks are wrong): a second watcher starts here.
    shutil.copytree(live.folder / "first", live.folder / "second")

    # 4. An event edited on the chain: the watcher's copy differs, and the entries no longer hash to the root.
    with live.engine.begin() as conn:
        f1 = _facility_id(conn, c1)
        original = conn.execute(text("SELECT event FROM waitlist_chain WHERE facility_id = :f AND seq = 1"),
                                {"f": f1}).scalar_one()
        moved = {**original, "applied_at": "2026-01-01T00:00:00+00:00"}
        conn.execute(text("UPDATE waitlist_chain SET event = CAST(:e AS jsonb) WHERE facility_id = :f AND seq = 1"),
                     {"e": json.dumps(moved), "f": f1})
    code, out = live.watch("first")
    alarms = _alarms(out)
    assert code == 1 and any(a.startswith("ALARM: rewrite: entry 0 ") for a in alarms), out
    assert any("do not hash to the signed root" in a for a in alarms), out

    # 5. The chain and its heads rewritten consistently (the server's own chain check passes) and the log rebuilt
    # and re-signed with the real key: a fork for both watchers.
    with live.engine.begin() as conn:
        rows = chain.chain_rows(conn, f1)
        rebuilt = chain.build_chain([r.event for r in rows])
        for row in rebuilt:
            conn.execute(text("UPDATE waitlist_chain SET digest = :d, hash = :h WHERE facility_id = :f AND seq = :s"),
                         {"d": row.digest, "h": row.hash, "f": f1, "s": row.seq})
        for head in chain.daily_heads(conn, f1):
            conn.execute(text("UPDATE waitlist_chain_heads SET hash = :h WHERE facility_id = :f AND day = :d"),
                         {"h": rebuilt[head["seq"] - 1].hash, "f": f1, "d": head["day"]})
        assert chain.verify_centre(conn, f1) == []  # undetectable from the database alone
        for table in ("waitlist_log_cosignatures", "waitlist_log_checkpoints", "waitlist_log_hashes",
                      "waitlist_log_leaves", "waitlist_log_pending"):
            conn.execute(text(f"DELETE FROM {table}"))  # fixed table names, no request data
        conn.execute(text("INSERT INTO waitlist_log_pending (facility_id, seq) "
                          "SELECT facility_id, seq FROM waitlist_chain ORDER BY created_at, facility_id, seq"))
    resigned = httpx.get(f"{live.url}/waitlist/log/checkpoint", timeout=30).text
    assert tlog.open_checkpoint(resigned, [tlog.parse_verifier(live.key)])[1] == [ORIGIN]  # validly signed
    code, out = live.watch("second")
    assert code == 1 and any("fork: two checkpoints of size" in a for a in _alarms(out)), out
    live.apply(c1, name="d1")  # the rewritten log grows on: no consistency proof from the held checkpoint
    code, out = live.watch("first")
    assert code == 1 and any("fork: checkpoint" in a and "does not extend" in a for a in _alarms(out)), out
    assert len(_alarms(out)) > rank_alarms
