"""Holiday, night, 24-hour, emergency and hourly care: slots, bookings with waiting lists, emergency requests
and SMS notifications through an outbox (no HTTP here; ``api/routers/bookings.py`` calls these functions)."""
