"""Application factory: ``create_app(settings)``; the engine and the async read pool live on ``app.state`` for
the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp

from api.dev_banner import DevBanner
from api.errors import install_error_handlers
from api.headers import SecurityHeaders, WorkerHeader
from api.limits import BodyLimit
from api.openapi import install_openapi
from api.private import NoStorePrivate
from api.read_routing import ReadYourWrites
from api.routers import (
    admin,
    api_docs,
    auth,
    bookings,
    facilities,
    facility_detail,
    features,
    health,
    isochrones,
    map_page,
    places,
    tiles,
    vacancy,
    waitlist,
)
from geo.db import API_ENGINE_POOL, API_LAYER_POOL, make_async_engine, make_engine, make_read_pool
from geo.ops.replicas import ReadRouter
from geo.settings import Settings, development_warnings, get_settings_or_exit
from tiles.cache import TileCache


class DolbomAPI(FastAPI):
    """FastAPI with the security headers outside every other layer, so that the 500 answers of Starlette's
    ServerErrorMiddleware (the outermost layer of a plain app) carry them too."""

    def build_middleware_stack(self) -> ASGIApp:
        stack: ASGIApp = SecurityHeaders(super().build_middleware_stack())
        settings = getattr(self.state, "settings", None)  # built at the first request, after create_app
        if settings is not None and settings.server.worker_header:
            stack = WorkerHeader(stack)
        return stack


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the dolbom API (``settings`` default: the environment's); nothing connects until the lifespan
    starts, and a database that is down then only makes requests answer 503 until it is back."""
    settings = settings or get_settings_or_exit()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = make_engine(settings=settings, pool_size=API_ENGINE_POOL[0],
                                       max_overflow=API_ENGINE_POOL[1],
                                       connect_args={"connect_timeout": max(1, int(settings.database.timeout_s))})
        app.state.read_pool = make_read_pool(settings, max_size=settings.database.read_pool_size)
        await app.state.read_pool.open(wait=False)
        # Map layers (OGC API - Features, tiles) read on an async engine; tiles are cached by data version.
        app.state.layer_engine = make_async_engine(settings=settings, pool_size=API_LAYER_POOL[0],
                                                   max_overflow=API_LAYER_POOL[1])
        # Per worker process; correct across workers because every request asks the database for the tile's
        # version and bodies are kept by the ETag derived from it (see tiles/cache.py).
        app.state.tile_cache = TileCache()
        replica_urls = settings.effective_replica_urls
        if replica_urls:
            # Reads go through the router; the sync and layer engines per replica serve public read-only
            # handlers and map layers (pre-ping: a replica restarted since the last checkout costs a reconnect,
            # not an error).
            router = ReadRouter(settings, primary_pool=app.state.read_pool, replica_urls=replica_urls,
                                replica_pool_size=settings.database.read_pool_size)
            await router.start()
            app.state.read_router = router
            connect_args = {"connect_timeout": max(1, int(settings.database.timeout_s))}
            app.state.replica_engines = {
                r.name: make_engine(r.url, pool_size=5, max_overflow=5, pool_pre_ping=True, connect_args=connect_args)
                for r in router.replicas}
            app.state.replica_layer_engines = {
                r.name: make_async_engine(r.url, pool_size=16, max_overflow=4, pool_pre_ping=True,
                                          connect_args=connect_args)
                for r in router.replicas}
        try:
            yield
        finally:
            if app.state.read_router is not None:
                await app.state.read_router.close()
                app.state.read_router = None
                for replica_engine in app.state.replica_engines.values():
                    replica_engine.dispose()
                for layer_engine in app.state.replica_layer_engines.values():
                    await layer_engine.dispose()
            await app.state.read_pool.close()
            hub = getattr(app.state, "vacancy_hub", None)
            if hub is not None:
                await hub.stop()
            app.state.engine.dispose()
            await app.state.layer_engine.dispose()

    app = DolbomAPI(
        title="dolbom",
        summary="Childcare (어린이집) search, vacancy and planning API over PostGIS",
        version="0.1.0",
        lifespan=lifespan,
        # Served by api/routers/api_docs.py from vendored assets (FastAPI's own pages load them from a CDN).
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    # Set by the lifespan when there are read replicas (DOLBOM_REPLICA_URLS or local standbys).
    app.state.read_router = None
    app.state.replica_engines = {}
    app.state.replica_layer_engines = {}
    app.add_middleware(ReadYourWrites, cookie_secure=settings.auth.cookie_secure)
    app.add_middleware(NoStorePrivate)
    app.add_middleware(BodyLimit, max_body_bytes=settings.server.max_body_bytes)
    if warnings := development_warnings(settings):
        app.add_middleware(DevBanner, warnings=warnings)
    install_error_handlers(app)
    install_openapi(app, settings)
    app.include_router(health.router)
    app.include_router(facilities.router)
    # After the search routes, so that /facilities/radius is never read as an id.
    app.include_router(facility_detail.router)
    app.include_router(places.router)
    app.include_router(isochrones.router)
    app.include_router(map_page.router)
    app.include_router(features.router)
    app.include_router(tiles.router)
    app.include_router(auth.router)
    app.include_router(admin.router)
    app.include_router(vacancy.router)
    app.include_router(bookings.router)
    app.include_router(waitlist.router)
    app.include_router(api_docs.router)
    app.mount("/static", StaticFiles(directory=map_page.STATIC_DIR), name="static")
    return app
