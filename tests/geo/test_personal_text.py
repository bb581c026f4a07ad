"""``geo.validation.personal_text``: the one check of every personal text field refuses numbers shaped like a
주민등록번호 (6 + 7 digits, the first six a date) wherever they appear, and lets phones, dates and names through."""

from __future__ import annotations

import pytest

from geo.errors import InvalidQuery
from geo.validation import personal_text


@pytest.mark.parametrize("value", ["010-1234-5678", "+82-10-1234-5678", "01012345678", "홍길순", "2025-06-01",
                                   "1990-03-04", "123456", "90010-1234567", "900101-123456", "901301-1234567",
                                   "12345678901234"])
def test_ordinary_values_pass(value: str) -> None:
    assert personal_text(value, param="f") == value


@pytest.mark.parametrize("value", ["900101-1234567", "9001011234567", " 900101 - 1234567 ", "이름900101-1234567",
                                   "９００１０１１２３４５６７", "001231–4234567"])
def test_rrn_shapes_are_refused(value: str) -> None:
    with pytest.raises(InvalidQuery, match="주민등록번호") as refused:
        personal_text(value, param="child_name")
    assert refused.value.extra["param"] == "child_name" and value.strip() not in refused.value.detail
