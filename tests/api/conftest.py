"""Fixtures of the API tests: one headless chromium per browser test module (tests/browserutil.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.browserutil import launch_chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium for the module's tests (every context blocks hosts other than 127.0.0.1)."""
    with launch_chromium() as chromium:
        yield chromium
