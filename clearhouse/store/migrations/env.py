"""Alembic environment: always run online on the connection :func:`run_migrations` hands over."""

from __future__ import annotations

from alembic import context

from clearhouse.store.models import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached from the alembic CLI without a connection
    raise RuntimeError("clearhouse migrations run through clearhouse.store.db.run_migrations")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
