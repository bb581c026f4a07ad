"""Application factory: ``create_app(settings)``; the engine and the async read pool live on ``app.state`` for
the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.errors import install_error_handlers
from api.headers import SecurityHeaders
from api.routers import facilities, facility_detail, health, isochrones, map_page, places
from geo.db import make_engine, make_read_pool
from geo.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the dolbom API (``settings`` default: the environment's); nothing connects until the lifespan
    starts, and a database that is down then only makes requests answer 503 until it is back."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = make_engine(settings=settings, pool_size=10, max_overflow=10,
                                       connect_args={"connect_timeout": max(1, int(settings.db_timeout_s))})
        app.state.read_pool = make_read_pool(settings, max_size=settings.read_pool_size)
        await app.state.read_pool.open(wait=False)
        try:
            yield
        finally:
            await app.state.read_pool.close()
            app.state.engine.dispose()

    app = FastAPI(
        title="dolbom",
        summary="Childcare (어린이집) search, vacancy and planning API over PostGIS",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(SecurityHeaders)
    app.include_router(health.router)
    app.include_router(facilities.router)
    # After the search routes, so that /facilities/radius is never read as an id.
    app.include_router(facility_detail.router)
    app.include_router(places.router)
    app.include_router(isochrones.router)
    app.include_router(map_page.router)
    app.mount("/static", StaticFiles(directory=map_page.STATIC_DIR), name="static")
    return app
