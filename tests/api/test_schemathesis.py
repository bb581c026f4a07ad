"""Property-based run of schemathesis over the OpenAPI document against the app on the real Seoul data (ASGI, the
app's own lifespan and read pool): for every operation, generated requests (valid and invalid per the schema) never
get a 5xx, and every answer is documented: its status code, its content type and its body's schema (problem+json
errors included). Bounded and deterministic: ``MAX_EXAMPLES`` per operation and mode, a fixed seed.

(The operations are parametrised here and driven with ``hypothesis.given`` rather than schemathesis' pytest
plugin, whose fixture-based loader does not run under pytest 9.)
"""

from __future__ import annotations

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
from geo.settings import Settings

MAX_EXAMPLES = 30
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


def test_every_operation_is_covered(api_schema: Any) -> None:
    loaded = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert loaded == set(OPERATIONS) and len(loaded) >= 7


@pytest.mark.slow
# Schemathesis' negative generator still calls `random` inside a strategy (its problem, not the API's).
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=[f"{m} {p} {g.value}" for m, p, g in CASES])
def test_api_conforms_to_its_openapi(api_schema: Any, method: str, path: str, mode: GenerationMode) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis_settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        case.call_and_validate(checks=CHECKS)

    run()
