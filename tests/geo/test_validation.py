"""The shared value checks of geo.validation used by importers: web addresses and phone numbers."""

from __future__ import annotations

import pytest

from geo.validation import is_phone_number, web_url


@pytest.mark.parametrize(("value", "expected"), [
    ("https://m.cafe.naver.com", "https://m.cafe.naver.com"),
    ("http://dolbom.example.kr/a?b=1", "http://dolbom.example.kr/a?b=1"),
    ("cafe.naver.com/dolbom", "http://cafe.naver.com/dolbom"),
    ("javascript:alert(1)", None),
    ("JavaScript:alert(1)", None),
    ("data:text/html,<script>", None),
    ("mailto:a@b.kr", None),
    ("sunhwa@hanmail.net", None),
    ("http://user@evil.example.com", None),
    ("<a href=x>home</a>", None),
    ("키즈노트", None),
    ("http//www.x.com", "http://www.x.com"),
    ("http:cafe.daum.net/x", "http://cafe.daum.net/x"),
    ("http:'//cafe.naver.com/eden", "http://cafe.naver.com/eden"),
    ("httpbin.org/get", "http://httpbin.org/get"),
    ("htt://club.cyworld.com/x", None),
    ("http://cafe,naver.com/x", None),
    ("http://x.com\n", "http://x.com"),
    ("http://x.com/\x00", None),
])
def test_web_url(value: str, expected: str | None) -> None:
    assert web_url(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("02-2061-2282", True), ("010-1234-5678", True), ("031)123-4567", True), ("+82-10-1234-5678", True),
    ("1588-1234", True), ("02-578-884", False), ("-576-8076", False), ("<b>02-123-4567</b>", False),
    ("javascript:1", False), ("전화 02-123-4567", False),
])
def test_is_phone_number(value: str, expected: bool) -> None:
    assert is_phone_number(value) is expected
