"""Planner analyses: accessibility, blind spots."""
