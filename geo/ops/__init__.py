"""Operations: provisioning the local PostgreSQL cluster (standbys, PgBouncer), backups and point-in-time
recovery (pgBackRest), the read router, migrations."""
