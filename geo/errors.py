"""Domain errors. They carry no HTTP: ``api/errors.py`` maps them to status codes in one table."""

from __future__ import annotations

from typing import Any


class DolbomError(Exception):
    """Base of every domain error; ``detail`` is a human sentence, ``extra`` machine-readable context."""

    title = "Error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidQuery(DolbomError):
    """A search parameter is outside what the domain accepts (coordinates, radius, filter values)."""

    title = "Invalid query"


class NotFound(DolbomError):
    """A named thing (facility, district, dong, layer) does not exist."""

    title = "Not found"


class ImportFailed(DolbomError):
    """An import could not run at all (unreadable file, unknown format); nothing was written."""

    title = "Import failed"


class ImportRunning(ImportFailed):
    """Another import holds the import lock; nothing was written (try again when it has finished)."""

    title = "An import is running"


class ProvisioningError(DolbomError):
    """The local PostGIS cluster could not be installed, initialised or started."""

    title = "Provisioning failed"


class RoutingUnavailable(DolbomError):
    """Network catchments need a road network that has not been imported."""

    title = "Road network not loaded"


class Unauthenticated(DolbomError):
    """No valid session or token, or wrong credentials."""

    title = "Not authenticated"


class Forbidden(DolbomError):
    """The authenticated user's role does not allow this action on this resource."""

    title = "Forbidden"


class TooManyAttempts(DolbomError):
    """Too many failed logins for this account or client address; ``extra['retry_after_s']`` says how long."""

    title = "Too many failed attempts"


class RateLimited(DolbomError):
    """An abuse limit (``geo.auth.limits``) is used up; ``extra['retry_after_s']`` says when it is free again
    and ``extra['limit']`` names it."""

    title = "Too many requests"


class Conflict(DolbomError):
    """The write conflicts with existing data (e.g. an e-mail already registered)."""

    title = "Conflict"


class IllegalTransition(Conflict):
    """A state machine (geo/admission/states.py) has no such transition from the current state, or its guard
    refuses it; ``extra`` names the state and the event."""

    title = "Not allowed in this state"


class InvalidReport(InvalidQuery):
    """A vacancy report contradicts capacity or the class ratios; ``extra['param']`` names the field."""

    title = "Invalid vacancy report"


class SyncFailed(DolbomError):
    """A sync from an official API failed (timeout, error page, malformed answer); nothing was written."""

    title = "Sync failed"
