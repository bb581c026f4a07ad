"""Pseudonymising stored rows: personal fields are replaced, the rows (needed for statistics and the audit trail's
who-did-what-when) stay."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text

# Keys of audit ``before``/``after`` values that hold personal data.
PERSONAL_AUDIT_KEYS = ("email", "display_name", "verified_name", "verified_birth_date", "verified_phone", "phone",
                       "recipient", "name", "child_name", "birth_date")
ERASED = "erased"
# Rounding of an emergency request's place once pseudonymised: 0.01 degree, about a kilometre.
COARSE_DEGREES = 2

_SCRUB_AUDIT = text("""
    UPDATE audit_log SET
        before = (SELECT jsonb_object_agg(k, CASE WHEN k = ANY(:keys) AND v <> 'null'::jsonb
                                                  THEN to_jsonb(CAST(:erased AS text)) ELSE v END)
                  FROM jsonb_each(before) AS e(k, v)),
        after = (SELECT jsonb_object_agg(k, CASE WHEN k = ANY(:keys) AND v <> 'null'::jsonb
                                                 THEN to_jsonb(CAST(:erased AS text)) ELSE v END)
                 FROM jsonb_each(after) AS e(k, v))
    WHERE (CAST(:uid AS text) IS NULL OR (entity = 'users' AND entity_id = CAST(:uid AS text)))
      AND (CAST(:older_than AS timestamptz) IS NULL OR at < CAST(:older_than AS timestamptz))
      AND EXISTS (SELECT 1 FROM jsonb_each(COALESCE(before, '{}') ) AS b(k, v) WHERE k = ANY(:keys)
                  AND v <> 'null'::jsonb AND v <> to_jsonb(CAST(:erased AS text))
                  UNION ALL
                  SELECT 1 FROM jsonb_each(COALESCE(after, '{}')) AS a(k, v) WHERE k = ANY(:keys)
                  AND v <> 'null'::jsonb AND v <> to_jsonb(CAST(:erased AS text)))
""")


def scrub_audit(conn: Connection, *, user_id: int | None = None, older_than: datetime | None = None) -> int:
    """Replace the personal fields (``PERSONAL_AUDIT_KEYS``) of audit rows by ``"erased"``: the rows about the
    account ``user_id`` and/or the rows written before ``older_than``. Returns how many rows changed (rows
    already scrubbed are not touched again)."""
    if user_id is None and older_than is None:
        raise ValueError("scrub_audit needs user_id or older_than")
    return conn.execute(_SCRUB_AUDIT, {"uid": user_id, "older_than": older_than,
                                       "keys": list(PERSONAL_AUDIT_KEYS), "erased": ERASED}).rowcount
