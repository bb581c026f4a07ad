"""Operations: provisioning the local PostgreSQL cluster (standbys, PgBouncer), the read router, migrations."""
