"""The API's documentation pages, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), from assets vendored under
``/static/vendor`` (no CDN: they work offline and under the strict ``/docs`` policy of ``api/headers.py``)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from api.routers.map_page import STATIC_DIR

router = APIRouter(tags=["docs"])


@router.get("/docs", include_in_schema=False)
def swagger_ui() -> FileResponse:
    """Swagger UI on ``/openapi.json`` (Authorize: bearer token, or session cookie and CSRF header)."""
    return FileResponse(STATIC_DIR / "docs" / "swagger.html", media_type="text/html")


@router.get("/redoc", include_in_schema=False)
def redoc() -> FileResponse:
    """ReDoc on ``/openapi.json``."""
    return FileResponse(STATIC_DIR / "docs" / "redoc.html", media_type="text/html")
