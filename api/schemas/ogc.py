"""The JSON body of ``POST /ogc/collections/{id}/search``: the query of GET items, with the filter as CQL2 JSON."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from geo.validation import MAX_OFFSET


class SearchBody(BaseModel):
    """A query of a collection's items (member names as the GET parameters; unknown members are a 400)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    filter: dict[str, Any] | bool | str | None = Field(
        None, description="CQL2 JSON (an object), or CQL2 text (a string)")
    filter_lang: Literal["cql2-json", "cql2-text"] | None = Field(
        None, alias="filter-lang", description="default: cql2-json for an object, cql2-text for a string")
    filter_crs: str | None = Field(None, alias="filter-crs", max_length=200)
    bbox: list[float] | None = Field(None, min_length=4, max_length=6,
                                     description="minx, miny, maxx, maxy in bbox-crs axis order")
    bbox_crs: str | None = Field(None, alias="bbox-crs", max_length=200)
    datetime: str | None = Field(None, max_length=100, description="RFC 3339 instant or interval")
    properties: list[str] | None = Field(None, max_length=100, description="property names to return")
    sortby: str | list[str] | None = Field(None, description="`+name,-capacity` or [\"+name\", \"-capacity\"]")
    crs: str | None = Field(None, max_length=200, description="output CRS URI")
    limit: int = Field(10, ge=1, le=100_000, description="page size (clamped to the configured maximum)")
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
