"""accounts, roles, sessions/tokens, audit log, live vacancy reports and events

Revision ID: 0006_accounts_vacancy
Revises: 0005_planner
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0006_accounts_vacancy'
down_revision = "0005_planner"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.Text(), nullable=False),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('display_name', sa.Text(), nullable=True),
    sa.Column('district_code', sa.String(length=5), nullable=True),
    sa.Column('disabled', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('verified_name', sa.Text(), nullable=True),
    sa.Column('verified_birth_date', sa.Date(), nullable=True),
    sa.Column('verified_phone', sa.Text(), nullable=True),
    sa.Column('ci_hash', sa.String(length=64), nullable=True),
    sa.Column('identity_provider', sa.Text(), nullable=True),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("role IN ('parent', 'centre_staff', 'district_officer', 'city_admin')", name='ck_users_role'),
    sa.CheckConstraint("(role = 'district_officer') = (district_code IS NOT NULL)", name='ck_users_district'),
    sa.ForeignKeyConstraint(['district_code'], ['districts.code'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ci_hash'),
    sa.UniqueConstraint('email')
    )
    op.create_table('user_centres',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('facility_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['facility_id'], ['facilities.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'facility_id')
    )
    op.create_index(op.f('ix_user_centres_facility_id'), 'user_centres', ['facility_id'], unique=False)
    op.create_table('auth_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('csrf_hash', sa.String(length=64), nullable=True),
    sa.Column('label', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind IN ('session', 'bearer')", name='ck_auth_tokens_kind'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_index(op.f('ix_auth_tokens_user_id'), 'auth_tokens', ['user_id'], unique=False)
    op.create_table('login_failures',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('email', sa.Text(), nullable=False),
    sa.Column('client_ip', sa.Text(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_login_failures_client_ip'), 'login_failures', ['client_ip'], unique=False)
    op.create_index(op.f('ix_login_failures_email'), 'login_failures', ['email'], unique=False)
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('actor_user_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.Text(), nullable=False),
    sa.Column('entity', sa.Text(), nullable=False),
    sa.Column('entity_id', sa.Text(), nullable=True),
    sa.Column('before', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('after', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.ForeignKeyConstraint(['actor_user_id'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_audit_log_actor_user_id'), 'audit_log', ['actor_user_id'], unique=False)
    op.create_index(op.f('ix_audit_log_at'), 'audit_log', ['at'], unique=False)
    op.create_index('ix_audit_log_entity', 'audit_log', ['entity', 'entity_id'], unique=False)
    op.create_table('vacancy_reports',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('facility_id', sa.Integer(), nullable=False),
    sa.Column('author_user_id', sa.Integer(), nullable=True),
    sa.Column('reported_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('enrolled_by_age', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('free_by_age', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('classes_by_age', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('capacity', sa.Integer(), nullable=True),
    sa.Column('enrolled', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['author_user_id'], ['users.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['facility_id'], ['facilities.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_vacancy_reports_facility_reported', 'vacancy_reports', ['facility_id', 'reported_at'], unique=False)
    op.create_table('vacancy_events',
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('facility_id', sa.Integer(), nullable=False),
    sa.Column('facility_code', sa.String(length=40), nullable=False),
    sa.Column('district_code', sa.String(length=5), nullable=True),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['facility_id'], ['facilities.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('seq')
    )
    op.create_index(op.f('ix_vacancy_events_facility_id'), 'vacancy_events', ['facility_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_vacancy_events_facility_id'), table_name='vacancy_events')
    op.drop_table('vacancy_events')
    op.drop_index('ix_vacancy_reports_facility_reported', table_name='vacancy_reports')
    op.drop_table('vacancy_reports')
    op.drop_index('ix_audit_log_entity', table_name='audit_log')
    op.drop_index(op.f('ix_audit_log_at'), table_name='audit_log')
    op.drop_index(op.f('ix_audit_log_actor_user_id'), table_name='audit_log')
    op.drop_table('audit_log')
    op.drop_index(op.f('ix_login_failures_email'), table_name='login_failures')
    op.drop_index(op.f('ix_login_failures_client_ip'), table_name='login_failures')
    op.drop_table('login_failures')
    op.drop_index(op.f('ix_auth_tokens_user_id'), table_name='auth_tokens')
    op.drop_table('auth_tokens')
    op.drop_index(op.f('ix_user_centres_facility_id'), table_name='user_centres')
    op.drop_table('user_centres')
    op.drop_table('users')
