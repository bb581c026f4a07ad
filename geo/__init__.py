"""dolbom spatial core: settings, database, schema, ingest, search and analysis (no web framework here)."""
