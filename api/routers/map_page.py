"""The parents' map page (Leaflet) served at ``/``; its assets under ``/static``."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(tags=["map"])


@router.get("/", include_in_schema=False)
def index() -> FileResponse:
    """The interactive map."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")
