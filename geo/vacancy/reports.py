"""Live vacancy: centre staff report enrolment and free places by age class; each accepted report updates the
facility row, is kept in history with its author, and is published as an event (``vacancy_events`` +
``NOTIFY dolbom_vacancy``) that ``api/routers/vacancy.py`` streams as Server-Sent Events.

A report is checked against the centre's capacity (정원) and the legal class ratios (children per class:
0세 3, 1세 5, 2세 7, 3세 15, 4-5세 20; mixed infant classes 5, mixed toddler classes 18): a figure that
contradicts them raises ``InvalidReport`` naming the field (``enrolled_by_age.2``, ``free_by_age.0``, ...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import Connection, text

from geo.alerts.firing import fire_for_report
from geo.auth.audit import audit
from geo.domain import CHILDREN_PER_CLASS, GROUPS_FOR_AGE, OPERATING_STATUSES, free_places_by_class, places_by_age
from geo.errors import InvalidQuery, InvalidReport, NotFound

NOTIFY_CHANNEL = "dolbom_vacancy"
# pg_advisory_xact_lock key serialising event publication ("dolbomVE" as a 64-bit integer).
EVENT_LOCK_KEY = 0x646F6C626F6D5645
AGES = ("0", "1", "2", "3", "4", "5")
GROUPS = (*AGES, "mixed_infant", "mixed_toddler", "special")


@dataclass(frozen=True)
class VacancyReportIn:
    """A report: children enrolled by class group, free places by age 0-5, optionally the class counts."""

    enrolled_by_age: dict[str, int]
    free_by_age: dict[str, int]
    classes_by_age: dict[str, int] | None = None


def _check_keys(values: dict[str, int], allowed: tuple[str, ...], field: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, value in values.items():
        if key not in allowed:
            raise InvalidReport(f"{field}.{key}: unknown age class (allowed: {', '.join(allowed)})",
                                param=f"{field}.{key}")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidReport(f"{field}.{key}: must be a whole number >= 0", param=f"{field}.{key}")
        out[key] = value
    return out


def validate_report(report: VacancyReportIn, *, capacity: int | None,
                    stored_classes: dict[str, int] | None) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Check a report against capacity and class ratios; returns (enrolled, free, classes) normalised.

    Rules, in order (the first broken one is reported):

    1. every key is a known age class, every value an integer >= 0;
    2. total enrolled <= 정원 (field ``enrolled_by_age``);
    3. per class group, enrolled <= classes × children per class (field ``enrolled_by_age.<g>``);
    4. per age 0-5, free <= the places left in the classes that take that age (its own and the mixed class)
       (field ``free_by_age.<a>``);
    5. per age, free <= 정원 − enrolled (field ``free_by_age.<a>``): one free place may be offered to
       several ages, so their sum is not capped.
    """
    enrolled = _check_keys(report.enrolled_by_age, GROUPS, "enrolled_by_age")
    free = _check_keys(report.free_by_age, AGES, "free_by_age")
    classes = _check_keys(report.classes_by_age, GROUPS, "classes_by_age") if report.classes_by_age is not None \
        else {k: int(v or 0) for k, v in (stored_classes or {}).items() if k in GROUPS}
    enrolled = {g: enrolled.get(g, 0) for g in GROUPS}
    free = {a: free.get(a, 0) for a in AGES}
    classes = {g: classes.get(g, 0) for g in GROUPS}
    total = sum(enrolled.values())
    if capacity is not None and total > capacity:
        raise InvalidReport(f"enrolled_by_age: {total} children enrolled exceed the capacity (정원) of {capacity}",
                            param="enrolled_by_age", capacity=capacity, enrolled=total)
    places = {g: classes[g] * CHILDREN_PER_CLASS[g] for g in GROUPS}
    for g in GROUPS:
        if enrolled[g] > places[g]:
            raise InvalidReport(
                f"enrolled_by_age.{g}: {enrolled[g]} children in {classes[g]} class(es) of at most "
                f"{CHILDREN_PER_CLASS[g]} (max {places[g]})", param=f"enrolled_by_age.{g}", limit=places[g])
    for a in AGES:
        room = sum(max(0, places[g] - enrolled[g]) for g in GROUPS_FOR_AGE[int(a)])
        if free[a] > room:
            raise InvalidReport(f"free_by_age.{a}: {free[a]} free places but the classes taking age {a} have "
                                f"room for {room}", param=f"free_by_age.{a}", limit=room)
        # The same free place may be offered to several ages, so each age (not their sum) is capped.
        if capacity is not None and free[a] > capacity - total:
            raise InvalidReport(f"free_by_age.{a}: {free[a]} free places exceed 정원 − 현원 = {capacity - total}",
                                param=f"free_by_age.{a}", limit=capacity - total)
    return enrolled, free, classes


_FACILITY_SQL = ("SELECT id, code, name, district_code, capacity, enrolled, classes_by_age, enrolled_by_age, "
                 "free_by_age, ST_X(geom_4326) AS lon, ST_Y(geom_4326) AS lat FROM facilities WHERE code = :code")
_FACILITY = text(_FACILITY_SQL)
_FACILITY_FOR_UPDATE = text(_FACILITY_SQL + " FOR UPDATE")


def _facility(conn: Connection, code: str, *, lock: bool = False) -> Any:
    row = conn.execute(_FACILITY_FOR_UPDATE if lock else _FACILITY, {"code": code}).first()
    if row is None:
        raise NotFound(f"no centre with code {code}", code=code)
    return row


def facility_ref(conn: Connection, code: str) -> tuple[int, str | None]:
    """(id, 구 code) of a centre by 어린이집코드; ``NotFound`` otherwise."""
    row = _facility(conn, code)
    return int(row.id), row.district_code


def submit_report(conn: Connection, *, facility_code: str, report: VacancyReportIn,
                  author_user_id: int | None, public_url: str | None = None) -> dict[str, Any]:
    """Validate and apply a report in ``conn``'s transaction: history row, facility update, audit row, alert
    messages (``geo.alerts.firing``: saved searches near the centre whose age's free places went up; links start
    with ``public_url``), event, NOTIFY (delivered when the caller commits). Returns the published event payload
    (with ``seq``)."""
    f = _facility(conn, facility_code, lock=True)
    enrolled, free, classes = validate_report(report, capacity=f.capacity, stored_classes=f.classes_by_age)
    total = sum(enrolled.values())
    free_out: dict[str, int] = {**free, "total": max(0, (f.capacity or 0) - total)}
    report_row = conn.execute(text("""
        INSERT INTO vacancy_reports (facility_id, author_user_id, enrolled_by_age, free_by_age, classes_by_age,
                                     capacity, enrolled)
        VALUES (:fid, :author, :enrolled, :free, :classes, :capacity, :total) RETURNING id, reported_at
    """), {"fid": f.id, "author": author_user_id, "enrolled": Jsonb(enrolled), "free": Jsonb(free),
           "classes": Jsonb(classes) if report.classes_by_age is not None else None, "capacity": f.capacity,
           "total": total}).one()
    reported_at: datetime = report_row.reported_at
    conn.execute(text("""
        UPDATE facilities SET enrolled = :total, enrolled_by_age = :enrolled, free_by_age = :free,
            classes_by_age = coalesce(:classes, classes_by_age), updated_at = now()
        WHERE id = :fid
    """), {"fid": f.id, "total": total, "enrolled": Jsonb(enrolled), "free": Jsonb(free_out),
           "classes": Jsonb(classes) if report.classes_by_age is not None else None})
    audit(conn, actor_user_id=author_user_id, action="vacancy.report", entity="facilities", entity_id=f.code,
          before={"enrolled": f.enrolled, "enrolled_by_age": f.enrolled_by_age, "free_by_age": f.free_by_age,
                  "classes_by_age": f.classes_by_age},
          after={"enrolled": total, "enrolled_by_age": enrolled, "free_by_age": free_out,
                 "classes_by_age": classes if report.classes_by_age is not None else f.classes_by_age})
    # In this transaction: the report and its alerts commit (or roll back) together.
    fire_for_report(conn, facility_id=f.id, centre_name=f.name, report_id=int(report_row.id),
                    free_before=f.free_by_age, free_after=free, public_url=public_url)
    # Every figure of the class table, so that a map showing the centre updates all its columns.
    shown_classes = classes if report.classes_by_age is not None else (f.classes_by_age or classes)
    payload = {"facility_id": f.id, "code": f.code, "name": f.name, "district_code": f.district_code,
               "lon": f.lon, "lat": f.lat,
               "capacity": f.capacity, "enrolled": total, "free_by_age": free_out, "enrolled_by_age": enrolled,
               "classes_by_age": shown_classes, "places_by_age": places_by_age(shown_classes),
               "free_by_class": free_places_by_class(shown_classes, enrolled, capacity=f.capacity, enrolled=total),
               "reported_at": reported_at.isoformat()}
    # Events commit in sequence order (one publisher at a time from here to commit), so a client resuming
    # after seq N never misses an event with a smaller seq that committed later.
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": EVENT_LOCK_KEY})
    seq = conn.execute(text("""
        INSERT INTO vacancy_events (facility_id, facility_code, district_code, lon, lat, payload)
        VALUES (:fid, :code, :district, :lon, :lat, :payload) RETURNING seq
    """), {"fid": f.id, "code": f.code, "district": f.district_code, "lon": f.lon, "lat": f.lat,
           "payload": Jsonb(payload)}).scalar_one()
    event = {"seq": int(seq), **payload}
    conn.execute(text("SELECT pg_notify(:channel, :event)"), {"channel": NOTIFY_CHANNEL, "event": json.dumps(event)})
    return event


@dataclass(frozen=True)
class EventFilter:
    """Which events a stream wants: a bbox (lon/lat, EPSG:4326), a 구 code, centre codes; all optional."""

    bbox_4326: tuple[float, float, float, float] | None = None
    district_code: str | None = None
    facility_codes: frozenset[str] = frozenset()

    def matches(self, event: dict[str, Any]) -> bool:
        """Whether ``event`` (a payload with code, district_code, lon, lat) passes the filter."""
        if self.facility_codes and event.get("code") not in self.facility_codes:
            return False
        if self.district_code and event.get("district_code") != self.district_code:
            return False
        if self.bbox_4326:
            west, south, east, north = self.bbox_4326
            if not (west <= float(event["lon"]) <= east and south <= float(event["lat"]) <= north):
                return False
        return True


def parse_bbox(raw: str) -> tuple[float, float, float, float]:
    """``"west,south,east,north"`` in degrees (EPSG:4326) -> tuple; ``InvalidQuery`` when malformed."""
    try:
        west, south, east, north = (float(p) for p in raw.split(","))
    except ValueError as exc:
        raise InvalidQuery(f"bbox must be west,south,east,north in degrees, got {raw!r}", param="bbox") from exc
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise InvalidQuery(f"bbox {raw!r} is not west<east, south<north within lon/lat range", param="bbox")
    return west, south, east, north


def events_after(conn: Connection, after_seq: int, *, limit: int = 1000) -> list[dict[str, Any]]:
    """Persisted events with ``seq > after_seq`` in order (what a reconnecting client missed, unfiltered)."""
    rows = conn.execute(text("SELECT seq, payload FROM vacancy_events WHERE seq > :s ORDER BY seq LIMIT :n"),
                        {"s": after_seq, "n": limit}).all()
    return [{"seq": int(r.seq), **r.payload} for r in rows]


def last_seq(conn: Connection) -> int:
    """The newest event sequence (0 when none)."""
    return int(conn.execute(text("SELECT coalesce(max(seq), 0) FROM vacancy_events")).scalar_one())


def centre_status(conn: Connection, code: str, *, stale_after_days: float) -> dict[str, Any]:
    """Current vacancy of a centre with its last report time and staleness flag."""
    row = conn.execute(text("""
        SELECT f.code, f.name, f.district_code, f.capacity, f.enrolled, f.free_by_age, f.enrolled_by_age,
               r.reported_at AS last_reported_at
        FROM facilities f
        LEFT JOIN LATERAL (SELECT max(reported_at) AS reported_at FROM vacancy_reports WHERE facility_id = f.id) r
          ON true
        WHERE f.code = :code
    """), {"code": code}).mappings().first()
    if row is None:
        raise NotFound(f"no centre with code {code}", code=code)
    return _with_staleness(conn, dict(row), stale_after_days)


def _with_staleness(conn: Connection, row: dict[str, Any], stale_after_days: float) -> dict[str, Any]:
    now: datetime = conn.execute(text("SELECT now()")).scalar_one()
    last = row.get("last_reported_at")
    row["stale"] = last is None or now - last > timedelta(days=stale_after_days)
    return row


def district_status(conn: Connection, district_code: str, *, stale_after_days: float) -> list[dict[str, Any]]:
    """Every operating centre of a 구 with its last report time and staleness flag (code order)."""
    rows = conn.execute(text("""
        SELECT f.code, f.name, f.district_code, f.capacity, f.enrolled, f.free_by_age,
               r.reported_at AS last_reported_at,
               (r.reported_at IS NULL OR r.reported_at < now() - :stale) AS stale
        FROM facilities f
        LEFT JOIN LATERAL (SELECT max(reported_at) AS reported_at FROM vacancy_reports WHERE facility_id = f.id) r
          ON true
        WHERE f.district_code = :d AND f.status = ANY(:statuses)
        ORDER BY f.code
    """), {"d": district_code, "stale": timedelta(days=stale_after_days),
          "statuses": [s.value for s in OPERATING_STATUSES]}).mappings().all()
    return [dict(r) for r in rows]


def vacancy_conflicts(conn: Connection, code: str, *, limit: int = 100) -> list[dict[str, Any]]:
    """Figures of official snapshots not applied to a centre because it reported live after their data date
    (both values, newest first; written by ``geo.ingest.childcare.load``)."""
    fid, _ = facility_ref(conn, code)
    rows = conn.execute(text("""
        SELECT c.id, c.field, c.snapshot_value, c.live_value, c.snapshot_date, c.reported_at, c.import_run_id,
               r.source_name, c.recorded_at
        FROM vacancy_conflicts c LEFT JOIN import_runs r ON r.id = c.import_run_id
        WHERE c.facility_id = :fid ORDER BY c.recorded_at DESC, c.id DESC LIMIT :n
    """), {"fid": fid, "n": limit}).mappings().all()
    return [dict(r) for r in rows]


def report_history(conn: Connection, code: str, *, limit: int = 100) -> list[dict[str, Any]]:
    """A centre's reports, newest first, with the author's e-mail."""
    fid, _ = facility_ref(conn, code)
    rows = conn.execute(text("""
        SELECT r.id, r.reported_at, r.enrolled, r.capacity, r.enrolled_by_age, r.free_by_age, r.classes_by_age,
               r.author_user_id, u.email AS author_email
        FROM vacancy_reports r LEFT JOIN users u ON u.id = r.author_user_id
        WHERE r.facility_id = :fid ORDER BY r.reported_at DESC, r.id DESC LIMIT :n
    """), {"fid": fid, "n": limit}).mappings().all()
    return [dict(r) for r in rows]
