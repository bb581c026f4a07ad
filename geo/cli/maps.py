"""``dolbom map``: a static map (folium HTML) of a search, to share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geo.cli.common import console, fail, migrated_engine
from geo.errors import DolbomError
from geo.settings import get_settings


def map_command(
    out: Annotated[Path, typer.Option("--out", help="HTML file to write", dir_okay=False)],
    lat: Annotated[float | None, typer.Option(help="Latitude of the centre of a radius search")] = None,
    lon: Annotated[float | None, typer.Option(help="Longitude of the centre of a radius search")] = None,
    radius_m: Annotated[float | None, typer.Option(help="Radius in metres")] = None,
    district: Annotated[str | None, typer.Option(help="구: code or name (마포구)")] = None,
    dong: Annotated[str | None, typer.Option(help="행정동: code or name (서교동)")] = None,
    service: Annotated[list[str] | None, typer.Option(help="Required service (repeatable): enum or 한글")] = None,
    service_match: Annotated[str, typer.Option(help="all or any")] = "all",
    type: Annotated[list[str] | None, typer.Option(help="Facility type (repeatable)")] = None,
    status: Annotated[list[str] | None, typer.Option(help="Status (repeatable; default operating)")] = None,
    age: Annotated[int | None, typer.Option(help="Age class 0..5 needing free places")] = None,
    birth_date: Annotated[str | None, typer.Option(help="Child's birth date YYYY-MM-DD, instead of --age")] = None,
    min_free: Annotated[int, typer.Option(help="Free places needed for that age")] = 1,
    open_at: Annotated[str | None, typer.Option(help="Open at this Korean local time, YYYY-MM-DDTHH:MM")] = None,
    has_bus: Annotated[bool | None, typer.Option("--has-bus/--no-bus", help="Runs a school bus")] = None,
    cctv: Annotated[bool | None, typer.Option("--cctv/--no-cctv", help="Has CCTV")] = None,
    name: Annotated[str | None, typer.Option(help="Fragment of the centre name")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many centres (default: all)")] = None,
) -> None:
    """Write a static map (folium HTML) of a radius or 구/동 search with the usual filters, to share."""
    from datetime import date, datetime

    from geo.errors import InvalidQuery
    from geo.search import FacilityFilters
    from geo.search.static_maps import search_map

    settings = get_settings()
    try:
        try:
            born = date.fromisoformat(birth_date) if birth_date else None
            when = datetime.fromisoformat(open_at) if open_at else None
        except ValueError as exc:
            raise InvalidQuery(f"bad date or time ({exc})") from None
        filters = FacilityFilters.parse(services=service, services_match=service_match, types=type, status=status,
                                        age=age, birth_date=born, min_free=min_free, open_at=when, has_bus=has_bus,
                                        has_cctv=cctv, name=name)
        engine = migrated_engine()
        with engine.connect() as conn:
            result = search_map(conn, settings=settings, filters=filters, lat=lat, lon=lon, radius_m=radius_m,
                                district=district, dong=dong, limit=limit)
        result.save(out)
    except DolbomError as exc:
        fail(exc)
    except OSError as exc:
        console.print(f"[red]error:[/red] cannot write {out}: {exc.strerror or exc}")
        raise typer.Exit(code=1) from None
    console.print(f"wrote {out}: {len(result.features)} centres")
