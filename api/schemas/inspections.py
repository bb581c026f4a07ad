"""Shapes of inspections (지도점검): the checklist, the risk list, inspections, findings and complaints."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _no_control_but_lines(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (line breaks and tabs are fine)")
    return value


# What an officer or a centre writes: several lines, bounded (geo.inspections.register.MAX_TEXT).
LongText = Annotated[str, StringConstraints(max_length=4000), AfterValidator(_no_control_but_lines)]
Result = Literal["compliant", "violation", "not_checked"]


class ChecklistItemOut(BaseModel):
    """One item of the checklist."""

    code: str
    ko: str
    en: str
    basis: str = Field(description="영유아보육법 articles")
    confirmed: bool = Field(description="Whether the article was checked against a source")


class ChecklistOut(BaseModel):
    """A version of the checklist."""

    version: int
    sha256: str
    source: str
    items: list[ChecklistItemOut]


class ComponentOut(BaseModel):
    """A named part of a risk score."""

    code: str
    points: int
    facts: dict[str, int | str | None]


class RankedOut(BaseModel):
    """A centre on the risk list."""

    rank: int
    code: str
    name: str
    score: int = Field(description="The sum of the components' points")
    components: list[ComponentOut]
    planned: int | None = Field(description="Id of an inspection planned already")


class RiskListOut(BaseModel):
    """The 구's operating centres ranked by risk."""

    district_code: str
    weights: dict[str, int]
    centres: list[RankedOut]


class ComplaintIn(BaseModel):
    """A complaint (민원) about a centre."""

    model_config = ConfigDict(extra="forbid")

    received_at: dt.datetime
    summary: LongText
    source: Literal["phone", "online", "visit", "referral", "other"]


class ComplaintOut(BaseModel):
    """A recorded complaint."""

    id: int
    centre: str
    received_at: dt.datetime
    summary: str
    source: str


class PlanIn(BaseModel):
    """A visit to plan."""

    model_config = ConfigDict(extra="forbid")

    planned_for: dt.date
    reason: LongText | None = None


class ItemResultIn(BaseModel):
    """The result of one checklist item (a violation needs a note: it becomes the finding's description)."""

    model_config = ConfigDict(extra="forbid")

    result: Result
    note: LongText | None = None


class VisitIn(BaseModel):
    """The visit's results by checklist item code (items left out are not checked)."""

    model_config = ConfigDict(extra="forbid")

    results: dict[Annotated[str, StringConstraints(max_length=40)], ItemResultIn] = Field(max_length=50)


class FindingIn(BaseModel):
    """A finding on a checklist item."""

    model_config = ConfigDict(extra="forbid")

    item: Annotated[str, StringConstraints(max_length=40)]
    description: LongText


class OrderIn(BaseModel):
    """A corrective order (시정명령) with its deadline (a day in Seoul)."""

    model_config = ConfigDict(extra="forbid")

    order_text: LongText
    deadline: dt.date


class AnswerIn(BaseModel):
    """The centre's answer: what was corrected and the evidence."""

    model_config = ConfigDict(extra="forbid")

    answer_text: LongText


class CloseIn(BaseModel):
    """Closing a finding, with an optional note."""

    model_config = ConfigDict(extra="forbid")

    note: LongText | None = None


class ReopenIn(BaseModel):
    """Refusing an answer: why, and the new deadline."""

    model_config = ConfigDict(extra="forbid")

    reason: LongText
    deadline: dt.date


class FindingOut(BaseModel):
    """A finding with its corrective order and answer; ``id`` is what sanctions and disclosures reference."""

    id: int
    inspection_id: int
    centre: str
    centre_name: str
    district_code: str | None
    item_code: str
    description: str
    status: str
    order_text: str | None
    deadline: dt.date | None
    ordered_at: dt.datetime | None
    answer_text: str | None
    answered_at: dt.datetime | None
    close_note: str | None
    closed_at: dt.datetime | None
    created_at: dt.datetime


class FindingList(BaseModel):
    """Findings."""

    findings: list[FindingOut]


class ItemOut(ChecklistItemOut):
    """A checklist item with the visit's result."""

    result: str | None
    note: str | None


class InspectionSummary(BaseModel):
    """An inspection without its items."""

    id: int
    centre: str
    centre_name: str
    district_code: str | None
    status: str
    planned_for: dt.date
    reason: str | None
    checklist_version: int
    checklist_sha256: str
    visited_at: dt.datetime | None
    closed_at: dt.datetime | None
    created_at: dt.datetime


class InspectionOut(InspectionSummary):
    """An inspection with its checklist results and findings."""

    items: list[ItemOut]
    findings: list[FindingOut]


class InspectionList(BaseModel):
    """Inspections."""

    inspections: list[InspectionSummary]


class OverdueOut(BaseModel):
    """Findings moved to overdue."""

    overdue: list[int]

