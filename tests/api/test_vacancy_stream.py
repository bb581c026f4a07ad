"""The SSE stream over real HTTP: two API processes (uvicorn) on one database; a report written through one
reaches streams on both, filters apply, and a client reconnecting with Last-Event-ID gets what it missed."""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import httpx
import pytest
from psycopg.types.json import Jsonb
from sqlalchemy import Connection, Engine, text

from benchmarks.harness import free_port, running_server
from geo.auth.accounts import create_user, issue_token
from geo.settings import Settings

WAIT_S = 30.0  # hang guard only, never a pass/fail timing

CENTRES = [
    # code, district, lon, lat
    ("T0000000001", "11440", 126.91, 37.56),
    ("T0000000002", "11680", 127.05, 37.50),
    ("T0000000003", "11440", 126.93, 37.55),
]


@dataclass
class Servers:
    urls: list[str]
    token: str
    engine: Engine



def insert_centres(conn: Connection, name: str,
                   centres: Sequence[tuple[str, str, float, float]] = CENTRES) -> None:
    """Operating centres (code, 구 code, lon, lat) with 0-3세 classes and nobody enrolled, named ``<name> <last
    character of the code>`` (default: the ``CENTRES`` of these stream tests)."""
    for code, district, lon, lat in centres:
        conn.execute(text("""
            INSERT INTO facilities (code, name, facility_type, status, district_code, capacity, enrolled,
                classes_by_age, geocode_quality, source, geom_4326)
            VALUES (:code, :name, 'national_public', 'active', :district, 40, 0, :classes, 'source', 'test',
                    ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
        """), {"code": code, "name": f"{name} {code[-1]}", "district": district, "lon": lon, "lat": lat,
               "classes": Jsonb({"0": 1, "1": 1, "2": 1, "3": 1})})


@pytest.fixture(scope="module")
def servers(make_database) -> Iterator[Servers]:
    engine = make_database("vacancy_stream")
    with engine.begin() as conn:
        insert_centres(conn, "시험어린이집")
        admin = create_user(conn, email="admin@example.kr", password="correct horse battery", role="city_admin")
        token = issue_token(conn, Settings(), user_id=admin, kind="bearer").secret
    env = {**os.environ, "DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    urls = []
    with ExitStack() as stack:
        for _ in range(2):
            port = free_port()
            urls.append(f"http://127.0.0.1:{port}")
            stack.enter_context(running_server(
                [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1",
                 "--port", str(port), "--log-level", "warning"], base_url=urls[-1], ready_path="/health", env=env))
        yield Servers(urls=urls, token=token, engine=engine)


class Reader:
    """Reads ``count`` SSE events from a stream in a thread; ``ready`` once the server has subscribed."""

    def __init__(self, url: str, *, count: int, params: dict | None = None, last_event_id: str | None = None) -> None:
        self.events: queue.Queue[dict] = queue.Queue()
        self.ready = threading.Event()
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        self.thread = threading.Thread(target=self._run, args=(url, count, params or {}, headers), daemon=True)
        self.thread.start()
        assert self.ready.wait(WAIT_S), "stream did not open"

    def _run(self, url: str, count: int, params: dict, headers: dict) -> None:
        got = 0
        event: dict = {}
        with httpx.stream("GET", f"{url}/vacancy/stream", params=params, headers=headers,
                          timeout=httpx.Timeout(WAIT_S)) as resp:
            assert resp.headers["content-type"].startswith("text/event-stream")
            for line in resp.iter_lines():
                if line.startswith("retry:"):
                    self.ready.set()
                elif line.startswith("id: "):
                    event["id"] = line[4:]
                elif line.startswith("event: "):
                    event["event"] = line[7:]
                elif line.startswith("data: "):
                    event["data"] = json.loads(line[6:])
                elif line == "" and event:
                    self.events.put(event)
                    event = {}
                    got += 1
                    if got == count:
                        return

    def take(self, n: int) -> list[dict]:
        return [self.events.get(timeout=WAIT_S) for _ in range(n)]


def _report(servers: Servers, url: str, code: str, enrolled_0: int) -> dict:
    resp = httpx.post(f"{url}/vacancy/centres/{code}/reports", timeout=WAIT_S,
                      headers={"Authorization": f"Bearer {servers.token}"},
                      json={"enrolled_by_age": {"0": enrolled_0}, "free_by_age": {"0": 3 - enrolled_0}})
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_report_through_one_worker_reaches_streams_on_both(servers: Servers) -> None:
    first, second = servers.urls
    on_first = Reader(first, count=1)
    on_second = Reader(second, count=1)
    event = _report(servers, second, CENTRES[0][0], 1)
    for reader in (on_first, on_second):
        (got,) = reader.take(1)
        assert got["event"] == "vacancy" and int(got["id"]) == event["seq"]
        assert got["data"]["code"] == CENTRES[0][0] and got["data"]["free_by_age"]["0"] == 2


def test_filters_by_district_bbox_and_centre(servers: Servers) -> None:
    first, second = servers.urls
    by_district = Reader(first, count=1, params={"district": "11680"})
    by_bbox = Reader(second, count=1, params={"bbox": "126.92,37.54,126.94,37.56"})  # only centre 3
    by_code = Reader(first, count=1, params={"code": [CENTRES[1][0]]})
    events = [_report(servers, first, code, 2) for code, *_ in CENTRES]
    # Events arrive in sequence order, so a filter that let an earlier event through would show it first.
    assert by_district.take(1)[0]["data"]["seq"] == events[1]["seq"]
    assert by_bbox.take(1)[0]["data"]["seq"] == events[2]["seq"]
    assert by_code.take(1)[0]["data"]["seq"] == events[1]["seq"]


def test_reconnect_with_last_event_id_replays_what_was_missed(servers: Servers) -> None:
    first, second = servers.urls
    reader = Reader(first, count=1, params={"district": "11440"})
    seen = _report(servers, second, CENTRES[0][0], 0)
    (got,) = reader.take(1)
    reader.thread.join(WAIT_S)  # disconnected
    missed = [_report(servers, second, CENTRES[1][0], 1),  # another 구: filtered out on replay as well
              _report(servers, second, CENTRES[2][0], 1),
              _report(servers, second, CENTRES[0][0], 2)]
    # Reconnect to the other worker: the replay comes from its hub's recent events (memory), then live.
    again = Reader(second, count=3, params={"district": "11440"}, last_event_id=got["id"])
    replayed = again.take(2)
    assert [int(e["id"]) for e in replayed] == [missed[1]["seq"], missed[2]["seq"]]
    assert int(got["id"]) == seen["seq"]
    live = _report(servers, first, CENTRES[2][0], 0)
    assert int(again.take(1)[0]["id"]) == live["seq"]
    with servers.engine.connect() as conn:
        persisted = conn.execute(text("SELECT seq FROM vacancy_events WHERE seq > :s AND district_code = '11440' "
                                      "ORDER BY seq"), {"s": int(got["id"])}).scalars().all()
    assert persisted == [missed[1]["seq"], missed[2]["seq"], live["seq"]]


def test_reconnect_from_before_the_hub_started_replays_from_the_database(servers: Servers) -> None:
    first, _ = servers.urls
    Reader(first, count=0)  # the hub listens (since an earlier test at least)
    with servers.engine.connect() as conn:
        persisted = conn.execute(text("SELECT seq FROM vacancy_events WHERE district_code = '11680' ORDER BY seq"
                                      )).scalars().all()
    assert persisted  # earlier tests reported centre 2; the hub's memory starts after them or later
    again = Reader(first, count=len(persisted), params={"district": "11680"}, last_event_id="0")
    assert [int(e["id"]) for e in again.take(len(persisted))] == persisted
