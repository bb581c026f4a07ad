"""The waitlist's public transparency log: a queue of chain rows not yet in the log (filled by a trigger on
``waitlist_chain``, so no writer waits on a global lock), the leaves in log order, the stored hashes of full
subtrees, the published checkpoints and the witnesses' cosignatures. The rows already on the chains are queued
oldest first.

Revision ID: 0015_waitlist_log
Revises: 0014_saturday_hours
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_waitlist_log"
down_revision = "0014_saturday_hours"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "waitlist_log_pending",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "waitlist_log_leaves",
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(), nullable=False),
        sa.Column("integrated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("idx"),
        sa.UniqueConstraint("facility_id", "seq", name="uq_waitlist_log_leaves_chain_row"),
    )
    op.create_table(
        "waitlist_log_hashes",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx"),
    )
    op.create_table(
        "waitlist_log_checkpoints",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root_hash", sa.LargeBinary(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("size"),
    )
    op.create_table(
        "waitlist_log_cosignatures",
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("witness", sa.Text(), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("signed_at", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["size"], ["waitlist_log_checkpoints.size"]),
        sa.PrimaryKeyConstraint("size", "witness"),
    )
    op.execute("""
        CREATE FUNCTION waitlist_log_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO waitlist_log_pending (facility_id, seq) VALUES (NEW.facility_id, NEW.seq);
            RETURN NEW;
        END $$
    """)
    op.execute("""CREATE TRIGGER waitlist_log_enqueue AFTER INSERT ON waitlist_chain
                  FOR EACH ROW EXECUTE FUNCTION waitlist_log_enqueue()""")
    op.execute("""INSERT INTO waitlist_log_pending (facility_id, seq)
                  SELECT facility_id, seq FROM waitlist_chain ORDER BY created_at, facility_id, seq""")


def downgrade() -> None:
    op.execute("DROP TRIGGER waitlist_log_enqueue ON waitlist_chain")
    op.execute("DROP FUNCTION waitlist_log_enqueue()")
    op.drop_table("waitlist_log_cosignatures")
    op.drop_table("waitlist_log_checkpoints")
    op.drop_table("waitlist_log_hashes")
    op.drop_table("waitlist_log_leaves")
    op.drop_table("waitlist_log_pending")
