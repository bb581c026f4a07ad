"""The access log without query strings: what a parent types (a home address in ``/places/search?q=``, a child's
age, a point on the map) stays out of the server's logs. Paths are kept; every value a client sends in a query is
dropped before uvicorn's access logger writes the line."""

from __future__ import annotations

import logging

ACCESS_LOGGER = "uvicorn.access"


class DropQueryStrings(logging.Filter):
    """Rewrites uvicorn's access record ``(client, method, full_path, http_version, status)`` to the path alone."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (args[0], args[1], args[2].split("?", 1)[0], args[3], args[4])
        return True


def install_access_log_filter() -> None:
    """Add ``DropQueryStrings`` to uvicorn's access logger (once per process)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, DropQueryStrings) for f in logger.filters):
        logger.addFilter(DropQueryStrings())
