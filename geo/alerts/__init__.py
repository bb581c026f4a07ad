"""Saved searches with vacancy alerts: "tell me when a 1세 place opens within 1 km of home", by SMS or e-mail.

``searches``: creating, listing, pausing, deleting and unsubscribing (the owner's explicit opt-in is required and
recorded); ``firing``: what a live vacancy report sends (called by ``geo.vacancy.reports.submit_report`` in the
report's transaction, one outbox message per matching search and change). docs/alerts.md states the rules.
"""
