"""Tile versions kept in process through LISTEN/NOTIFY: a cached tile or a 304 costs no database round trip; a
change through the trigger reaches the next request; a dropped listener falls back to asking the database again
after ``DOLBOM_TILE_VERSIONS_STALE_S``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.state import AppState
from geo.settings import Settings
from tests.statement_util import Sent, recording_async_statements
from tiles.cache import TileCache, boxes_meet, tile_box_3857
from tiles.feed import parse_change

WAIT_S = 10.0  # a bound on background events (LISTEN connected, NOTIFY delivered), never a timing of the test
Z, LON, LAT = 14, 127.0, 37.5
X, Y = 13971, 6348  # the z14 tile of (127.0, 37.5)
PATH = f"/tiles/facilities/{Z}/{X}/{Y}.mvt"
FAR_PATH = f"/tiles/facilities/{Z}/{X + 20}/{Y}.mvt"  # ~50 km east: no change below touches it


def wait_until(condition: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    """Wait for an event of the app's background tasks, at most ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the event did not come"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def feed_db(make_database: Callable[[str], Engine]) -> Engine:
    """A committed database with one centre at (127.0, 37.5)."""
    engine = make_database("tiles_feed")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO facilities (code, name, facility_type, status, capacity, enrolled, free_by_age, services, "
            "geocode_quality, source, geom_4326) VALUES ('T-feed', '가상 피드', 'private', 'active', 50, 40, "
            "'{\"total\": 10}', '{}', 'source', 'test', ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"),
            {"lon": LON, "lat": LAT})
    return engine


@contextmanager
def serving(engine: Engine, **env: Any) -> Iterator[tuple[TestClient, AppState, list[Sent]]]:
    """The app on ``engine``'s database with its feed listening; the list collects the statements its read pool
    sends (``tests/statement_util.py``)."""
    settings = Settings(DATABASE_URL=engine.url.render_as_string(hide_password=False), **env)
    with recording_async_statements() as statements, TestClient(create_app(settings)) as http:
        state = http.app.dolbom  # type: ignore[attr-defined]
        assert isinstance(state, AppState)
        wait_until(lambda: state.tile_cache.watching)
        yield http, state, statements


def set_free(engine: Engine, total: int) -> None:
    with engine.begin() as conn:  # a writer that knows nothing about tiles
        conn.execute(text("UPDATE facilities SET free_by_age = jsonb_build_object('total', :t) WHERE code = 'T-feed'"),
                     {"t": total})


def test_cached_tiles_and_304s_ask_the_database_nothing_and_a_change_reaches_the_next_request(
        feed_db: Engine) -> None:
    with serving(feed_db, DOLBOM_TILE_VERSIONS_STALE_S=600) as (http, state, statements):
        first = http.get(PATH)
        far = http.get(FAR_PATH)
        assert first.status_code == far.status_code == 200 and statements  # rendered: asked the database
        etag = first.headers["etag"]
        statements.clear()
        again = http.get(PATH)
        not_modified = http.get(PATH, headers={"If-None-Match": etag})
        assert again.status_code == 200 and again.content == first.content and again.headers["etag"] == etag
        assert dict(again.headers) == dict(first.headers)  # the fast path answers as the route does
        assert not_modified.status_code == 304 and not_modified.headers["etag"] == etag
        assert statements == []  # the feed vouched for the version: no round trip

        seen = state.tile_cache.notifications
        set_free(feed_db, 3)
        wait_until(lambda: state.tile_cache.notifications > seen)  # the trigger's NOTIFY reached this process
        changed = http.get(PATH, headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.headers["etag"] != etag
        statements.clear()
        assert http.get(FAR_PATH, headers={"If-None-Match": far.headers["etag"]}).status_code == 304
        assert statements == []  # a change elsewhere leaves other tiles current


def test_an_items_page_a_feature_and_a_cold_tile_are_one_statement_each_on_an_autocommit_connection(
        feed_db: Engine) -> None:
    # Issue 24: the layers read like the searches (no BEGIN, statement, ROLLBACK: one round trip per read).
    cold = f"/tiles/facilities/{Z}/{X}/{Y + 3}.mvt"  # never asked in this app: rendered
    with serving(feed_db, DOLBOM_TILE_VERSIONS_STALE_S=600) as (http, _state, statements):
        http.get("/health")  # the pool's connections open (and run their setup) before counting
        for path, params in (("/ogc/collections/facilities/items", {"bbox": "126.99,37.49,127.01,37.51"}),
                             (PATH, {}), (cold, {})):
            statements.clear()
            answer = http.get(path, params=params)
            assert answer.status_code == 200, answer.text
            assert len(statements) == 1 and statements[0].autocommit, (path, statements)
        assert http.get("/ogc/collections/facilities/items", params={"bbox": "126.99,37.49,127.01,37.51"}).json()[
            "numberMatched"] == 1
        feature_id = http.get("/ogc/collections/facilities/items").json()["features"][0]["id"]
        statements.clear()
        assert http.get(f"/ogc/collections/facilities/items/{feature_id}").status_code == 200
        assert len(statements) == 1 and statements[0].autocommit
        statements.clear()
        assert http.get(PATH).status_code == http.get(cold).status_code == 200
        assert statements == []  # cached and current: no statement at all


def test_a_dropped_listener_falls_back_to_the_database_within_the_staleness_bound(feed_db: Engine) -> None:
    with serving(feed_db, DOLBOM_TILE_VERSIONS_STALE_S=0.5) as (http, state, _statements):
        feed, cache = state.tile_feed, state.tile_cache
        assert feed is not None and feed.backend_pid is not None
        etag = http.get(PATH).headers["etag"]
        pid, dsn = feed.backend_pid, feed.dsn
        feed.dsn = "postgresql:///nowhere?host=/nonexistent"  # keep it down until the test lets it reconnect
        with feed_db.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar_one()
        wait_until(lambda: not cache.watching)
        seen = cache.notifications
        set_free(feed_db, 7)  # nobody listens: its NOTIFY is lost to this process

        def fresh() -> bool:
            return http.get(PATH, headers={"If-None-Match": etag}).status_code == 200

        wait_until(fresh)  # served from memory for at most stale_s, then asked the database again
        assert cache.notifications == seen and not cache.watching

        feed.dsn = dsn  # the listener comes back on its own, on a new connection
        wait_until(lambda: cache.watching)
        assert feed.backend_pid not in (None, pid) and feed.connections == 2
        etag = http.get(PATH).headers["etag"]
        set_free(feed_db, 8)
        wait_until(lambda: cache.notifications > seen)
        assert http.get(PATH, headers={"If-None-Match": etag}).status_code == 200


def test_a_version_read_while_a_change_arrived_is_not_vouched_for() -> None:
    cache = TileCache(stale_s=600)
    cache.feed_connected()
    box = tile_box_3857(Z, X, Y, margin=64 / 4096)
    epoch = cache.epoch
    cache.changed({"facilities": box})  # arrives while the request reads the (possibly older) version
    cache.confirm("facilities/14/1/1", '"v1"', b"", layers=frozenset({"facilities"}), box_3857=box, epoch=epoch)
    entry = cache.current("facilities/14/1/1")
    assert entry is not None and entry.generation == -1  # current for stale_s only, not watched
    cache.confirm("facilities/14/1/1", '"v1"', b"", layers=frozenset({"facilities"}), box_3857=box,
                  epoch=cache.epoch)
    assert cache.current("facilities/14/1/1").generation == cache.generation  # type: ignore[union-attr]
    assert cache.changed({"districts": box}) == 0 and cache.changed({"facilities": box}) == 1


def test_notification_payloads_and_tile_boxes() -> None:
    assert parse_change('{"layers": {"facilities": [1, 2, 3, 4.5]}}') == {"facilities": (1.0, 2.0, 3.0, 4.5)}
    with pytest.raises((ValueError, KeyError)):
        parse_change('{"nothing": 1}')
    world = tile_box_3857(0, 0, 0, margin=0.0)
    assert world == pytest.approx((-20037508.342789244, -20037508.342789244, 20037508.342789244, 20037508.342789244))
    left, right = tile_box_3857(1, 0, 0, margin=0.0), tile_box_3857(1, 1, 0, margin=0.0)
    assert boxes_meet(left, right)  # shared edge counts, as PostGIS's &&
    assert not boxes_meet(tile_box_3857(2, 0, 0, margin=0.0), tile_box_3857(2, 3, 3, margin=0.0))
