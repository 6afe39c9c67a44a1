"""Initial schema: action log, events, sessions, batch outbox and batch queue.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "actions",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("account", sa.String(128), nullable=True),
        sa.Column("scope", sa.String(128), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=True),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("scope", "idempotency_key", name="uq_actions_idempotency"),
    )
    op.create_table(
        "events",
        sa.Column("channel", sa.String(128), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("account", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "batches",
        sa.Column("number", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("header", sa.LargeBinary, nullable=False),
        sa.Column("ops_data", sa.LargeBinary, nullable=False),
        sa.Column("state_root", sa.LargeBinary(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("tx_hash", sa.LargeBinary(32), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_batches_status", "batches", ["status"])
    op.create_table(
        "batch_queue",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("item_key", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("item", sa.Text, nullable=False),
        sa.Column("batch_number", sa.BigInteger, nullable=True),
        sa.Column("rejected", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_batch_queue_batch", "batch_queue", ["batch_number"])


def downgrade() -> None:
    op.drop_table("batch_queue")
    op.drop_table("batches")
    op.drop_table("sessions")
    op.drop_table("events")
    op.drop_table("actions")
