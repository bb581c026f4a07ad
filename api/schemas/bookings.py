"""Request bodies of the booking API."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.accounts import AgeKey, Code, PersonalText, Phone, Text


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SlotBody(_Body):
    """One slot: a day, a time range (Korean time) and places by age."""

    service: Text = Field(max_length=20, examples=["holiday"])
    date: dt.date
    start: dt.time
    end: dt.time
    places_by_age: dict[AgeKey, int] = Field(examples=[{"1": 2, "2": 3}])


class PatternBody(_Body):
    """A recurring pattern: a weekday (0 = Monday) or public holidays, with exceptions."""

    service: Text = Field(max_length=20, examples=["holiday"])
    weekday: int | None = Field(default=None, ge=0, le=6)
    on_holidays: bool = False
    skip_holidays: bool = False
    start: dt.time
    end: dt.time
    places_by_age: dict[AgeKey, int]
    valid_from: dt.date
    valid_until: dt.date
    exceptions: list[dt.date] = Field(default_factory=list, max_length=366)


class BookingBody(_Body):
    """Book a slot for one child."""

    slot_id: int = Field(ge=1)
    child_age: int = Field(ge=0, le=5)
    child_name: PersonalText | None = Field(default=None, max_length=100)
    phone: Phone | None = Field(default=None, examples=["010-1234-5678"],
                                description="Ignored (checked for shape only): texts go to the phone of the "
                                            "parent's 본인인증 (docs/accounts.md)")
    lang: str = Field(default="ko", pattern="^(ko|en|zh|vi)$")
    join_waitlist: bool = False


class EmergencyBody(_Body):
    """"Tonight, near here, age 2"."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    child_age: int = Field(ge=0, le=5)
    phone: Phone | None = Field(default=None,
                                description="Ignored (checked for shape only): texts go to the phone of the "
                                            "parent's 본인인증 (docs/accounts.md)")
    lang: str = Field(default="ko", pattern="^(ko|en|zh|vi)$")
    radius_m: float | None = Field(default=None, gt=0)
    hours: float = Field(default=12.0, gt=0, le=24)


class EmergencyAcceptBody(_Body):
    """Which of the staff member's centres accepts."""

    centre: Code = Field(max_length=40, description="어린이집코드")
