"""The node's ``Store``: every method is one transaction, committed before it returns.

Owns the operations on the tables of ``models``: the append-only action log with idempotency keys,
per-channel event numbering, sessions, and the batch outbox state machine
``built → posted → included → final | challenged`` with its queue of items waiting for a batch.
A refused call raises a :class:`~clearhouse.errors.StoreError` subclass and writes nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from sqlalchemy import Connection, Engine, Row, Select, func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from clearhouse.errors import (
    BatchConflict,
    BatchOutOfOrder,
    IdempotencyConflict,
    IllegalTransition,
    InvalidPayload,
    StoreError,
    UnknownBatch,
)
from clearhouse.store.db import check_durability, create_store_engine, run_migrations
from clearhouse.store.models import actions, batch_queue, batches, events, sessions
from clearhouse.types import BatchNumber, Digest, Timestamp

__all__ = [
    "BATCH_STATUSES",
    "BATCH_TRANSITIONS",
    "ActionRecord",
    "BatchRecord",
    "EventRecord",
    "QueuedItem",
    "SessionRecord",
    "Store",
    "compute_canonical_json",
    "is_legal_transition",
    "open_store",
]

BATCH_STATUSES: Final = ("built", "posted", "included", "final", "challenged")
"""The outbox states, in order of progress (``challenged`` is terminal beside ``final``)."""

BATCH_TRANSITIONS: Final = frozenset({
    ("built", "posted"),
    ("posted", "posted"),          # the same bytes re-sent (replacement tx after a restart)
    ("posted", "included"),
    ("included", "final"),
    ("included", "challenged"),
})
"""Legal status changes. Repeating ``included``/``final``/``challenged`` is a no-op (recovery may
record what it already recorded); anything else raises :class:`IllegalTransition`."""

_REPEATABLE: Final = frozenset({"included", "final", "challenged"})
_MAX_RETRIES: Final = 64
_PAGE: Final = 1000

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """One accepted action of the log."""

    seq: int
    """Position in the log, contiguous from 1."""
    kind: str
    """``order``, ``cancel``, ``rfq``, ``quote``, ``accept``, ``withdrawal``, ``tick``…"""
    account: str | None
    """Who submitted it (``None`` for node-internal actions such as ticks)."""
    payload: dict[str, Any]
    """The action as accepted (plain JSON)."""
    created_at: Timestamp
    """Unix seconds when it was committed."""
    duplicate: bool = False
    """True when this call repeated an idempotency key: the original record, nothing written."""


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One published event of a channel."""

    channel: str
    """The channel (``book:ETH-…``, ``account:0x…``, ``batches``…)."""
    seq: int
    """Position in the channel, contiguous from 1."""
    payload: dict[str, Any]
    """The event (plain JSON)."""
    created_at: Timestamp
    """Unix seconds."""


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A signed-login session."""

    account: str
    """The account that signed in."""
    token_hash: bytes
    """Hash of the bearer token (the token is never stored)."""
    expires_at: Timestamp
    """Unix seconds."""
    created_at: Timestamp
    """Unix seconds."""


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """One batch of the outbox."""

    number: BatchNumber
    """The batch number (contiguous)."""
    header: bytes
    """The encoded header exactly as posted."""
    ops_data: bytes
    """The operations data exactly as posted."""
    state_root: Digest
    """The state root after the batch (32 bytes)."""
    status: str
    """One of :data:`BATCH_STATUSES`."""
    tx_hash: bytes | None
    """The last posting transaction's hash, once posted."""
    created_at: Timestamp
    """Unix seconds when stored."""
    updated_at: Timestamp
    """Unix seconds of the last status change."""


@dataclass(frozen=True, slots=True)
class QueuedItem:
    """An item waiting for (or placed in) a batch."""

    id: int
    """Queue order."""
    item_key: bytes
    """32-byte identity of the item (hash of its encoding)."""
    item: dict[str, Any]
    """The encoded item (plain JSON)."""
    batch_number: BatchNumber | None
    """The batch that took it (or left it out), ``None`` while pending."""
    rejected: str | None
    """Why the STF left it out, if it did."""


_SCALARS: Final = (str, int, bool, type(None), float)


def _has_only_str_keys(value: object) -> bool:
    # exact-type checks first: the ABC check of Mapping is slow and runs for every logged value
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is dict or isinstance(value, Mapping):
        return all(isinstance(k, str) and _has_only_str_keys(v)
                   for k, v in value.items())  # type: ignore[attr-defined]
    if isinstance(value, list | tuple):
        return all(_has_only_str_keys(v) for v in value)
    return True


def compute_canonical_json(payload: Mapping[str, Any], field: str = "payload") -> str:
    """Sorted keys, no spaces, no NaN: equal payloads give equal strings on every backend.

    Raises :class:`InvalidPayload` for anything that would not read back equal (bytes, NaN,
    non-string keys, which JSON would silently turn into strings)."""
    if not _has_only_str_keys(payload):
        raise InvalidPayload(f"{field} has a non-string key", field=field)
    try:
        return json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False,
                          ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise InvalidPayload(f"{field} is not plain JSON: {exc}", field=field) from exc


def is_legal_transition(current: str, new: str) -> bool:
    """True when the outbox may move a batch from ``current`` to ``new``."""
    return (current, new) in BATCH_TRANSITIONS or (current == new and new in _REPEATABLE)


def _check_json_payload(payload: object, field: str) -> str:
    if not isinstance(payload, Mapping):
        raise InvalidPayload(f"{field} must be a JSON object", field=field)
    return compute_canonical_json(payload, field)


def _action(row: Any, duplicate: bool = False) -> ActionRecord:
    return ActionRecord(int(row.seq), row.kind, row.account, json.loads(row.payload),
                        Timestamp(int(row.created_at)), duplicate)


def _batch(row: Any) -> BatchRecord:
    return BatchRecord(BatchNumber(int(row.number)), bytes(row.header), bytes(row.ops_data),
                       Digest(bytes(row.state_root)), row.status,
                       None if row.tx_hash is None else bytes(row.tx_hash),
                       Timestamp(int(row.created_at)), Timestamp(int(row.updated_at)))


def _queued(row: Any) -> QueuedItem:
    number = None if row.batch_number is None else BatchNumber(int(row.batch_number))
    return QueuedItem(int(row.id), bytes(row.item_key), json.loads(row.item), number, row.rejected)


class Store:
    """The node's durable state. Build it with :func:`open_store`.

    Thread-safe: each call takes its own pooled connection. Writers serialise on the database
    (SQLite ``BEGIN IMMEDIATE``; on PostgreSQL a unique-key collision is retried), so two writers
    never lose or duplicate a sequence number.
    """

    def __init__(self, engine: Engine, clock: Callable[[], int] | None = None) -> None:
        self._engine = engine
        self._clock = clock or (lambda: int(time.time()))

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for tools and tests; the node goes through the methods)."""
        return self._engine

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    # --- transactions ------------------------------------------------------------------------

    def _write(self, body: Callable[[Connection], T]) -> T:
        """Run ``body`` in one write transaction, retrying a collision with a concurrent writer."""
        for _ in range(_MAX_RETRIES):
            try:
                with self._engine.connect() as conn:
                    conn = conn.execution_options(sqlite_begin="IMMEDIATE")
                    with conn.begin():
                        return body(conn)
            except IntegrityError:
                continue  # another writer took the key or seq we computed: recompute
            except OperationalError as exc:
                if "locked" in str(exc).lower() or "deadlock" in str(exc).lower():
                    continue
                raise StoreError(f"database error: {exc.orig}") from exc
        raise StoreError("gave up after repeated write conflicts")

    def _read(self, body: Callable[[Connection], T]) -> T:
        with self._engine.connect() as conn, conn.begin():
            return body(conn)

    def _fetch_all(self, query: Select[Any]) -> Sequence[Row[Any]]:
        with self._engine.connect() as conn, conn.begin():
            return conn.execute(query).all()

    # --- action log --------------------------------------------------------------------------

    def append_action(self, kind: str, account: str | None, payload: dict[str, Any],
                      idempotency_key: str | None) -> ActionRecord:
        """Commit one accepted action and return it with its ``seq``.

        The same ``(account, idempotency_key)`` again returns the original record with
        ``duplicate=True`` if kind and payload are equal, else raises :class:`IdempotencyConflict`.
        """
        if not kind or len(kind) > 64:
            raise InvalidPayload("kind must be 1..64 characters", field="kind")
        if idempotency_key is not None and not 0 < len(idempotency_key) <= 128:
            raise InvalidPayload("idempotency key must be 1..128 characters",
                                 field="idempotency_key")
        body = _check_json_payload(payload, "payload")
        scope = account or ""
        now = self._clock()

        def run(conn: Connection) -> ActionRecord:
            if idempotency_key is not None:
                row = conn.execute(select(actions).where(
                    actions.c.scope == scope, actions.c.idempotency_key == idempotency_key)).first()
                if row is not None:
                    if row.kind != kind or row.payload != body:
                        raise IdempotencyConflict(
                            f"idempotency key {idempotency_key!r} was used with another payload",
                            field="idempotency_key", account=account, seq=int(row.seq))
                    return _action(row, duplicate=True)
            seq = int(conn.execute(select(func.coalesce(func.max(actions.c.seq), 0))).scalar_one()) + 1
            conn.execute(actions.insert().values(seq=seq, kind=kind, account=account, scope=scope,
                                                 idempotency_key=idempotency_key, payload=body,
                                                 created_at=now))
            return ActionRecord(seq, kind, account, json.loads(body), Timestamp(now), False)

        return self._write(run)

    def append_group(self, group: Sequence[tuple[str, str | None, dict[str, Any], str | None]],
                     published: Sequence[tuple[str, dict[str, Any]]] = ()
                     ) -> tuple[list[ActionRecord], list[int]]:
        """Commit ``(kind, account, payload, idempotency_key)`` actions, in order, then ``(channel, payload)``
        events in ONE transaction (one fsync for the whole group: group commit).

        Returns the action records (contiguous ``seq``) and each event's number in its channel.
        Repeated idempotency keys are the caller's to answer (the coordinator checks them in
        memory before applying); one already stored makes the whole group fail with
        :class:`StoreError`. A malformed entry raises :class:`InvalidPayload`; either way nothing
        is written."""
        bodies = []
        for kind, account, payload, key in group:
            if not kind or len(kind) > 64:
                raise InvalidPayload("kind must be 1..64 characters", field="kind")
            if key is not None and not 0 < len(key) <= 128:
                raise InvalidPayload("idempotency key must be 1..128 characters",
                                     field="idempotency_key")
            bodies.append((kind, account, key, _check_json_payload(payload, "payload")))
        posts = []
        for channel, payload in published:
            if not channel or len(channel) > 128:
                raise InvalidPayload("channel must be 1..128 characters", field="channel")
            posts.append((channel, _check_json_payload(payload, "payload")))
        now = self._clock()

        def run(conn: Connection) -> tuple[list[ActionRecord], list[int]]:
            first = int(conn.execute(select(func.coalesce(func.max(actions.c.seq), 0))).scalar_one()) + 1
            if bodies:
                conn.execute(actions.insert(), [
                    {"seq": first + i, "kind": kind, "account": account, "scope": account or "",
                     "idempotency_key": key, "payload": body, "created_at": now}
                    for i, (kind, account, key, body) in enumerate(bodies)])
            last: dict[str, int] = {}
            numbers = []
            for channel, _ in posts:
                if channel not in last:
                    last[channel] = int(conn.execute(select(func.coalesce(func.max(events.c.seq), 0))
                                                     .where(events.c.channel == channel)).scalar_one())
                last[channel] += 1
                numbers.append(last[channel])
            if posts:
                conn.execute(events.insert(), [
                    {"channel": channel, "seq": seq, "payload": body, "created_at": now}
                    for (channel, body), seq in zip(posts, numbers, strict=True)])
            return ([ActionRecord(first + i, kind, account, payload, Timestamp(now))
                     for i, (kind, account, payload, _) in enumerate(group)], numbers)

        return self._write(run)

    def iter_actions(self, after: int = 0) -> Iterator[ActionRecord]:
        """Actions with ``seq > after`` in order, read page by page (no transaction held open)."""
        cursor = after
        while True:
            query = select(actions).where(actions.c.seq > cursor).order_by(actions.c.seq).limit(_PAGE)
            page = self._fetch_all(query)
            for row in page:
                yield _action(row)
            if len(page) < _PAGE:
                return
            cursor = int(page[-1].seq)

    def get_last_action_seq(self) -> int:
        """The last ``seq`` of the log (0 when empty)."""
        return int(self._read(lambda conn: conn.execute(
            select(func.coalesce(func.max(actions.c.seq), 0))).scalar_one()))

    # --- events ------------------------------------------------------------------------------

    def append_event(self, channel: str, payload: dict[str, Any]) -> int:
        """Commit one event to ``channel`` and return its number (1, 2, … per channel)."""
        if not channel or len(channel) > 128:
            raise InvalidPayload("channel must be 1..128 characters", field="channel")
        body = _check_json_payload(payload, "payload")
        now = self._clock()

        def run(conn: Connection) -> int:
            seq = int(conn.execute(select(func.coalesce(func.max(events.c.seq), 0))
                                   .where(events.c.channel == channel)).scalar_one()) + 1
            conn.execute(events.insert().values(channel=channel, seq=seq, payload=body,
                                                created_at=now))
            return seq

        return self._write(run)

    def iter_events(self, channel: str, after: int = 0, limit: int = 1000) -> list[EventRecord]:
        """Up to ``limit`` events of ``channel`` with ``seq > after``, in order (resume point)."""
        if not 0 < limit <= 10_000:
            raise InvalidPayload("limit must be 1..10000", field="limit")
        rows = self._read(lambda conn: conn.execute(
            select(events).where(events.c.channel == channel, events.c.seq > after)
            .order_by(events.c.seq).limit(limit)).all())
        return [EventRecord(r.channel, int(r.seq), json.loads(r.payload), Timestamp(int(r.created_at)))
                for r in rows]

    # --- sessions ----------------------------------------------------------------------------

    def create_session(self, account: str, token_hash: bytes, expires_at: int) -> None:
        """Store a session; the same token hash twice is a :class:`StoreError` (never reused)."""
        if len(token_hash) != 32:
            raise InvalidPayload("token hash must be 32 bytes", field="token_hash")
        now = self._clock()

        def run(conn: Connection) -> None:
            if conn.execute(select(sessions.c.account)
                            .where(sessions.c.token_hash == token_hash)).first() is not None:
                raise StoreError("session token already exists", field="token_hash")
            conn.execute(sessions.insert().values(token_hash=token_hash, account=account,
                                                  expires_at=expires_at, created_at=now))

        self._write(run)

    def get_session(self, token_hash: bytes) -> SessionRecord | None:
        """The session for ``token_hash`` or ``None`` (expiry is the caller's check)."""
        row = self._read(lambda conn: conn.execute(
            select(sessions).where(sessions.c.token_hash == token_hash)).first())
        if row is None:
            return None
        return SessionRecord(row.account, bytes(row.token_hash), Timestamp(int(row.expires_at)),
                             Timestamp(int(row.created_at)))

    # --- batch outbox ------------------------------------------------------------------------

    def put_batch(self, number: int, header: bytes, ops_data: bytes, state_root: bytes,
                  *, item_keys: Sequence[bytes] = (),
                  rejected: Mapping[bytes, str] | None = None) -> BatchRecord:
        """Store batch ``number`` as ``built`` (identical bytes again: the stored record).

        Different bytes under a stored number raise :class:`BatchConflict`; a number that does not
        follow the last stored one raises :class:`BatchOutOfOrder`. ``item_keys`` (and the
        ``rejected`` keys, with their reasons) are marked as taken by this batch in the same
        transaction, so a crash leaves either both or neither.
        """
        if number < 0:
            raise BatchOutOfOrder("batch number must be non-negative", field="number")
        if len(state_root) != 32:
            raise InvalidPayload("state root must be 32 bytes", field="state_root")
        now = self._clock()
        reasons = dict(rejected or {})

        def run(conn: Connection) -> BatchRecord:
            row = conn.execute(select(batches).where(batches.c.number == number)).first()
            if row is not None:
                if (bytes(row.header), bytes(row.ops_data), bytes(row.state_root)) != (
                        header, ops_data, state_root):
                    raise BatchConflict(f"batch {number} is stored with other bytes",
                                        field="number", number=number)
                return _batch(row)
            last = conn.execute(select(func.max(batches.c.number))).scalar_one()
            if last is not None and number != int(last) + 1:
                raise BatchOutOfOrder(f"batch {number} does not follow batch {last}",
                                      field="number", number=number, last=int(last))
            conn.execute(batches.insert().values(number=number, header=header, ops_data=ops_data,
                                                 state_root=state_root, status="built",
                                                 tx_hash=None, created_at=now, updated_at=now))
            for key in (*item_keys, *reasons):
                done = conn.execute(update(batch_queue).where(
                    batch_queue.c.item_key == key, batch_queue.c.batch_number.is_(None),
                    batch_queue.c.rejected.is_(None)).values(batch_number=number, rejected=reasons.get(key)))
                if done.rowcount != 1:
                    raise BatchConflict(f"item 0x{key.hex()} is not pending", field="item_keys",
                                        number=number)
            return _batch(conn.execute(select(batches).where(batches.c.number == number)).one())

        return self._write(run)

    def set_batch_status(self, number: int, status: str, tx_hash: bytes | None = None) -> BatchRecord:
        """Move batch ``number`` to ``status`` (see :data:`BATCH_TRANSITIONS`); ``tx_hash`` is kept
        when not given. Raises :class:`UnknownBatch` or :class:`IllegalTransition`."""
        if status not in BATCH_STATUSES:
            raise IllegalTransition(f"unknown status {status!r}", field="status")
        if tx_hash is not None and len(tx_hash) != 32:
            raise InvalidPayload("tx hash must be 32 bytes", field="tx_hash")
        now = self._clock()

        def run(conn: Connection) -> BatchRecord:
            row = conn.execute(select(batches).where(batches.c.number == number)).first()
            if row is None:
                raise UnknownBatch(f"no batch {number}", field="number", number=number)
            if not is_legal_transition(row.status, status):
                raise IllegalTransition(f"batch {number}: {row.status} → {status} is not allowed",
                                        field="status", number=number, current=row.status)
            if row.status == status and status in _REPEATABLE:
                return _batch(row)
            values: dict[str, Any] = {"status": status, "updated_at": now}
            if tx_hash is not None:
                values["tx_hash"] = tx_hash
            conn.execute(update(batches).where(batches.c.number == number).values(**values))
            return _batch(conn.execute(select(batches).where(batches.c.number == number)).one())

        return self._write(run)

    def drop_batch(self, number: int) -> None:
        """Forget the last stored batch, ``built`` or ``posted`` but refused by the chain (it named a
        parameter version that no longer applies to its number), and put the items it took or left
        out back in the queue, in one transaction. :class:`UnknownBatch` if it is not stored,
        :class:`IllegalTransition` if it is not the last one or already on chain."""

        def run(conn: Connection) -> None:
            row = conn.execute(select(batches).where(batches.c.number == number)).first()
            if row is None:
                raise UnknownBatch(f"no batch {number}", field="number", number=number)
            last = conn.execute(select(func.max(batches.c.number))).scalar_one()
            if int(last) != number or row.status not in ("built", "posted"):
                raise IllegalTransition(f"batch {number} ({row.status}) is not the last unposted batch",
                                        field="number", number=number, current=row.status)
            conn.execute(update(batch_queue).where(batch_queue.c.batch_number == number)
                         .values(batch_number=None, rejected=None))
            conn.execute(batches.delete().where(batches.c.number == number))

        self._write(run)

    def get_batch(self, number: int) -> BatchRecord | None:
        """Batch ``number`` or ``None``."""
        row = self._read(lambda conn: conn.execute(
            select(batches).where(batches.c.number == number)).first())
        return None if row is None else _batch(row)

    def list_batches(self, status: str | None = None) -> list[BatchRecord]:
        """All batches (or those in ``status``) by number."""
        query = select(batches).order_by(batches.c.number)
        if status is not None:
            if status not in BATCH_STATUSES:
                raise IllegalTransition(f"unknown status {status!r}", field="status")
            query = query.where(batches.c.status == status)
        return [_batch(r) for r in self._read(lambda conn: conn.execute(query).all())]

    # --- batch queue -------------------------------------------------------------------------

    def enqueue_items(self, items: Sequence[tuple[bytes, dict[str, Any]]]) -> int:
        """Queue ``(item_key, encoded item)`` pairs for the next batch in one transaction; keys
        already queued (pending or batched) are skipped. Returns how many were new."""
        bodies = [(key, _check_json_payload(item, "item")) for key, item in items]
        if any(len(key) != 32 for key, _ in bodies):
            raise InvalidPayload("item key must be 32 bytes", field="item_key")
        now = self._clock()

        def run(conn: Connection) -> int:
            added = 0
            for key, body in bodies:
                if conn.execute(select(batch_queue.c.id)
                                .where(batch_queue.c.item_key == key)).first() is None:
                    conn.execute(batch_queue.insert().values(item_key=key, item=body,
                                                             created_at=now))
                    added += 1
            return added

        return self._write(run)

    def reject_items(self, item_keys: Sequence[bytes], reason: str) -> None:
        """Take pending items out of the queue without a batch (every one of them was refused);
        :class:`BatchConflict` if one is not pending, and then none is changed."""

        def run(conn: Connection) -> None:
            for key in item_keys:
                done = conn.execute(update(batch_queue).where(
                    batch_queue.c.item_key == key, batch_queue.c.batch_number.is_(None),
                    batch_queue.c.rejected.is_(None)).values(rejected=reason))
                if done.rowcount != 1:
                    raise BatchConflict(f"item 0x{key.hex()} is not pending", field="item_keys")

        self._write(run)

    def list_pending_items(self) -> list[QueuedItem]:
        """Items neither in a batch nor rejected, in queue order."""
        return [_queued(r) for r in self._read(lambda conn: conn.execute(
            select(batch_queue).where(batch_queue.c.batch_number.is_(None),
                                      batch_queue.c.rejected.is_(None))
            .order_by(batch_queue.c.id)).all())]

    def list_rejected_items(self) -> list[QueuedItem]:
        """Items the batch builder refused (in a batch or without one), in queue order."""
        return [_queued(r) for r in self._read(lambda conn: conn.execute(
            select(batch_queue).where(batch_queue.c.rejected.is_not(None))
            .order_by(batch_queue.c.id)).all())]

    def list_batch_items(self, number: int) -> list[QueuedItem]:
        """Items batch ``number`` took or left out, in queue order."""
        return [_queued(r) for r in self._read(lambda conn: conn.execute(
            select(batch_queue).where(batch_queue.c.batch_number == number)
            .order_by(batch_queue.c.id)).all())]

    def close(self) -> None:
        """Release every pooled connection."""
        self._engine.dispose()


def open_store(url: str, *, pragmas: Mapping[str, str] | None = None,
               clock: Callable[[], int] | None = None) -> Store:
    """Open (and migrate) the database at ``url`` and check it is durable.

    ``sqlite:///path`` (default backend) or ``postgresql+psycopg://user@host:port/db``. Runs
    ``alembic upgrade head``, then :func:`~clearhouse.store.db.check_durability`; raises
    :class:`~clearhouse.errors.StoreConfigError` (and disposes the engine) when either fails.
    """
    engine = create_store_engine(url, pragmas=pragmas)
    try:
        check_durability(engine)
        run_migrations(engine)
    except BaseException:
        engine.dispose()
        raise
    return Store(engine, clock)
