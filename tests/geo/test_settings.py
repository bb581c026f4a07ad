"""Settings grouped by concern, read by their flat environment names; refused values; docs/settings.md in step."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from geo.settings import ENV_FIELDS, GROUPS, PROJECT_ROOT, Settings, SettingsError, variables

DOLBOM = str(Path(sys.executable).with_name("dolbom"))
DOCS = PROJECT_ROOT / "docs" / "settings.md"
# Read outside the settings models (before them, or by one command, the tests or the benchmarks).
READ_ELSEWHERE = {"DOLBOM_HOME", "DOLBOM_NEW_PASSWORD", "DOLBOM_TOKEN", "DOLBOM_SHARED_DATA", "DOLBOM_TEST_DATABASE",
                  "DOLBOM_TEST_DATABASE_URL", "DOLBOM_TEST_WORKERS", "DOLBOM_WITH_BROWSER", "DOLBOM_LOAD_SEED"}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No setting from the caller's environment, and an empty ``.env``."""
    for name in list(os.environ):
        if name.upper() in ENV_FIELDS:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_every_group_field_has_its_own_variable() -> None:
    fields = [(group, name) for group, model in GROUPS.items() for name in model.model_fields]
    assert sorted(ENV_FIELDS.values()) == sorted(fields)  # one variable per field, none shared
    assert all(re.fullmatch(r"DATABASE_URL|DOLBOM_[A-Z0-9_]+", env) for env in ENV_FIELDS)


def test_flat_environment_names_reach_their_groups(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("DATABASE_URL", "postgresql://u@db.example:5432/dolbom")
    clean_env.setenv("DOLBOM_PORT", "9001")
    clean_env.setenv("dolbom_max_page_limit", "42")  # names match without regard to case, as before
    clean_env.setenv("DOLBOM_CATCHMENT_RADIUS_M", '{"home": 400}')
    clean_env.setenv("DOLBOM_PGBOUNCER", "0")
    clean_env.setenv("DOLBOM_NOTIFY_PROVIDER", "http")
    clean_env.setenv("DOLBOM_REPLICA_URLS", "postgresql://u@r1/dolbom, postgresql://u@r2/dolbom")
    env_file = tmp_path / "test.env"
    env_file.write_text("DOLBOM_PORT=7000\nDOLBOM_HOST=0.0.0.0\n")
    s = Settings(_env_file=env_file)
    assert s.database.url == "postgresql://u@db.example:5432/dolbom"
    assert s.effective_database_url == "postgresql+psycopg://u@db.example:5432/dolbom"
    assert s.server.port == 9001  # the environment wins over .env
    assert s.server.host == "0.0.0.0"  # .env is read
    assert s.search.max_page_limit == 42
    assert s.search.catchment_radius_m == {"home": 400.0}
    assert s.pgbouncer.enabled is False and s.notify.provider == "http"
    assert s.replicas.urls == ["postgresql+psycopg://u@r1/dolbom", "postgresql+psycopg://u@r2/dolbom"]
    untouched = Settings(_env_file=None)
    assert untouched.auth.login_max_failures == 5 and untouched.local.pg_port == 54329


def test_keywords_by_variable_or_by_group_win_over_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DOLBOM_PORT", "9001")
    clean_env.setenv("DOLBOM_MAX_PAGE_LIMIT", "42")
    s = Settings(_env_file=None, DOLBOM_PORT=9100, search={"max_page_limit": 7})
    assert s.server.port == 9100 and s.search.max_page_limit == 7
    # A group given whole keeps the environment's values for the fields it leaves out.
    s = Settings(_env_file=None, server={"host": "0.0.0.0"})
    assert s.server.host == "0.0.0.0" and s.server.port == 9001


def test_updated_changes_a_copy_and_validates_it(clean_env: pytest.MonkeyPatch) -> None:
    s = Settings(_env_file=None, DATABASE_URL="postgresql://u@h/db")
    small = s.updated(DOLBOM_MAX_PAGE_LIMIT=2, DOLBOM_NOTIFY_BACKOFF_S=0.0)
    assert (small.search.max_page_limit, small.notify.backoff_s) == (2, 0.0)
    assert (s.search.max_page_limit, s.notify.backoff_s) == (500, 15.0)  # the original is unchanged
    assert small.database.url == s.database.url and small.search.max_radius_m == s.search.max_radius_m
    with pytest.raises(SettingsError, match="DOLBOM_MAX_PAGE_LIMIT"):
        s.updated(DOLBOM_MAX_PAGE_LIMIT=0)
    with pytest.raises(KeyError, match="DOLBOM_NO_SUCH"):
        s.updated(DOLBOM_NO_SUCH=1)


@pytest.mark.parametrize(("env", "value", "problem"), [
    ("DOLBOM_MAX_PAGE_LIMIT", "-5", "greater than or equal to 1"),
    ("DOLBOM_PORT", "0", "greater than or equal to 1"),
    ("DOLBOM_PORT", "70000", "less than or equal to 65535"),
    ("DOLBOM_PGBOUNCER_PORT", "http", "valid integer"),
    ("DOLBOM_WORKERS", "0", "greater than or equal to 1"),
    ("DOLBOM_IMPORT_MAX_SKIP_RATIO", "1.5", "less than or equal to 1"),
    ("DOLBOM_CATCHMENT_INFANT_FACTOR", "0", "greater than 0"),
    ("DOLBOM_MAX_RADIUS_M", "-1", "greater than 0"),
    ("DOLBOM_DB_TIMEOUT_S", "0", "greater than 0"),
    ("DOLBOM_NOTIFY_PROVIDER", "smtp", "'file' or 'http'"),
    ("DOLBOM_IDENTITY_PROVIDER", "saml", "'local' or 'oidc'"),
    ("DOLBOM_CATCHMENT_RADIUS_M", '{"home": -400}', "greater than 0"),
    ("DOLBOM_CATCHMENT_RADIUS_M", "home=400", "not JSON"),
    ("DOLBOM_COOKIE_SECURE", "maybe", "valid boolean"),
])
def test_a_refused_value_is_one_line_naming_the_variable(clean_env: pytest.MonkeyPatch, env: str, value: str,
                                                         problem: str) -> None:
    clean_env.setenv(env, value)
    with pytest.raises(SettingsError) as refused:
        Settings(_env_file=None)
    message = refused.value.detail
    assert message.startswith(f"invalid setting {env}") and problem in message and "\n" not in message


def test_secrets_are_not_repeated_in_messages(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DOLBOM_CI_HASH_KEY", "")
    clean_env.setenv("DOLBOM_SEOUL_API_URL", "")
    with pytest.raises(SettingsError) as refused:
        Settings(_env_file=None)
    assert "DOLBOM_CI_HASH_KEY: String should have at least 1 character" in refused.value.detail
    assert "DOLBOM_SEOUL_API_URL='': " in refused.value.detail  # not a secret: the value is shown


def _run(argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k.upper() not in ENV_FIELDS}
    return subprocess.run(argv, env={**clean, **env}, capture_output=True, text=True, timeout=120,
                          cwd=PROJECT_ROOT)


def test_the_command_line_refuses_a_bad_value_in_one_line() -> None:
    done = _run([DOLBOM, "db", "status"], DOLBOM_MAX_PAGE_LIMIT="-5")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: invalid setting DOLBOM_MAX_PAGE_LIMIT='-5': Input should be greater than or equal to 1"]
    # Positive control: the same command with the value fixed gets past the settings.
    done = _run([DOLBOM, "db", "status"], DOLBOM_MAX_PAGE_LIMIT="5")
    assert "invalid setting" not in done.stderr


def test_an_app_server_refuses_a_bad_value_in_one_line() -> None:
    done = _run([sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--port", "1"],
                DOLBOM_PORT="65536")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: invalid setting DOLBOM_PORT='65536': Input should be less than or equal to 65535"]


def _documented() -> dict[str, tuple[str, str]]:
    """``{variable: (setting path or '', default cell)}`` of every table row of docs/settings.md."""
    rows: dict[str, tuple[str, str]] = {}
    for line in DOCS.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) >= 3:
            env = cells[0].strip("`")
            assert env not in rows, f"{env} is documented twice"
            setting = cells[1].strip("`") if len(cells) == 5 else ""
            rows[env] = (setting, cells[3] if len(cells) == 5 else "")
    return rows


def test_docs_list_every_variable_and_nothing_else() -> None:
    documented = _documented()
    settings_rows = {env for env, (setting, _) in documented.items() if setting}
    assert sorted(set(ENV_FIELDS) - settings_rows) == []  # every variable is documented
    assert sorted(settings_rows - set(ENV_FIELDS)) == []  # and no variable that is not read
    assert set(documented) - settings_rows == READ_ELSEWHERE
    for var in variables():
        setting, default = documented[var.env]
        assert setting == f"{var.group}.{var.field}", var.env
        assert default.strip("`") in (var.default, "empty" if var.default == "" else var.default), var.env
