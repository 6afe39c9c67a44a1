"""The node's tables (SQLAlchemy Core): action log, events, sessions, batch outbox and its queue.

The schema is created and changed only by the Alembic revisions in ``migrations/versions``; these
definitions must match them (a test compares). Times are unix seconds; payloads are canonical JSON
text (sorted keys, no spaces), so equal payloads are equal strings on every backend.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = ["actions", "batch_queue", "batches", "events", "metadata", "sessions"]

metadata = MetaData()

actions = Table(
    "actions", metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(64), nullable=False),
    Column("account", String(128), nullable=True),
    # the idempotency scope: the account, or "" for actions without one (NULL never collides)
    Column("scope", String(128), nullable=False),
    Column("idempotency_key", String(128), nullable=True),
    Column("payload", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("scope", "idempotency_key", name="uq_actions_idempotency"),
)
"""The append-only log of accepted actions; ``seq`` is contiguous from 1 (assigned as max + 1
under the write lock, never from a sequence that a rollback would skip)."""

events = Table(
    "events", metadata,
    Column("channel", String(128), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("payload", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
"""Published events per channel, numbered from 1 per channel (WebSocket resume)."""

sessions = Table(
    "sessions", metadata,
    Column("token_hash", LargeBinary(32), primary_key=True),
    Column("account", String(128), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
"""Signed-login sessions, by the hash of their bearer token (the token itself is never stored)."""

batches = Table(
    "batches", metadata,
    Column("number", BigInteger, primary_key=True, autoincrement=False),
    Column("header", LargeBinary, nullable=False),
    Column("ops_data", LargeBinary, nullable=False),
    Column("state_root", LargeBinary(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("tx_hash", LargeBinary(32), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_batches_status", "status"),
)
"""The batch outbox: each batch's exact bytes are stored before it is posted, so a restart
re-posts the same bytes and never a different batch under the same number."""

batch_queue = Table(
    "batch_queue", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_key", LargeBinary(32), nullable=False, unique=True),
    Column("item", Text, nullable=False),
    Column("batch_number", BigInteger, nullable=True),
    Column("rejected", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_batch_queue_batch", "batch_number"),
)
"""Items waiting for a batch (trades, queue entries, requests), keyed by the hash of their
encoding so adding one twice (a replay after a crash) is a no-op; ``batch_number`` is set in the
same transaction that stores the batch, ``rejected`` holds the STF's reason for an item left out."""
