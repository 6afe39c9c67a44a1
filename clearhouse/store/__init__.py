"""clearhouse.store: the node's durable state (SQLAlchemy + Alembic; SQLite or PostgreSQL).

``open_store(url)`` migrates the database, checks that commits are durable and returns a
:class:`Store` whose every method is one committed transaction.
"""

from clearhouse.store.db import check_durability, create_store_engine, run_migrations
from clearhouse.store.store import (
    BATCH_STATUSES,
    BATCH_TRANSITIONS,
    ActionRecord,
    BatchRecord,
    EventRecord,
    QueuedItem,
    SessionRecord,
    Store,
    compute_canonical_json,
    is_legal_transition,
    open_store,
)

__all__ = [
    "BATCH_STATUSES",
    "BATCH_TRANSITIONS",
    "ActionRecord",
    "BatchRecord",
    "EventRecord",
    "QueuedItem",
    "SessionRecord",
    "Store",
    "check_durability",
    "compute_canonical_json",
    "create_store_engine",
    "is_legal_transition",
    "open_store",
    "run_migrations",
]
