"""Shapes of the designations register and of the staff languages."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.accounts import Text


class DesignationIn(BaseModel):
    """A new designation of a service to a centre."""

    model_config = ConfigDict(extra="forbid")

    service: Text = Field(max_length=40, examples=["multicultural"])
    authority: Text = Field(max_length=100, examples=["마포구청"])
    valid_from: dt.date
    valid_to: dt.date | None = Field(default=None, description="Last valid day (inclusive); open-ended when null")
    note: Text | None = Field(default=None, max_length=200)


class DesignationEndIn(BaseModel):
    """The last day a designation holds."""

    model_config = ConfigDict(extra="forbid")

    valid_to: dt.date


class DesignationOut(BaseModel):
    """One designation of the register."""

    id: int
    centre: str
    centre_name: str
    district_code: str | None
    service: str
    authority: str
    valid_from: dt.date
    valid_to: dt.date | None
    note: str | None
    created_at: dt.datetime
    ended_at: dt.datetime | None
    active: bool = Field(description="Holds today (Seoul)")
    in_official_data: bool = Field(description="The official data also lists the service for the centre")


class DesignationList(BaseModel):
    """Designations, newest first."""

    designations: list[DesignationOut]


class LanguagesIn(BaseModel):
    """The languages the centre's staff speak (replaces the earlier list)."""

    model_config = ConfigDict(extra="forbid")

    languages: list[str] = Field(max_length=12, examples=[["zh", "vi", "en"]],
                                 description="ISO 639-1 codes")


class LanguagesOut(BaseModel):
    """The centre's declared staff languages."""

    centre: str
    languages: list[str]
