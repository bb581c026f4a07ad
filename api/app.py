"""Application factory: ``create_app(settings=None)``; the engine lives on ``app.state`` for the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.errors import install_error_handlers
from api.routers import admin, auth, facilities, health, isochrones, map, places, vacancy
from geo.db import make_engine
from geo.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the dolbom API; nothing connects until the lifespan starts."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = make_engine(settings=settings, pool_size=10, max_overflow=10)
        try:
            yield
        finally:
            hub = getattr(app.state, "vacancy_hub", None)
            if hub is not None:
                await hub.stop()
            app.state.engine.dispose()

    app = FastAPI(
        title="dolbom",
        summary="Childcare (어린이집) search, vacancy and planning API over PostGIS",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(facilities.router)
    app.include_router(places.router)
    app.include_router(isochrones.router)
    app.include_router(map.router)
    app.include_router(auth.router)
    app.include_router(admin.router)
    app.include_router(vacancy.router)
    app.mount("/static", StaticFiles(directory=map.STATIC_DIR), name="static")
    return app
