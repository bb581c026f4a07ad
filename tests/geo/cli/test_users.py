"""``dolbom users`` end to end: an admin creates accounts from the command line; errors are one line."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine, text

DOLBOM = str(Path(sys.executable).with_name("dolbom"))


def _run(engine: Engine, *args: str, password: str | None = "correct horse battery") -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    if password:
        env["DOLBOM_NEW_PASSWORD"] = password
    return subprocess.run([DOLBOM, *args], env=env, capture_output=True, text=True, timeout=120)


def test_users_create_token_and_errors(make_database) -> None:
    engine = make_database("cli_users")
    done = _run(engine, "users", "create", "--email", "Admin@Seoul.kr", "--role", "city_admin")
    assert done.returncode == 0, done.stderr
    token = _run(engine, "users", "token", "--email", "admin@seoul.kr")
    assert token.returncode == 0, token.stderr
    secret = token.stdout.strip()
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT token_hash FROM auth_tokens")).scalars().all()
        roles = conn.execute(text("SELECT email, role FROM users")).all()
    assert stored == [hashlib.sha256(secret.encode()).hexdigest()]
    assert [tuple(r) for r in roles] == [("admin@seoul.kr", "city_admin")]
    # The other binding and password rules are the same geo function, tested through the API.
    for args, message in [
        (("--email", "s@seoul.kr", "--role", "centre_staff", "--centre", "00000000000"), "unknown centre code"),
        (("--email", "x@seoul.kr", "--role", "emperor"), "emperor"),
    ]:
        failed = _run(engine, "users", "create", *args)
        assert failed.returncode == 1, failed
        assert message in failed.stderr and "Traceback" not in failed.stderr
    missing = _run(engine, "users", "token", "--email", "nobody@seoul.kr")
    assert missing.returncode == 1 and "no account" in missing.stderr
    listing = _run(engine, "users", "list")
    assert listing.returncode == 0 and "admin@seoul.kr" in listing.stdout
