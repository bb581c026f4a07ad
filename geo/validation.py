"""Validation of request values shared by every read: points, distances, pages, text and the child's age class.

Every check raises ``geo.errors.InvalidQuery`` naming the parameter; the API maps it to 422 problem+json and
the CLI prints it as one line. Bounds are settings (``max_radius_m``, ``max_page_limit``) or module constants.
"""

from __future__ import annotations

import math
import unicodedata
from datetime import date, datetime

from geo.domain import AGES, KOREA_BBOX_4326, SEOUL_TZ, class_age, in_korea
from geo.errors import InvalidQuery
from geo.settings import Settings

# Larger offsets are no page anybody reads; the bound keeps OFFSET inside PostgreSQL's bigint.
MAX_OFFSET = 1_000_000
MAX_TEXT_LENGTH = 100
# Row ids (serial): PostgreSQL's integer range.
MAX_ID = 2**31 - 1


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


def personal_text(value: str, *, field: str, max_length: int = MAX_TEXT_LENGTH) -> str:
    """A personal text (a person's or a child's name, a display name, a phone number) as it is compared and
    stored: NFC (decomposed Hangul is the same name), runs of whitespace collapsed to one space, stripped.

    Without this, ``"홍길동 "`` or the decomposed ``"홍길동"`` was another person than ``"홍길동"`` (and passed the
    one-person-one-account check).

    Raises
    ------
    InvalidQuery
        ``field`` holds a control character (C0, DEL or C1 such as U+0085; PostgreSQL text cannot hold NUL)
        or an invisible format character (U+200B, U+FEFF, U+202E ...), is empty or whitespace only, or is
        longer than ``max_length`` characters once normalised.
    """
    if has_control_characters(value):
        raise InvalidQuery(f"{field} must not contain control characters such as NUL", param=field, field=field)
    # Invisible format characters (zero-width space, joiners, BOM, bidi overrides) would make another person of
    # the same name, as a trailing space did.
    if any(unicodedata.category(ch) == "Cf" for ch in value):
        raise InvalidQuery(f"{field} must not contain invisible format characters such as U+200B", param=field,
                           field=field)
    cleaned = " ".join(unicodedata.normalize("NFC", value).split())
    if not cleaned:
        raise InvalidQuery(f"{field} must not be empty or only whitespace", param=field, field=field)
    if len(cleaned) > max_length:
        raise InvalidQuery(f"{field} must be at most {max_length} characters (got {len(cleaned)})", param=field,
                           field=field)
    return cleaned
