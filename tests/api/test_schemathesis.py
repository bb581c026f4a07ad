"""Property-based run of schemathesis over the OpenAPI document against the app on the real Seoul data (ASGI, the
app's own lifespan and read pool): for every operation, generated requests (valid and invalid per the schema) never
get a 5xx, and every answer is documented: its status code, its content type and its body's schema (problem+json
errors included). Bounded and deterministic: ``MAX_EXAMPLES`` per operation and mode, a fixed seed.

The accounts, admin and vacancy operations write (users, tokens, reports): they run against their own throw-away
database holding the small search fixture, with a city admin's bearer token on the operations that identify the
caller (so generated requests get past authentication), and SSE streams bounded to a fraction of a second.

(The operations are parametrised here and driven with ``hypothesis.given`` rather than schemathesis' pytest
plugin, whose fixture-based loader does not run under pytest 9.)
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine

from api.app import create_app
from geo.auth.accounts import create_user, issue_token
from geo.db import make_engine
from geo.settings import Settings
from tests.search_data import insert_search_fixture

MAX_EXAMPLES = 20
WRITING_PREFIXES = ("/auth", "/admin", "/vacancy")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Every documented operation; building the app and its OpenAPI connects to nothing.
SPEC = create_app(Settings()).openapi()
OPERATIONS = [(method.upper(), path) for path, methods in SPEC["paths"].items() for method in methods]
# Negative cases need something to break: operations without parameters get positive cases only.
CASES = [(method, path, mode) for method, path in OPERATIONS for mode in GenerationMode
         if mode is GenerationMode.POSITIVE or SPEC["paths"][path][method.lower()].get("parameters")]


@pytest.fixture(scope="module")
def api_schema(settings: Settings, seoul_engine: Engine) -> Any:
    """The app's OpenAPI, loaded through ASGI from the app that then answers the generated requests."""
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(settings))


@pytest.fixture(scope="module")
def accounts_app(make_database: Any) -> tuple[Any, Settings]:
    """The OpenAPI of an app on a throw-away database (search fixture, one city admin), and its settings."""
    engine = make_database("schemathesis_accounts")
    with engine.begin() as conn:
        insert_search_fixture(conn)
    settings = Settings(DATABASE_URL=engine.url.render_as_string(hide_password=False),
                        DOLBOM_VACANCY_STREAM_MAX_S=0.05)
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(settings)), settings


def _admin_token(settings: Settings) -> str:
    """A bearer token of a new city admin (one per operation: a generated logout may revoke it)."""
    engine = make_engine(settings=settings)
    try:
        with engine.begin() as conn:
            user_id = create_user(conn, email=f"admin-{uuid.uuid4().hex}@example.org", password="correct horse",
                                  role="city_admin")
            return issue_token(conn, settings, user_id=user_id, kind="bearer").secret
    finally:
        engine.dispose()


def test_every_operation_is_covered(api_schema: Any) -> None:
    loaded = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert loaded == set(OPERATIONS) and len(loaded) >= 7


@pytest.mark.slow
# Schemathesis' negative generator still calls `random` inside a strategy (its problem, not the API's).
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=[f"{m} {p} {g.value}" for m, p, g in CASES])
def test_api_conforms_to_its_openapi(request: pytest.FixtureRequest, method: str, path: str,
                                     mode: GenerationMode) -> None:
    headers: dict[str, str] = {}
    if path.startswith(WRITING_PREFIXES):
        schema, settings = request.getfixturevalue("accounts_app")
        if "401" in SPEC["paths"][path][method.lower()]["responses"]:
            headers["Authorization"] = "Bearer " + _admin_token(settings)
    else:
        schema = request.getfixturevalue("api_schema")
    operation = schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis_settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        case.call_and_validate(checks=CHECKS, headers=headers)

    run()
