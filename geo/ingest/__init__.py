"""Importers for official formats, boundaries and population."""
