"""Safe to put in front of a city (issue #20): personal texts normalised before the one-person-one-account check,
NUL never a 500 in any operation's body, every 429 with Retry-After, private answers never cached."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text

from geo.settings import Settings
from geo.validation import personal_text
from tests.accounts_util import mailed_token
from tests.booking_util import ORIGIN_LAT, ORIGIN_LON, bearer, make_centre, make_slot, make_user
from tests.dbutil import client_on
from tests.problem_util import problem as _problem

PASSWORD = "correct horse battery"
COORDINATES = {"lat": ORIGIN_LAT, "lon": ORIGIN_LON}


def _signup_token(client: TestClient, connection: Connection, email: str) -> dict[str, str]:
    """Sign up through the API and confirm the address with the mailed token (as a parent would)."""
    assert client.post("/auth/signup", json={"email": email, "password": PASSWORD}).status_code == 202
    token = mailed_token(connection, email)
    assert client.post("/auth/confirm-email", json={"token": token}).status_code in (200, 204)
    token = client.post("/auth/token", json={"email": email, "password": PASSWORD}).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def _verify(client: TestClient, auth: dict[str, str], name: str) -> Any:
    state = client.post("/auth/identity/start", headers=auth).json()["state"]
    return client.post("/auth/identity/local", headers=auth,
                       json={"state": state, "name": name, "birth_date": "1990-03-04"})


# --- personal texts -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["김엄마", "김엄마 ", " 김엄마", unicodedata.normalize("NFD", "김엄마"),
                                     "김엄마\u00a0"],
                         ids=["same", "trailing-space", "leading-space", "decomposed", "nbsp"])
def test_one_person_one_account_survives_spaces_and_decomposed_hangul(settings: Settings, connection: Connection,
                                                                     variant: str) -> None:
    client = client_on(settings, connection)
    first = _signup_token(client, connection, "first@example.kr")
    assert _verify(client, first, "김엄마").status_code == 200
    second = _signup_token(client, connection, "second@example.kr")
    _problem(_verify(client, second, variant), 409)


def test_verified_name_is_stored_normalised(settings: Settings, connection: Connection) -> None:
    client = client_on(settings, connection)
    auth = _signup_token(client, connection, "nfd@example.kr")
    resp = _verify(client, auth, "  " + unicodedata.normalize("NFD", "김  엄마") + " ")
    assert resp.status_code == 200, resp.text
    assert resp.json()["verified_name"] == "김 엄마"
    stored = connection.execute(text("SELECT verified_name FROM users WHERE email = 'nfd@example.kr'")).scalar_one()
    assert stored == "김 엄마" and unicodedata.is_normalized("NFC", stored)


@pytest.mark.parametrize("bad", ["\u0085", "\u0095", "\x00", "\x1b", "\x7f", "\n", "\u200b", "\ufeff", "\u202e"])
def test_control_characters_in_personal_texts_are_422_naming_the_field(settings: Settings, connection: Connection,
                                                                      bad: str) -> None:
    client = client_on(settings, connection)
    auth = _signup_token(client, connection, "ctl@example.kr")
    body = _problem(_verify(client, auth, f"김{bad}엄마"))
    assert "name" in body["detail"]
    _problem(client.post("/auth/signup", json={"email": "x@example.kr", "password": PASSWORD,
                                               "display_name": f"엄마{bad}"}))


@pytest.mark.parametrize("blank", ["", " ", "\u3000", " \u00a0 "])
def test_whitespace_only_names_are_422(settings: Settings, connection: Connection, blank: str) -> None:
    client = client_on(settings, connection)
    auth = _signup_token(client, connection, "blank@example.kr")
    body = _problem(_verify(client, auth, blank))
    assert body.get("param") == "name" or "name" in body["detail"]


def test_non_ascii_identity_state_is_401_not_500(settings: Settings, connection: Connection) -> None:
    client = client_on(settings, connection)
    auth = _signup_token(client, connection, "state@example.kr")
    client.post("/auth/identity/start", headers=auth)
    _problem(client.post("/auth/identity/local", headers=auth,
                         json={"state": "가나다", "name": "김엄마", "birth_date": "1990-03-04"}), 401)


def test_personal_text_function() -> None:
    assert personal_text(" 홍  길동\u3000", param="name") == "홍 길동"
    assert personal_text(unicodedata.normalize("NFD", "홍길동"), param="name") == "홍길동"
    # Absent is None (optional fields); whitespace only is refused like a control character.
    assert personal_text("", param="name") is None
    for bad in ("\u0085", "\u0095", "a\x00b", "\x9f", " \u3000 ", "김\u200b"):
        with pytest.raises(Exception, match="name"):
            personal_text(bad, param="name")


# --- NUL in bodies ------------------------------------------------------------------------------------------


def test_nul_in_booking_child_name_and_emergency_centre_is_422(settings: Settings, connection: Connection) -> None:
    own = make_centre(connection, "T-NUL-1", lon=ORIGIN_LON + 0.003, lat=ORIGIN_LAT)
    parent = make_user(connection, "parent@example.kr", "parent")
    staff = make_user(connection, "staff@example.kr", "centre_staff", (own,))
    client = client_on(settings, connection)
    slot = make_slot(connection, own, places_by_age={"2": 2})
    booking = {"slot_id": slot, "child_age": 2, "phone": "010-1234-5678", "child_name": "아이\u0000"}
    body = _problem(client.post("/bookings", json=booking, headers=bearer(connection, settings, parent)))
    assert "child_name" in body["detail"]
    emergency = {"lat": ORIGIN_LAT, "lon": ORIGIN_LON, "child_age": 2, "phone": "010-1234-5678", "radius_m": 1000}
    made = client.post("/bookings/emergency", json=emergency, headers=bearer(connection, settings, parent))
    assert made.status_code == 201, made.text
    body = _problem(client.post(f"/bookings/emergency/{made.json()['id']}/accept", json={"centre": "T-NUL\u00001"},
                                headers=bearer(connection, settings, staff)))
    assert "centre" in body["detail"]


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _sample(doc: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A value of ``schema`` that would pass validation where the schema says enough (examples, enums, formats)."""
    schema = _resolve(doc, schema)
    if "anyOf" in schema:
        return _sample(doc, next(s for s in schema["anyOf"] if s.get("type") != "null"))
    if "examples" in schema:
        return schema["examples"][0]
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    kind = schema.get("type")
    if kind == "object":
        if "properties" in schema:
            return {name: COORDINATES.get(name, _sample(doc, sub)) for name, sub in schema["properties"].items()}
        return {"2": 1}
    if kind == "array":
        return [_sample(doc, schema.get("items", {}))]
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return False
    return {"date": "2026-12-25", "date-time": "2026-12-25T09:00:00+09:00", "email": "a@example.kr"}.get(
        schema.get("format", ""), "가나다")


def _string_paths(doc: dict[str, Any], schema: dict[str, Any], path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a body of ``schema`` that holds a string (object keys of free-form maps included)."""
    schema = _resolve(doc, schema)
    if "anyOf" in schema:
        return [p for sub in schema["anyOf"] if sub.get("type") != "null" for p in _string_paths(doc, sub, path)]
    kind = schema.get("type")
    if kind == "object" and "properties" in schema:
        return [p for name, sub in schema["properties"].items() for p in _string_paths(doc, sub, (*path, name))]
    if kind == "object":
        return [(*path, "<key>")]
    if kind == "array":
        return _string_paths(doc, schema.get("items", {}), (*path, 0))
    return [path] if kind == "string" or (kind is None and "enum" not in schema) else []


def _with_nul(value: Any, path: tuple[Any, ...]) -> Any:
    if isinstance(value, str):  # the end of the path, or a union whose sample took the string (sortby: a | [a])
        path = ()
    if not path:
        return "\u0000" if not isinstance(value, str) else value[:1] + "\u0000" + value[1:]
    head, rest = path[0], path[1:]
    if head == "<key>":
        return {"2\u0000": next(iter(value.values()), 1)}
    copy = list(value) if isinstance(value, list) else dict(value)
    copy[head] = _with_nul(copy[head], rest)
    return copy


def test_nul_in_every_string_of_every_operation_is_never_a_server_error(settings: Settings,
                                                                       connection: Connection) -> None:
    own = make_centre(connection, "T-NUL-1", lon=ORIGIN_LON + 0.003, lat=ORIGIN_LAT)
    callers = {role: bearer(connection, settings, make_user(connection, f"{role}@example.kr", role,
                                                             (own,) if role == "centre_staff" else ()))
               for role in ("parent", "centre_staff", "city_admin")}
    slot = make_slot(connection, own, places_by_age={"2": 2})
    with client_on(settings, connection) as client:
        tried = _walk(client, callers, {"code": "T-NUL-1", "slot_id": slot, "centre": "T-NUL-1"})
    assert tried > 100


def _walk(client: TestClient, callers: dict[str, dict[str, str]], path_values: dict[str, Any]) -> int:
    """Send NUL in each string of each operation, as each caller; assert no 5xx; return how many requests."""
    doc = client.get("/openapi.json").json()
    tried = 0
    for template, item in doc["paths"].items():
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete") or template == "/vacancy/stream":
                continue
            path = template
            for param in op.get("parameters", []):
                if param["in"] == "path":
                    value = path_values.setdefault(param["name"], _sample(doc, param.get("schema", {})))
                    path = path.replace("{" + param["name"] + "}", str(value))
            queries = [p for p in op.get("parameters", []) if p["in"] == "query"]
            base_query = {p["name"]: _sample(doc, p["schema"]) for p in queries if p.get("required")}
            cases: list[tuple[dict[str, Any], Any]] = []
            for param in op.get("parameters", []):
                if param["in"] == "path" and _string_paths(doc, param.get("schema", {})):
                    nul_path = path.replace(str(path_values.get(param["name"], "")) or "\uffff", "%00", 1)
                    if nul_path != path:
                        resp = client.request(method.upper(), nul_path, headers=callers["city_admin"])
                        tried += 1
                        assert resp.status_code < 500, (method, nul_path, resp.status_code, resp.text)
            for param in queries:
                if _string_paths(doc, param.get("schema", {})):
                    cases.append(({**base_query, param["name"]: "가\u0000"}, None))
            body_schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body_schema is not None:
                body = _sample(doc, body_schema)
                cases += [(base_query, _with_nul(body, p)) for p in _string_paths(doc, body_schema)]
            for query, body in cases:
                for auth in callers.values():
                    resp = client.request(method.upper(), path, params=query, json=body, headers=auth)
                    tried += 1
                    assert resp.status_code < 500, (method, path, query, body, resp.status_code, resp.text)
    return tried


# --- 429 and Retry-After ------------------------------------------------------------------------------------


def test_every_error_answered_429_carries_retry_after(settings: Settings) -> None:
    """Every domain error the one table maps to 429, raised from a route, answers with ``Retry-After``."""
    from api.app import create_app
    from api.errors import STATUS_BY_ERROR

    limited = [error for error, status in STATUS_BY_ERROR.items() if status == 429]
    assert limited
    app = create_app(settings)

    def raiser(error: type, **extra: Any) -> Any:
        def raise_it() -> None:
            raise error("slow down", **extra)
        return raise_it

    for error in limited:
        app.add_api_route(f"/test-429/{error.__name__}", raiser(error, retry_after_s=42))
        app.add_api_route(f"/test-429-bare/{error.__name__}", raiser(error))  # no retry_after_s: a default
    def framework_429() -> None:
        from fastapi import HTTPException

        raise HTTPException(status_code=429, detail="slow down")

    app.add_api_route("/test-429-http", framework_429)
    client = TestClient(app)
    plain = client.get("/test-429-http")
    assert _problem(plain, 429) and int(plain.headers["retry-after"]) > 0
    for error in limited:
        resp = client.get(f"/test-429/{error.__name__}")
        assert _problem(resp, 429) and resp.headers["retry-after"] == "42"
        bare = client.get(f"/test-429-bare/{error.__name__}")
        assert _problem(bare, 429) and int(bare.headers["retry-after"]) > 0


def test_login_lockout_429_carries_retry_after(settings: Settings, connection: Connection) -> None:
    strict = settings.updated(DOLBOM_LOGIN_MAX_FAILURES=2, DOLBOM_LOGIN_LOCKOUT_MINUTES=10.0)
    client = client_on(strict, connection)
    client.post("/auth/signup", json={"email": "lock@example.kr", "password": PASSWORD})
    for path in ("/auth/token", "/auth/token", "/auth/login"):
        client.post(path, json={"email": "lock@example.kr", "password": "wrong password"})
    for path in ("/auth/token", "/auth/login"):
        resp = client.post(path, json={"email": "lock@example.kr", "password": PASSWORD})
        body = _problem(resp, 429)
        assert resp.headers["retry-after"] == str(body["retry_after_s"]) and 0 < body["retry_after_s"] <= 600


# --- private answers are never cached -----------------------------------------------------------------------


LAST_OPERATIONS = {("post", "/auth/logout"), ("post", "/auth/logout-all"), ("delete", "/auth/me"),
                   ("post", "/auth/password")}


def test_every_authenticated_operation_answers_no_store(settings: Settings, connection: Connection) -> None:
    own = make_centre(connection, "T-PRIV-1", lon=ORIGIN_LON + 0.003, lat=ORIGIN_LAT)
    callers = {role: bearer(connection, settings, make_user(connection, f"{role}@example.kr", role,
                                                             (own,) if role == "centre_staff" else ()))
               for role in ("parent", "centre_staff", "city_admin")}
    with client_on(settings, connection) as client:
        doc = client.get("/openapi.json").json()
        checked = 0
        for template, item in doc["paths"].items():
            for method, op in item.items():
                # Logging out is checked below, once the rest is done (logging out everywhere, deleting the account
                # and changing the password end the callers' sessions too, so they are checked there as well).
                if method not in ("get", "post", "put", "patch", "delete") or not op.get("security") \
                        or (method, template) in LAST_OPERATIONS:
                    continue
                # Whatever the answer (200, 403, 404, 422): it was given to an identified caller.
                path = template
                for param in op.get("parameters", []):
                    if param["in"] == "path":
                        sample = "T-PRIV-1" if _resolve(doc, param["schema"]).get("type") != "integer" else 1
                        path = path.replace("{" + param["name"] + "}", str(sample))
                body = None
                schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
                if schema is not None:
                    body = _sample(doc, schema)
                for auth in callers.values():
                    resp = client.request(method.upper(), path, json=body, headers=auth)
                    assert "no-store" in resp.headers.get("cache-control", ""), (method, path, resp.status_code)
                    checked += 1
        for path, body in (("/auth/token", {"email": "parent@example.kr", "password": "x"}),
                           ("/auth/login", {"email": "parent@example.kr", "password": "x"})):
            assert "no-store" in client.post(path, json=body).headers.get("cache-control", "")
        for auth in callers.values():
            logout = client.post("/auth/logout", headers=auth)
            assert logout.status_code == 204 and "no-store" in logout.headers["cache-control"]
        signup = client.post("/auth/signup", json={"email": "new@example.kr", "password": PASSWORD})
        assert signup.status_code == 202 and "no-store" in signup.headers["cache-control"]
        token = client.post("/auth/token", json={"email": "new@example.kr", "password": PASSWORD})
        assert token.status_code == 200 and "no-store" in token.headers["cache-control"]
    assert checked > 50


def test_public_answers_stay_cacheable(settings: Settings, connection: Connection) -> None:
    with client_on(settings, connection) as client:
        for path in ("/ogc/conformance", "/openapi.json", "/static/map.js"):
            assert "no-store" not in client.get(path).headers.get("cache-control", "")


# --- body caps ----------------------------------------------------------------------------------------------


def test_body_caps_per_route(settings: Settings, connection: Connection) -> None:
    client = client_on(settings.updated(DOLBOM_MAX_BODY_BYTES=4096), connection)
    padded = {"email": "a@example.kr", "password": "x" * 900}
    assert client.post("/auth/login", json=padded).status_code == 401
    over = {"email": "a@example.kr", "password": "x" * 5000}
    body = _problem(client.post("/auth/login", json=over), 413)
    assert body["max_body_bytes"] == 4096
    # Streamed without a length: counted as it arrives.
    chunks = (b'{"email": "a@example.kr", "password": "' + b"x" * 1000 for _ in range(10))
    _problem(client.post("/auth/login", content=chunks, headers={"content-type": "application/json"}), 413)
    # A route that needs more takes more (a booking pattern with a year of exceptions).
    resp = client.post("/bookings/centres/NONE/patterns", content=b" " * 8000 + b"{}",
                       headers={"content-type": "application/json"})
    assert resp.status_code != 413


# --- login throttle behind a shared address -----------------------------------------------------------------


def test_a_shared_address_is_not_locked_out_for_everyone(settings: Settings, connection: Connection) -> None:
    """Behind a proxy every user shares (one client address), a guesser's failures do not lock the others out;
    the guessed accounts get no second try, and ten times the limit locks the address for everyone."""
    strict = settings.updated(DOLBOM_LOGIN_MAX_FAILURES=100, DOLBOM_LOGIN_IP_MAX_FAILURES=4)
    client = client_on(strict, connection)
    for who in ("real", "late"):
        client.post("/auth/signup", json={"email": f"{who}@example.kr", "password": PASSWORD})
    for i in range(4):
        _problem(client.post("/auth/token", json={"email": f"guess{i}@example.kr", "password": "x" * 12}), 401)
    assert client.post("/auth/token", json={"email": "real@example.kr", "password": PASSWORD}).status_code == 200
    resp = client.post("/auth/token", json={"email": "guess0@example.kr", "password": "x" * 12})
    _problem(resp, 429)
    assert int(resp.headers["retry-after"]) > 0
    for i in range(4, 40):
        client.post("/auth/token", json={"email": f"guess{i}@example.kr", "password": "x" * 12})
    _problem(client.post("/auth/token", json={"email": "late@example.kr", "password": PASSWORD}), 429)


# --- Secure cookies -----------------------------------------------------------------------------------------


def _login_cookies(client: TestClient) -> dict[str, str]:
    resp = client.post("/auth/login", json={"email": "cookie@example.kr", "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    return {c.split("=", 1)[0]: c for c in resp.headers.get_list("set-cookie")}


@pytest.mark.parametrize(("base_url", "setting", "secure"), [
    ("http://testserver", None, True),  # plain HTTP on a public name: Secure (the browser keeps it off HTTP)
    ("http://dolbom.seoul.kr", None, True),
    ("https://dolbom.seoul.kr", None, True),
    ("http://127.0.0.1:8000", None, False),  # a laptop
    ("http://localhost:8000", None, False),
    ("http://[::1]:8000", None, False),
    ("http://127.0.0.1:8000", True, True),  # the setting forces either way
    ("https://dolbom.seoul.kr", False, False),
])
def test_cookies_are_secure_unless_plain_http_on_loopback(settings: Settings, connection: Connection,
                                                          base_url: str, setting: bool | None, secure: bool) -> None:
    client = client_on(settings.updated(DOLBOM_COOKIE_SECURE=setting), connection)
    client.base_url = base_url  # type: ignore[assignment]
    client.post("/auth/signup", json={"email": "cookie@example.kr", "password": PASSWORD})
    cookies = _login_cookies(client)
    for name in ("dolbom_session", "dolbom_csrf"):
        assert ("; Secure" in cookies[name]) is secure, cookies[name]
    token = client.post("/auth/token", json={"email": "cookie@example.kr", "password": PASSWORD}).json()
    start = client.post("/auth/identity/start", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert ("; Secure" in start.headers["set-cookie"]) is secure


def test_default_cookie_setting_is_automatic() -> None:
    from geo.settings import AuthSettings

    assert AuthSettings.model_fields["cookie_secure"].default is None


# --- development defaults -----------------------------------------------------------------------------------

PRODUCTION = {"DOLBOM_ENV": "production", "DOLBOM_IDENTITY_PROVIDER": "oidc", "DOLBOM_CI_HASH_KEY": "k" * 32,
              "DOLBOM_IDEMPOTENCY_HASH_KEY": "i" * 32, "DOLBOM_LOG_KEY_FILE": "/etc/dolbom/waitlist-log.key"}


def test_production_refuses_the_local_provider_and_published_keys() -> None:
    from geo.settings import SettingsError

    with pytest.raises(SettingsError) as refused:
        Settings(DOLBOM_ENV="production")
    detail = refused.value.detail
    assert "\n" not in detail and "DOLBOM_IDENTITY_PROVIDER=local" in detail and "DOLBOM_CI_HASH_KEY" in detail
    with pytest.raises(SettingsError, match="DOLBOM_CI_HASH_KEY") as refused:
        Settings(DOLBOM_ENV="production", DOLBOM_IDENTITY_PROVIDER="oidc", DOLBOM_IDEMPOTENCY_HASH_KEY="i" * 32)
    assert "DOLBOM_IDENTITY_PROVIDER" not in refused.value.detail
    with pytest.raises(SettingsError, match="DOLBOM_IDENTITY_PROVIDER=local"):
        Settings(DOLBOM_ENV="production", DOLBOM_CI_HASH_KEY="k" * 32, DOLBOM_IDEMPOTENCY_HASH_KEY="i" * 32)
    with pytest.raises(SettingsError, match="DOLBOM_IDEMPOTENCY_HASH_KEY"):
        Settings(DOLBOM_ENV="production", DOLBOM_IDENTITY_PROVIDER="oidc", DOLBOM_CI_HASH_KEY="k" * 32)
    with pytest.raises(SettingsError, match="DOLBOM_LOG_KEY_FILE") as refused:  # the log's development key
        Settings(**{k: v for k, v in PRODUCTION.items() if k != "DOLBOM_LOG_KEY_FILE"})
    assert "DOLBOM_CI_HASH_KEY" not in refused.value.detail
    assert Settings(**PRODUCTION).server.environment == "production"
    from geo.settings import ServerSettings

    assert ServerSettings.model_fields["environment"].default == "development"


def test_the_app_server_refuses_to_start_in_production_with_development_identity(tmp_path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "DOLBOM_ENV": "production", "DOLBOM_HOME": str(tmp_path)}
    env.pop("DOLBOM_IDENTITY_PROVIDER", None)
    env.pop("DOLBOM_CI_HASH_KEY", None)
    done = subprocess.run([sys.executable, "-c", "from api.app import create_app; create_app()"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: invalid settings") and "DOLBOM_IDENTITY_PROVIDER" in lines[0]


def test_health_says_development_and_why(settings: Settings, connection: Connection) -> None:
    with client_on(settings, connection) as client:
        health = client.get("/health").json()
    assert health["environment"] == "development"
    assert any("DOLBOM_IDENTITY_PROVIDER=local" in w for w in health["warnings"])
    assert any("DOLBOM_CI_HASH_KEY" in w for w in health["warnings"])
    with client_on(settings.updated(**PRODUCTION), connection) as client:
        health = client.get("/health").json()
    assert health["environment"] == "production" and health["warnings"] == []


def test_openapi_documents_413_and_retry_after(settings: Settings, connection: Connection) -> None:
    with client_on(settings, connection) as client:
        doc = client.get("/openapi.json").json()
    with_body = [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()
                 if isinstance(op, dict) and op.get("requestBody")]
    assert with_body
    for path, method, op in with_body:
        assert "413" in op["responses"], (method, path)
    limited = [op["responses"]["429"] for item in doc["paths"].values() for op in item.values()
               if isinstance(op, dict) and "429" in op.get("responses", {})]
    assert limited and all("Retry-After" in response["headers"] for response in limited)
