"""The PostGIS schema (GeoAlchemy2), one module per area, all on one ``Base`` so Alembic sees every table.

Importing ``geo.models`` registers every table on ``Base.metadata``; the modules import only ``geo.models.base``.
"""

from geo.models import (
    accounts,
    alerts,
    booking,
    disclosure,
    facilities,
    idempotency,
    inspections,
    planner,
    waitlist,
    waitlist_log,
)
from geo.models.base import Base

__all__ = ["Base", "accounts", "alerts", "booking", "disclosure", "facilities", "idempotency", "inspections",
           "planner", "waitlist", "waitlist_log"]
