"""The application state: everything one API worker process holds, built once by the lifespan.

``open_state(settings)`` opens the pools and engines, creates the read router (with replicas), the vacancy hub,
the tile cache and its change feed, and closes them all on exit. The lifespan keeps the ``AppState`` in the app's
one typed attribute (``DolbomAPI.dolbom``, None outside the lifespan); dependencies read it through
``api.deps.get_app_state``, middleware through ``state_of(scope)``. Nothing lives on Starlette's untyped ``app.state``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine

from geo.db import API_ENGINE_POOL, make_engine, make_read_pool
from geo.ops.replicas import ReadRouter
from geo.settings import Settings
from geo.vacancy.hub import VacancyHub
from tiles.cache import TileCache
from tiles.feed import TileVersionFeed


@dataclass(frozen=True, eq=False)
class AppState:
    """The resources of one API worker process.

    Attributes
    ----------
    settings
        The settings the app was created with.
    engine
        The primary's sync engine: writes (``WriteTx``) and sync reads.
    read_pool
        The primary's async psycopg pool (autocommit, one statement per read): searches, map layers (OGC API -
        Features, tiles, TileJSON) and ``/health``.
    tile_cache
        Tile bodies by data version and the current version of each served tile (per process; correct across
        workers, see ``tiles/cache.py``).
    tile_feed
        The LISTEN connection that keeps ``tile_cache``'s versions current (``tiles/feed.py``); None: not started.
    vacancy_hub
        The LISTEN fan-out of vacancy events (it connects with its first subscriber).
    read_router
        With read replicas: chooses the server of each read; None without replicas.
    replica_engines
        Sync engines per replica name (empty without replicas); async reads go through ``read_router``.
    """

    settings: Settings
    engine: Engine
    read_pool: AsyncConnectionPool
    tile_cache: TileCache
    vacancy_hub: VacancyHub
    read_router: ReadRouter | None = None
    tile_feed: TileVersionFeed | None = None
    replica_engines: Mapping[str, Engine] = field(default_factory=dict)


def state_of(scope: MutableMapping[str, Any]) -> AppState | None:
    """The ``AppState`` of the app serving a request's ASGI scope (None outside its lifespan, or for an app not
    made by ``api.app.create_app``)."""
    state = getattr(scope.get("app"), "dolbom", None)
    return state if isinstance(state, AppState) else None


@asynccontextmanager
async def open_state(settings: Settings) -> AsyncIterator[AppState]:
    """Open everything an API worker holds and close it on exit. Nothing waits for the database here: a database
    that is down makes requests answer 503 until it is back."""
    connect_args = {"connect_timeout": max(1, int(settings.database.timeout_s))}
    engine = make_engine(settings=settings, pool_size=API_ENGINE_POOL[0], max_overflow=API_ENGINE_POOL[1],
                         connect_args=connect_args)
    read_pool = make_read_pool(settings, max_size=settings.database.read_pool_size)
    await read_pool.open(wait=False)
    # LISTEN needs its own server session: on the direct URL, never through PgBouncer's transaction pooling
    # (there the LISTEN would stay on a server connection that other clients then use).
    hub = VacancyHub(settings.direct_database_url)
    router: ReadRouter | None = None
    replica_engines: dict[str, Engine] = {}
    replica_urls = settings.effective_replica_urls
    if replica_urls:
        # Reads go through the router (searches, map layers, tiles); the sync engine per replica serves public
        # read-only sync handlers (pre-ping: a replica restarted since the last checkout costs a reconnect).
        router = ReadRouter(settings, primary_pool=read_pool, replica_urls=replica_urls,
                            replica_pool_size=settings.database.read_pool_size)
        await router.start()
        for replica in router.replicas:
            replica_engines[replica.name] = make_engine(replica.url, pool_size=5, max_overflow=5, pool_pre_ping=True,
                                                        connect_args=connect_args)
    tile_cache = TileCache(stale_s=settings.server.tile_versions_stale_s)
    tile_feed = TileVersionFeed(settings.direct_database_url, tile_cache)  # LISTEN: the direct URL, as the hub's
    tile_feed.start()
    state = AppState(settings=settings, engine=engine, read_pool=read_pool,
                     tile_cache=tile_cache, vacancy_hub=hub, read_router=router, tile_feed=tile_feed,
                     replica_engines=replica_engines)
    try:
        yield state
    finally:
        if router is not None:
            await router.close()
            for replica_engine in replica_engines.values():
                replica_engine.dispose()
        await read_pool.close()
        await hub.stop()
        await tile_feed.stop()
        engine.dispose()
