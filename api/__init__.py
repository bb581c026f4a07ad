"""dolbom HTTP API (FastAPI). Handlers parse input and call ``geo``; errors are mapped in ``api.errors``."""
