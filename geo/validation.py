"""Validation of request values shared by every read: points, distances, pages, text and the child's age class;
and of every personal text field a write stores (``personal_text``: no 주민등록번호 anywhere).

Every check raises ``geo.errors.InvalidQuery`` naming the parameter; the API maps it to 422 problem+json and
the CLI prints it as one line. Bounds are settings (``max_radius_m``, ``max_page_limit``) or module constants.
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import date, datetime
from urllib.parse import urlsplit

from geo.domain import AGES, KOREA_BBOX_4326, SEOUL_TZ, class_age, in_korea
from geo.errors import InvalidQuery
from geo.settings import Settings

# Larger offsets are no page anybody reads; the bound keeps OFFSET inside PostgreSQL's bigint.
MAX_OFFSET = 1_000_000
MAX_TEXT_LENGTH = 100
# Row ids (serial): PostgreSQL's integer range.
MAX_ID = 2**31 - 1
# A 주민등록번호 (or 외국인등록번호) shape: YYMMDD, an optional dash or space, seven digits, not inside a longer
# number. Checked after NFKC, so full-width digits and dashes count too.
RRN_SHAPE = re.compile(r"(?<!\d)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\s*[-‐‑‒–—―−]?\s*\d{7}(?!\d)")


def validate_point(*, lat: float, lon: float) -> None:
    """Reject coordinates that are not finite, out of range, swapped or outside Korea (EPSG:4326 degrees).

    Raises
    ------
    InvalidQuery
        With ``param`` naming the offending parameter; a lat/lon pair that would lie in Korea once swapped
        (``lat≈127, lon≈37``) says so.
    """
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise InvalidQuery(f"lat and lon must be finite numbers (got lat={lat}, lon={lon})", param="lat,lon")
    if in_korea(lat=lon, lon=lat):
        raise InvalidQuery(
            f"lat={lat}, lon={lon} is not in Korea but lat={lon}, lon={lat} is: lat and lon swapped?",
            param="lat,lon",
        )
    if not -90.0 <= lat <= 90.0:
        raise InvalidQuery(f"lat must be between -90 and 90 degrees (got {lat})", param="lat")
    if not -180.0 <= lon <= 180.0:
        raise InvalidQuery(f"lon must be between -180 and 180 degrees (got {lon})", param="lon")
    if not in_korea(lat=lat, lon=lon):
        lon_min, lat_min, lon_max, lat_max = KOREA_BBOX_4326
        raise InvalidQuery(
            f"lat={lat}, lon={lon} is outside Korea (lon {lon_min}..{lon_max}, lat {lat_min}..{lat_max})",
            param="lat,lon",
        )


def validate_distance_m(value_m: float, *, param: str, settings: Settings) -> float:
    """A search distance in metres: finite, > 0 and at most ``settings.search.max_radius_m``."""
    max_m = settings.search.max_radius_m
    if not math.isfinite(value_m) or value_m <= 0:
        raise InvalidQuery(f"{param} must be a positive number of metres (got {value_m})", param=param)
    if value_m > max_m:
        raise InvalidQuery(f"{param} must be at most {max_m:g} m (got {value_m:g})", param=param)
    return float(value_m)


def validate_page(*, limit: int, offset: int, settings: Settings, param: str = "limit") -> None:
    """``1 <= limit <= settings.search.max_page_limit`` and ``0 <= offset <= MAX_OFFSET``."""
    max_limit = settings.search.max_page_limit
    if limit < 1 or limit > max_limit:
        raise InvalidQuery(f"{param} must be between 1 and {max_limit} (got {limit})", param=param)
    if offset < 0 or offset > MAX_OFFSET:
        raise InvalidQuery(f"offset must be between 0 and {MAX_OFFSET} (got {offset})", param="offset")


def has_control_characters(value: str, *, allowed: str = "") -> bool:
    """Whether ``value`` holds a NUL or another control character (Unicode category Cc) not in ``allowed``."""
    return any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in value)


def clean_text(value: str | None, *, param: str, max_length: int = MAX_TEXT_LENGTH) -> str | None:
    """A free-text parameter: NFC-normalised Hangul, stripped, ``None`` when empty.

    Raises
    ------
    InvalidQuery
        A NUL or other control character (PostgreSQL text cannot hold NUL), or more than ``max_length``
        characters.
    """
    if value is None:
        return None
    reject_control_characters(value, param=param)
    cleaned = unicodedata.normalize("NFC", value).strip()
    if len(cleaned) > max_length:
        raise InvalidQuery(f"{param} must be at most {max_length} characters (got {len(cleaned)})", param=param)
    return cleaned or None


def reject_rrn(value: str | None, *, param: str) -> None:
    """Refuse a value holding a number shaped like a 주민등록번호 (``InvalidQuery`` naming ``param``; the
    message never repeats the number)."""
    if value is not None and RRN_SHAPE.search(unicodedata.normalize("NFKC", value)):
        raise InvalidQuery(f"{param} holds a number shaped like a 주민등록번호; dolbom never stores one",
                           param=param)


def personal_text(value: str | None, *, param: str, max_length: int = MAX_TEXT_LENGTH) -> str | None:
    """A personal text field as it is compared and stored (a display name, a child's name, a phone, a verified
    name): NFC (decomposed Hangul is the same name), runs of whitespace collapsed to one space, stripped; ``None``
    when absent or empty. Never a number shaped like a 주민등록번호 (``900101-1234567``, ``9001011234567``, inside
    other text too).

    Every write of a personal field goes through this one function. Without the normalisation ``"홍길동 "`` or
    the decomposed ``"홍길동"`` was another person than ``"홍길동"`` (and passed the one-person-one-account check).

    Raises
    ------
    InvalidQuery
        Naming ``param``: a 주민등록번호 shape, a control character (C0, DEL or C1 such as U+0085; PostgreSQL
        text cannot hold NUL), an invisible format character (U+200B, U+FEFF, U+202E ...), whitespace only, or
        more than ``max_length`` characters once normalised.
    """
    if value is None or value == "":
        return None
    reject_control_characters(value, param=param)
    # Invisible format characters (zero-width space, joiners, BOM, bidi overrides) would make another person of
    # the same name, as a trailing space did.
    if any(unicodedata.category(ch) == "Cf" for ch in value):
        raise InvalidQuery(f"{param} must not contain invisible format characters such as U+200B", param=param)
    reject_rrn(value, param=param)
    cleaned = " ".join(unicodedata.normalize("NFC", value).split())
    if not cleaned:
        raise InvalidQuery(f"{param} must not be empty or only whitespace", param=param)
    if len(cleaned) > max_length:
        raise InvalidQuery(f"{param} must be at most {max_length} characters (got {len(cleaned)})", param=param)
    return cleaned


def reject_control_characters(value: str | None, *, param: str, allow_whitespace: bool = False) -> None:
    """Reject a text parameter holding a NUL or another control character (``InvalidQuery`` naming ``param``).

    ``allow_whitespace`` lets tab, line feed and carriage return through (a pretty-printed CQL2 JSON filter).
    """
    if value is None:
        return
    allowed = "\t\n\r" if allow_whitespace else ""
    if has_control_characters(value, allowed=allowed):
        raise InvalidQuery(f"{param} must not contain control characters such as NUL", param=param)


def child_age(*, age: int | None = None, birth_date: date | None = None, on: date | None = None) -> int | None:
    """The age class (만 N세반, 0..5) to search for, given directly or from a birth date on ``on`` (default:
    today in Korea); ``None`` when neither is given.

    Raises
    ------
    InvalidQuery
        Both given, age outside 0..5, birth date in the future, or a child too old for 어린이집 classes.
    """
    if age is not None and birth_date is not None:
        raise InvalidQuery("give either age or birth_date, not both", param="age,birth_date")
    if age is not None:
        if age not in AGES:
            raise InvalidQuery(f"age must be an age class between {AGES[0]} and {AGES[-1]} (got {age})",
                               param="age")
        return age
    if birth_date is None:
        return None
    today = on or datetime.now(SEOUL_TZ).date()
    if birth_date > today:
        raise InvalidQuery(f"birth_date {birth_date.isoformat()} is in the future (today is {today.isoformat()})",
                           param="birth_date")
    derived = class_age(birth_date, today)
    if derived not in AGES:
        raise InvalidQuery(f"a child born on {birth_date.isoformat()} is in the 만{derived}세반 on "
                           f"{today.isoformat()}; 어린이집 classes are 만0-5세", param="birth_date")
    return derived


def korean_wall_clock(moment: datetime, *, param: str = "open_at") -> datetime:
    """Korean wall-clock time of ``moment`` (naive datetimes are taken as Korean time already).

    Raises
    ------
    InvalidQuery
        The moment lies outside the years 1..9999 once in Korean time (``0001-01-01T00:00+14:00``).
    """
    if moment.tzinfo is None:
        return moment
    try:
        return moment.astimezone(SEOUL_TZ).replace(tzinfo=None)
    except OverflowError:
        raise InvalidQuery(f"{param} {moment.isoformat()} is outside the years 1 to 9999 in Korean time",
                           param=param) from None


# Korean numbers once separators are removed: 0 + area/mobile prefix + 7-8 digits (02-123-4567 .. 0505-123-4567),
# +82 without the trunk 0, or a nationwide 15xx/16xx/18xx number of 8 digits.
_PHONE_SHAPE = re.compile(r"^\+?[0-9][0-9 ().-]*[0-9]$")
_PHONE_DIGITS = re.compile(r"^(?:0\d{8,10}|82\d{8,10}|1[5-9]\d{6})$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# A mistyped separator after http(s) ("http:cafe...", "http//www...", "http:'//..."): written as "://".
_BROKEN_HTTP = re.compile(r"^(https?)(?:[:;]+['/\\]*|['/\\]+)(?=[A-Za-z0-9])", re.IGNORECASE)
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]{1,62}$")


def is_phone_number(value: str) -> bool:
    """Whether ``value`` is a telephone number (digits with ``-``, spaces, dots or brackets; a Korean number
    of 9 to 11 digits, ``+82``, or a nationwide 15xx number), not markup or prose."""
    if not _PHONE_SHAPE.match(value):
        return False
    return bool(_PHONE_DIGITS.match(re.sub(r"[^0-9]", "", value)))


def web_url(value: str) -> str | None:
    """The ``http``/``https`` address ``value`` names, or None when it names none.

    A bare host and path (``cafe.naver.com/x``, as official files often write it) gets ``http://``, a mistyped
    separator (``http:cafe.naver.com``, ``http//www.x.kr``) becomes ``://``; any other
    scheme (``javascript:``, ``data:``, ``mailto:``), an e-mail address, markup or text with spaces is None.
    """
    value = _BROKEN_HTTP.sub(r"\1://", value.strip())
    if not value or has_control_characters(value) or any(c in value for c in " <>\"'`\\"):
        return None
    if not _SCHEME.match(value):
        value = "http://" + value
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or "@" in parts.netloc:
        return None
    try:
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        return None
    if not _HOST.match(host):
        return None
    return value
