"""Request bodies of the waitlist endpoints."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.accounts import PersonalText


class ChildIn(BaseModel):
    """A child registered by a verified parent, with the priority categories claimed."""

    model_config = ConfigDict(extra="forbid")
    name: PersonalText = Field(min_length=1, max_length=100)
    birth_date: date
    claims: list[Annotated[str, Field(max_length=60, pattern=r"^[a-z0-9_]+$")]] = Field(default_factory=list,
                                                                                        max_length=20)
    claim_details: dict[Annotated[str, Field(max_length=60, pattern=r"^[a-z0-9_]+$")],
                        Annotated[str, Field(max_length=40)]] = Field(
        default_factory=dict, max_length=20,
        description="detail of a claim: for sibling_enrolled the facility code where the sibling is enrolled")
    enrolled: bool = False


class ApplyIn(BaseModel):
    """An application of one of the parent's children to a centre."""

    model_config = ConfigDict(extra="forbid")
    child_id: int = Field(ge=1, le=2_147_483_647)
    centre: str = Field(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z_-]+$")


class EvidenceIn(BaseModel):
    """The checked state of a child's claim."""

    model_config = ConfigDict(extra="forbid")
    child: str = Field(min_length=1, max_length=32, pattern=r"^[0-9a-f]+$")
    category: str = Field(min_length=1, max_length=60, pattern=r"^[a-z0-9_]+$")
    evidence: Literal["verified_centre", "verified_record", "rejected", "claimed"]


class OfferIn(BaseModel):
    """Offer a free place of an age class to the first eligible entry."""

    model_config = ConfigDict(extra="forbid")
    age_class: int = Field(ge=0, le=5)


class CorrectionIn(BaseModel):
    """An administrator's correction of an entry's status, with its reason."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["waiting", "withdrawn", "dropped", "lapsed"]
    reason: str = Field(min_length=1, max_length=500, pattern=r"^[^\x00]+$")
