"""Shapes of the statistics (보육통계) API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class StatisticsLink(BaseModel):
    """A link to a representation of a table."""

    rel: str
    href: str
    type: str


class StatisticsTableInfo(BaseModel):
    """One statistics table: what it counts and where to get it."""

    id: str = Field(examples=["places"])
    title: str
    about: str
    levels: list[str] = Field(description="Area levels it is published for (city, sigungu, dong)")
    links: list[StatisticsLink]


class StatisticsIndex(BaseModel):
    """The statistics tables."""

    tables: list[StatisticsTableInfo]


class StatisticsColumn(BaseModel):
    """A column: its name in rows, its label in the asked language and its kind."""

    name: str
    label: str
    kind: str = Field(description="key, count, sum, percent, days or date")


class StatisticsTableOut(BaseModel):
    """A computed table: columns, then one row per area (and the table's own keys)."""

    id: str
    title: str
    about: str
    level: str
    district_code: str | None
    columns: list[StatisticsColumn]
    rows: list[dict[str, Any]]
    value_names: dict[str, dict[str, str]] = Field(
        description="What the coded values of key columns are called in the asked language")
