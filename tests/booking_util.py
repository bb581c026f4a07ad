"""Helpers for booking tests: centres at known points, users of each role with bearer headers, slots."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, text

from geo.auth.accounts import issue_token
from geo.auth.identity import LocalTestProvider, store_identity
from geo.settings import Settings

# A point in 마포구 (Seoul); test centres are placed at known offsets from it.
ORIGIN_LON, ORIGIN_LAT = 126.9100, 37.5560


def make_centre(conn: Connection, code: str, *, lon: float = ORIGIN_LON, lat: float = ORIGIN_LAT,
                services: tuple[str, ...] = ("holiday", "twenty_four_hour"), name: str | None = None) -> int:
    """Insert an operating centre at (lon, lat) offering ``services``; returns its id."""
    return int(conn.execute(text(
        "INSERT INTO facilities (code, name, facility_type, status, services, geocode_quality, source, phone, "
        "geom_4326) VALUES (:code, :name, 'national_public', 'active', CAST(:services AS text[]), 'source', "
        "'test', '02-000-0000', ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) RETURNING id"),
        {"code": code, "name": name or f"테스트어린이집{code}", "services": list(services), "lon": lon,
         "lat": lat}).scalar_one())


def make_user(conn: Connection, email: str, role: str, facility_ids: tuple[int, ...] = (), *,
              verified: bool | None = None) -> int:
    """Insert an account directly (no password hashing: these tests log in with bearer tokens).

    Parents are verified (본인인증, as the local provider would: one person per e-mail) unless
    ``verified=False``; booking and emergency requests need it.
    """
    user_id = int(conn.execute(text("INSERT INTO users (email, password_hash, role) VALUES (:e, 'x', :r) "
                                    "RETURNING id"), {"e": email, "r": role}).scalar_one())
    if role == "parent" if verified is None else verified:
        verify(conn, user_id, name=f"부모{user_id}")
    for facility_id in facility_ids:
        conn.execute(text("INSERT INTO user_centres (user_id, facility_id) VALUES (:u, :f)"),
                     {"u": user_id, "f": facility_id})
    return user_id


def verified_phone_of(user_id: int) -> str:
    """The phone ``verify`` gives ``user_id`` by default (one number per account)."""
    return f"010-5{user_id // 10000 % 1000:03d}-{user_id % 10000:04d}"


def verify(conn: Connection, user_id: int, *, name: str, birth_date: str = "1990-01-01",
           phone: str | None = None) -> None:
    """본인인증 of ``user_id`` through the local test provider (as ``POST /auth/identity/local`` does), with
    ``phone`` (default ``verified_phone_of(user_id)``): texts about bookings go to it."""
    identity = LocalTestProvider().complete({"name": name, "birth_date": birth_date,
                                             "phone": phone or verified_phone_of(user_id)}, nonce="")
    store_identity(conn, Settings(DATABASE_URL=None), user_id=user_id, identity=identity)


def bearer(conn: Connection, settings: Settings, user_id: int) -> dict[str, str]:
    """Authorization header of a fresh bearer token."""
    return {"Authorization": "Bearer " + issue_token(conn, settings, user_id=user_id, kind="bearer").secret}


def make_slot(conn: Connection, facility_id: int, *, places_by_age: dict[str, int], service: str = "holiday",
              starts_in: timedelta = timedelta(days=2), hours: float = 10.0) -> int:
    """A slot starting ``starts_in`` from now, lasting ``hours``."""
    starts = datetime.now(UTC).replace(microsecond=0) + starts_in
    return int(conn.execute(text(
        "INSERT INTO booking_slots (facility_id, service, starts_at, ends_at, places_by_age) "
        "VALUES (:f, :s, :a, :b, CAST(:p AS jsonb)) RETURNING id"),
        {"f": facility_id, "s": service, "a": starts, "b": starts + timedelta(hours=hours),
         "p": json.dumps(places_by_age)}).scalar_one())
