"""Admission (입소) waitlist: priority rules as data, ranking, the intake round, and a verifiable event log."""
