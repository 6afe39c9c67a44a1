"""The node's database engine: SQLite (default) or PostgreSQL, durable or refused.

Owns engine creation, the per-connection settings that make a commit durable, the start-up check
that reads them back, and running the Alembic migrations shipped with the package. Nothing here
knows the node's tables (``models``) or its operations (``store``).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from clearhouse.errors import StoreConfigError

__all__ = [
    "BUSY_TIMEOUT_MS",
    "SQLITE_PRAGMAS",
    "check_durability",
    "create_store_engine",
    "get_migrations_path",
    "run_migrations",
]

BUSY_TIMEOUT_MS = 30_000
"""Milliseconds a SQLite writer waits for another writer's lock before failing (two processes may
share one file: the node and an operator's tool)."""

SQLITE_PRAGMAS: Mapping[str, str] = {
    "journal_mode": "WAL",
    "synchronous": "FULL",
    "foreign_keys": "ON",
}
"""Set on every SQLite connection. WAL lets readers run beside the writer; ``synchronous=FULL``
fsyncs the WAL at every commit, so an acknowledged action survives power loss (NORMAL may lose the
last commits: refused)."""

_SQLITE_REQUIRED = {"journal_mode": "wal", "synchronous": "2"}
"""What :func:`check_durability` must read back (``synchronous`` reads as a number: FULL = 2;
EXTRA = 3 is accepted too)."""


def _parse_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreConfigError(f"not a database URL: {url!r}", field="url") from exc
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreConfigError(f"unsupported database backend {parsed.get_backend_name()!r}",
                               field="url")
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() != "psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _install_sqlite_hooks(engine: Engine, pragmas: Mapping[str, str]) -> None:
    """Driver-level autocommit plus our own BEGIN: pysqlite's implicit transactions would let two
    writers both read and then deadlock upgrading; ``BEGIN IMMEDIATE`` takes the write lock first."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        for name, value in pragmas.items():
            cursor.execute(f"PRAGMA {name} = {value}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def create_store_engine(url: str, *, pragmas: Mapping[str, str] | None = None) -> Engine:
    """An engine for ``url`` (``sqlite:///path`` or ``postgresql[+psycopg]://…``).

    ``pragmas`` override :data:`SQLITE_PRAGMAS` key by key (tests use it to prove a weaker setting
    is refused by :func:`check_durability`). Raises :class:`StoreConfigError` for other backends.
    """
    parsed = _parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, connect_args={"check_same_thread": False})
        _install_sqlite_hooks(engine, {**SQLITE_PRAGMAS, **(pragmas or {})})
        return engine
    return create_engine(parsed, pool_pre_ping=True)


def check_durability(engine: Engine) -> None:
    """Read back the settings a durable commit depends on; :class:`StoreConfigError` if any is off.

    SQLite: ``journal_mode`` is ``wal`` and ``synchronous`` is FULL (2) or EXTRA (3). PostgreSQL:
    ``synchronous_commit`` is ``on`` (``off``, ``local`` and ``remote_write`` may acknowledge a
    commit that a crash then loses).
    """
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                journal = str(conn.exec_driver_sql("PRAGMA journal_mode").scalar()).lower()
                sync = str(conn.exec_driver_sql("PRAGMA synchronous").scalar())
                if journal != _SQLITE_REQUIRED["journal_mode"]:
                    raise StoreConfigError(f"SQLite journal_mode is {journal}, not WAL",
                                           field="journal_mode", value=journal)
                if sync not in ("2", "3"):
                    raise StoreConfigError(f"SQLite synchronous is {sync}, not FULL (2)",
                                           field="synchronous", value=sync)
            else:
                commit = str(conn.execute(text("SHOW synchronous_commit")).scalar())
                if commit != "on":
                    raise StoreConfigError(f"PostgreSQL synchronous_commit is {commit}, not on",
                                           field="synchronous_commit", value=commit)
    except SQLAlchemyError as exc:
        raise StoreConfigError(f"cannot open the database: {exc}", field="url") from exc


def get_migrations_path() -> str:
    """The Alembic script folder shipped inside the package (works from an installed wheel)."""
    return str(resources.files("clearhouse.store").joinpath("migrations"))


def run_migrations(engine: Engine) -> None:
    """``alembic upgrade head`` on ``engine``, programmatically; idempotent."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", get_migrations_path())
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":  # two nodes starting at once migrate in turn
                conn.execute(text("SELECT pg_advisory_xact_lock(726574)"))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        raise StoreConfigError(f"migrations failed: {exc}", field="url") from exc
