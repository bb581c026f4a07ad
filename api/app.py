"""Application factory: ``create_app(settings)``; the lifespan opens the ``AppState`` (``api/state.py``: pools,
engines, read router, vacancy hub, tile cache) and closes it at shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp

from api.access_log import install_access_log_filter
from api.compression import Compression, StaticAssets
from api.deps import check_write_routes
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
    designations,
    facilities,
    facility_detail,
    features,
    health,
    inspections,
    isochrones,
    map_page,
    ogc_tiles,
    places,
    portal_account,
    portal_alerts,
    portal_bookings,
    portal_disclosure,
    portal_inspections,
    portal_my_data,
    portal_officer,
    portal_queue,
    portal_staff,
    portal_staff_slots,
    portal_waitlist,
    statistics,
    tiles,
    vacancy,
    waitlist,
    waitlist_log,
)
from api.search_fast_path import SearchFastPath
from api.state import AppState, open_state
from api.tile_fast_path import CachedTiles
from geo.settings import Settings, development_warnings, get_settings_or_exit


class DolbomAPI(FastAPI):
    """FastAPI with the app's settings (``settings``, known before the lifespan: ``SettingsDep``) and the security
    headers outside every other layer, so that the 500 answers of Starlette's ServerErrorMiddleware (the
    outermost layer of a plain app) carry them too. Everything the lifespan opens is in its ``AppState``."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        self.settings = settings
        self.dolbom: AppState | None = None  # set by the lifespan
        super().__init__(**kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        # Current cached tiles are answered before the framework (api/tile_fast_path.py), inside the headers.
        stack: ASGIApp = SecurityHeaders(CachedTiles(super().build_middleware_stack()))
        if self.settings.server.worker_header:
            stack = WorkerHeader(stack)
        return stack


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the dolbom API (``settings`` default: the environment's); nothing connects until the lifespan
    starts, and a database that is down then only makes requests answer 503 until it is back."""
    settings = settings or get_settings_or_exit()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        assert isinstance(app, DolbomAPI)
        async with open_state(settings) as state:
            app.dolbom = state
            try:
                yield
            finally:
                app.dolbom = None

    app = DolbomAPI(
        settings,
        title="dolbom",
        summary="Childcare (어린이집) search, vacancy and planning API over PostGIS",
        version="0.1.0",
        lifespan=lifespan,
        # Served by api/routers/api_docs.py from vendored assets (FastAPI's own pages load them from a CDN).
        docs_url=None,
        redoc_url=None,
    )
    # Innermost: plain searches are answered before routing, inside every other layer (api/search_fast_path.py).
    app.add_middleware(SearchFastPath)
    app.add_middleware(ReadYourWrites, cookie_secure=settings.auth.cookie_secure)
    app.add_middleware(NoStorePrivate)
    app.add_middleware(BodyLimit, max_body_bytes=settings.server.max_body_bytes)
    if warnings := development_warnings(settings):
        app.add_middleware(DevBanner, warnings=warnings)
    if settings.server.compress:  # outside the banner: it edits pages before they are compressed
        app.add_middleware(Compression)
    install_error_handlers(app)
    install_access_log_filter()
    install_openapi(app, settings)
    app.include_router(health.router)
    app.include_router(facilities.router)
    # After the search routes, so that /facilities/radius is never read as an id.
    app.include_router(facility_detail.router)
    app.include_router(places.router)
    app.include_router(isochrones.router)
    app.include_router(map_page.router)
    app.include_router(features.router)
    app.include_router(ogc_tiles.router)
    app.include_router(tiles.router)
    app.include_router(auth.router)
    app.include_router(admin.router)
    app.include_router(vacancy.router)
    app.include_router(bookings.router)
    app.include_router(waitlist.router)
    app.include_router(waitlist_log.router)
    app.include_router(statistics.router)
    app.include_router(designations.router)
    app.include_router(inspections.router)
    app.include_router(api_docs.router)
    app.include_router(portal_account.router)
    app.include_router(portal_my_data.router)
    app.include_router(portal_alerts.router)
    app.include_router(portal_waitlist.router)
    app.include_router(portal_staff.router)
    app.include_router(portal_inspections.router)
    app.include_router(portal_bookings.router)
    app.include_router(portal_staff_slots.router)
    app.include_router(portal_queue.router)
    app.include_router(portal_disclosure.router)
    app.include_router(portal_officer.router)
    app.mount("/static", StaticAssets(directory=map_page.STATIC_DIR, compress=settings.server.compress), name="static")
    check_write_routes(app)
    return app
