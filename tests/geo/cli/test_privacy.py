"""``dolbom privacy purge`` end to end on its own database: old personal data purged, the file sink trimmed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

DOLBOM = str(Path(sys.executable).with_name("dolbom"))


def test_privacy_purge_command(make_database, tmp_path: Path) -> None:
    engine = make_database("cli_privacy")
    old = datetime.now(UTC) - timedelta(days=40)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO login_failures (email, client_ip, at) VALUES ('a@b.kr', '10.0.0.1', :at), "
                          "('c@d.kr', '10.0.0.2', now())"), {"at": old})
    sink = tmp_path / "sms-outbox.jsonl"
    sink.write_text(json.dumps({"idempotency_key": "k", "to": "010-1234-5678", "body": "b",
                                "at": old.isoformat()}) + "\n", encoding="utf-8")
    env = {**os.environ, "DATABASE_URL": engine.url.render_as_string(hide_password=False),
           "DOLBOM_NOTIFY_FILE": str(sink)}
    done = subprocess.run([DOLBOM, "privacy", "purge"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "login_failures 1" in done.stderr and "sink_lines 1" in done.stderr
    with engine.connect() as conn:
        assert conn.execute(text("SELECT array_agg(email) FROM login_failures")).scalar_one() == ["c@d.kr"]
    assert sink.read_text(encoding="utf-8") == ""
