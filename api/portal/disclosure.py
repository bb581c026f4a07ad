"""What the portal's public centre page shows of a centre's sanctions and grades: the violations published today
(위반사실 공표, the clock of the app's settings) and the evaluation grades (평가제); and the labels of the kinds."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy import Connection

from geo.disclosure.files import evaluation_history
from geo.disclosure.records import active_disclosures
from geo.disclosure.rules import SanctionKind
from geo.settings import Settings


def _(message: str) -> str:
    """Mark a message for extraction (translated when shown)."""
    return message


KIND_LABELS: dict[str, str] = {
    SanctionKind.correction_order.value: _("Correction order (시정명령)"),
    SanctionKind.suspension.value: _("Suspension of operation (운영정지)"),
    SanctionKind.closure.value: _("Closure (폐쇄)"),
    SanctionKind.penalty_surcharge.value: _("Penalty surcharge (과징금)"),
    SanctionKind.subsidy_recovery.value: _("Order to return subsidies (보조금 반환명령)"),
    SanctionKind.qualification_suspension.value: _("Suspension of qualification (자격정지)"),
}


def public_facts(request: Request, conn: Connection, code: str) -> dict[str, Any]:
    """``disclosures`` published now and ``evaluations`` (newest first) of centre ``code``, for the template."""
    settings = getattr(request.app, "settings", None)
    now = settings.now() if isinstance(settings, Settings) else Settings().now()
    return {"disclosures": active_disclosures(conn, now=now, facility_code=code),
            "evaluations": evaluation_history(conn, facility_code=code), "kind_labels": KIND_LABELS}
