"""The node's Store on a real database, every test on SQLite and on PostgreSQL.

Durability settings read back (and weaker ones refused), migrations from empty and again, the
action log's idempotency and its sequence under two concurrent writers, per-channel events and
resume, sessions, the batch outbox state machine and queue, and that a refused call writes nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from clearhouse.errors import (
    BatchConflict,
    BatchOutOfOrder,
    IdempotencyConflict,
    IllegalTransition,
    InvalidPayload,
    StoreConfigError,
    StoreError,
    UnknownBatch,
)
from clearhouse.store import BATCH_STATUSES, Store, is_legal_transition, open_store
from clearhouse.store.models import metadata

ROOT_A = bytes(range(32))
ROOT_B = bytes(range(1, 33))
TX = bytes([7]) * 32


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()


def _snapshot(store: Store) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table: what 'nothing written' compares."""
    with store.engine.connect() as conn:
        return {t: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY 1")).all()]
                for t in ("actions", "events", "sessions", "batches", "batch_queue")}


# --- opening: migrations and durability ----------------------------------------------------------


def test_migrates_from_empty_to_the_models_and_reruns_idempotently(store_url: str) -> None:
    first = open_store(store_url)
    first.append_action("order", "0xa", {"n": 1}, None)
    first.close()
    again = open_store(store_url)  # upgrade head on a migrated database: nothing to do
    with again.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0001"
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    assert set(inspect(again.engine).get_table_names()) == {
        "alembic_version", "actions", "events", "sessions", "batches", "batch_queue"}
    assert [a.payload for a in again.iter_actions()] == [{"n": 1}]
    again.close()


def test_durability_settings_are_read_back(store: Store) -> None:
    with store.engine.connect() as conn:
        if store.dialect == "sqlite":
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        else:
            assert conn.execute(text("SHOW synchronous_commit")).scalar() == "on"


def test_weaker_durability_is_refused_before_anything_is_written(store_url: str) -> None:
    if store_url.startswith("sqlite"):
        with pytest.raises(StoreConfigError) as caught:
            open_store(store_url, pragmas={"synchronous": "NORMAL"})
        assert caught.value.field == "synchronous"
        with pytest.raises(StoreConfigError) as caught:
            open_store(store_url, pragmas={"journal_mode": "DELETE"})
        assert caught.value.field == "journal_mode"
        bad_url = store_url
    else:
        bad_url = make_url(store_url).update_query_dict(
            {"options": "-c synchronous_commit=off"}).render_as_string(hide_password=False)
        with pytest.raises(StoreConfigError) as caught:
            open_store(bad_url)
        assert caught.value.field == "synchronous_commit"
    raw = create_engine(store_url)  # the refused opens created no table, ran no migration
    assert inspect(raw).get_table_names() == []
    raw.dispose()


def test_unsupported_urls_are_refused() -> None:
    with pytest.raises(StoreConfigError):
        open_store("mysql://localhost/x")
    with pytest.raises(StoreConfigError):
        open_store("not a url")


def test_in_memory_sqlite_is_refused_as_not_durable() -> None:
    with pytest.raises(StoreConfigError):
        open_store("sqlite://")


# --- the action log ----------------------------------------------------------------------------


def test_actions_get_contiguous_seq_and_survive_reopening(store_url: str, tmp_path: Path) -> None:
    store = open_store(store_url)
    records = [store.append_action("order", "0xa", {"i": i, "price": str(10**30)}, None)
               for i in range(5)]
    store.append_action("tick", None, {"now": 1_700_000_000}, None)
    store.close()
    reopened = open_store(store_url)
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    log = list(reopened.iter_actions())
    assert [(a.seq, a.kind, a.account) for a in log][-1] == (6, "tick", None)
    assert log[0].payload == {"i": 0, "price": str(10**30)}
    assert [a.seq for a in reopened.iter_actions(after=4)] == [5, 6]
    assert reopened.get_last_action_seq() == 6
    reopened.close()


def test_same_key_and_payload_returns_the_original(store: Store) -> None:
    first = store.append_action("order", "0xa", {"b": 2, "a": 1}, "key-1")
    again = store.append_action("order", "0xa", {"a": 1, "b": 2}, "key-1")  # key order irrelevant
    assert not first.duplicate and again.duplicate
    assert (again.seq, again.payload, again.created_at) == (first.seq, first.payload, first.created_at)
    assert len(list(store.iter_actions())) == 1


def test_same_key_other_payload_or_kind_conflicts_and_writes_nothing(store: Store) -> None:
    store.append_action("order", "0xa", {"a": 1}, "key-1")
    before = _snapshot(store)
    with pytest.raises(IdempotencyConflict) as caught:
        store.append_action("order", "0xa", {"a": 2}, "key-1")
    assert caught.value.field == "idempotency_key" and caught.value.context["seq"] == 1
    with pytest.raises(IdempotencyConflict):
        store.append_action("cancel", "0xa", {"a": 1}, "key-1")
    assert _snapshot(store) == before


def test_keys_are_scoped_per_account_and_none_never_dedups(store: Store) -> None:
    a = store.append_action("order", "0xa", {"a": 1}, "k")
    b = store.append_action("order", "0xb", {"a": 1}, "k")
    c = store.append_action("order", "0xa", {"a": 1}, None)
    d = store.append_action("order", "0xa", {"a": 1}, None)
    assert [r.seq for r in (a, b, c, d)] == [1, 2, 3, 4]
    assert not any(r.duplicate for r in (a, b, c, d))


@pytest.mark.parametrize("payload", [{"x": float("nan")}, {"x": b"raw"}, {1: "int key"}, ["list"]])
def test_non_json_payloads_are_refused_and_write_nothing(store: Store, payload: object) -> None:
    before = _snapshot(store)
    with pytest.raises(InvalidPayload) as caught:
        store.append_action("order", "0xa", payload, "k")  # type: ignore[arg-type]
    assert caught.value.field == "payload"
    with pytest.raises(InvalidPayload):
        store.append_event("book", payload)  # type: ignore[arg-type]
    assert _snapshot(store) == before


def test_two_concurrent_writers_never_lose_or_duplicate_a_seq(store_url: str) -> None:
    """Two Store objects (two engines, as two processes would have) append at once, half of the
    time with the same idempotency keys: every action lands exactly once, seq is 1..N."""
    writers = [open_store(store_url), open_store(store_url)]
    per_writer = 40
    results: list[list[tuple[int, bool, str]]] = [[], []]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run(w: int) -> None:
        try:
            start.wait()
            for i in range(per_writer):
                shared = i % 2 == 0  # even i: both writers submit the same keyed action
                key = f"shared-{i}" if shared else f"own-{w}-{i}"
                rec = writers[w].append_action("order", "0xa", {"i": i, "shared": shared,
                                                                 "w": None if shared else w}, key)
                results[w].append((rec.seq, rec.duplicate, key))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    log = list(writers[0].iter_actions())
    expected = per_writer // 2 + 2 * (per_writer // 2)
    assert [a.seq for a in log] == list(range(1, expected + 1))
    by_key = {key: seq for res in results for seq, dup, key in res if not dup}
    assert len(by_key) == expected
    for res in results:
        for seq, _dup, key in res:
            assert by_key[key] == seq  # a duplicate answer names the original's seq
    dups = sum(dup for res in results for _s, dup, _k in res)
    assert dups == per_writer // 2  # each shared key: one writer inserted, the other got a duplicate
    for w in writers:
        w.close()


# --- events ------------------------------------------------------------------------------------


def test_events_are_numbered_per_channel_and_resume(store: Store) -> None:
    seqs = [store.append_event("book:ETH", {"i": i}) for i in range(5)]
    other = [store.append_event("account:0xa", {"i": i}) for i in range(2)]
    assert seqs == [1, 2, 3, 4, 5] and other == [1, 2]
    assert [e.payload["i"] for e in store.iter_events("book:ETH", after=2)] == [2, 3, 4]
    assert [e.seq for e in store.iter_events("book:ETH", after=1, limit=2)] == [2, 3]
    assert store.iter_events("book:ETH", after=5) == []
    assert store.iter_events("nobody") == []
    with pytest.raises(InvalidPayload):
        store.iter_events("book:ETH", limit=0)


# --- sessions ----------------------------------------------------------------------------------


def test_sessions_round_trip_and_never_reuse_a_token(store: Store) -> None:
    token = bytes([9]) * 32
    store.create_session("0xa", token, 1_900_000_000)
    got = store.get_session(token)
    assert got is not None and (got.account, got.expires_at) == ("0xa", 1_900_000_000)
    assert store.get_session(bytes(32)) is None
    before = _snapshot(store)
    with pytest.raises(StoreError):
        store.create_session("0xb", token, 1)
    with pytest.raises(InvalidPayload):
        store.create_session("0xb", b"short", 1)
    assert _snapshot(store) == before


# --- batch outbox ------------------------------------------------------------------------------


def test_outbox_walks_built_posted_included_final(store: Store) -> None:
    built = store.put_batch(1, b"header-1", b"ops-1", ROOT_A)
    assert (built.status, built.tx_hash) == ("built", None)
    assert store.put_batch(1, b"header-1", b"ops-1", ROOT_A) == built  # identical: idempotent
    assert store.set_batch_status(1, "posted", TX).tx_hash == TX
    assert store.set_batch_status(1, "posted", bytes(32)).tx_hash == bytes(32)  # re-sent
    assert store.set_batch_status(1, "included").tx_hash == bytes(32)
    assert store.set_batch_status(1, "included").status == "included"  # repeat: no-op
    assert store.set_batch_status(1, "final").status == "final"
    store.put_batch(2, b"header-2", b"ops-2", ROOT_B)
    assert [b.number for b in store.list_batches()] == [1, 2]
    assert [b.number for b in store.list_batches("built")] == [2]
    assert store.get_batch(3) is None


def test_another_batch_under_a_stored_number_is_a_conflict(store: Store) -> None:
    store.put_batch(1, b"header-1", b"ops-1", ROOT_A)
    before = _snapshot(store)
    for args in ((b"header-X", b"ops-1", ROOT_A), (b"header-1", b"ops-X", ROOT_A),
                 (b"header-1", b"ops-1", ROOT_B)):
        with pytest.raises(BatchConflict):
            store.put_batch(1, *args)
    with pytest.raises(BatchOutOfOrder):
        store.put_batch(3, b"h", b"o", ROOT_A)  # 2 is missing
    assert _snapshot(store) == before


ALL_PAIRS = [(a, b) for a in BATCH_STATUSES for b in BATCH_STATUSES]


@pytest.mark.parametrize(("current", "new"), [p for p in ALL_PAIRS if not is_legal_transition(*p)])
def test_illegal_transitions_raise_and_change_nothing(store: Store, current: str, new: str) -> None:
    path = {"built": [], "posted": ["posted"], "included": ["posted", "included"],
            "final": ["posted", "included", "final"],
            "challenged": ["posted", "included", "challenged"]}[current]
    store.put_batch(1, b"h", b"o", ROOT_A)
    for step in path:
        store.set_batch_status(1, step, TX if step == "posted" else None)
    before = _snapshot(store)
    with pytest.raises(IllegalTransition) as caught:
        store.set_batch_status(1, new)
    assert caught.value.context["current"] == current
    assert _snapshot(store) == before


def test_legal_transitions_are_exactly_the_state_machine() -> None:
    legal = {p for p in ALL_PAIRS if is_legal_transition(*p)}
    assert legal == {("built", "posted"), ("posted", "posted"), ("posted", "included"),
                     ("included", "final"), ("included", "challenged"), ("included", "included"),
                     ("final", "final"), ("challenged", "challenged")}


def test_unknown_batch_or_status_is_refused(store: Store) -> None:
    with pytest.raises(UnknownBatch):
        store.set_batch_status(5, "posted", TX)
    store.put_batch(1, b"h", b"o", ROOT_A)
    with pytest.raises(IllegalTransition):
        store.set_batch_status(1, "mined")
    with pytest.raises(InvalidPayload):
        store.set_batch_status(1, "posted", b"short")
    assert store.list_batches("built")[0].status == "built"


def test_batch_queue_dedups_and_batches_take_items_atomically(store: Store) -> None:
    k1, k2, k3 = (bytes([i]) * 32 for i in (1, 2, 3))
    assert store.enqueue_items([(k1, {"t": 1}), (k2, {"t": 2})]) == 2
    assert store.enqueue_items([(k2, {"t": 2}), (k3, {"t": 3})]) == 1  # k2 replayed: skipped
    assert [q.item for q in store.list_pending_items()] == [{"t": 1}, {"t": 2}, {"t": 3}]
    store.put_batch(1, b"h", b"o", ROOT_A, item_keys=[k1], rejected={k2: "signer_mismatch"})
    assert [q.item_key for q in store.list_pending_items()] == [k3]
    assert [(q.item_key, q.rejected) for q in store.list_batch_items(1)] == [
        (k1, None), (k2, "signer_mismatch")]
    assert store.enqueue_items([(k1, {"t": 1})]) == 0  # batched items stay taken
    before = _snapshot(store)
    with pytest.raises(BatchConflict):  # k1 is not pending: neither the batch nor k3 is written
        store.put_batch(2, b"h2", b"o2", ROOT_B, item_keys=[k3, k1])
    assert _snapshot(store) == before


def test_rejected_items_leave_the_queue_all_or_nothing(store: Store) -> None:
    k1, k2 = bytes([1]) * 32, bytes([2]) * 32
    store.enqueue_items([(k1, {"t": 1}), (k2, {"t": 2})])
    store.reject_items([k1], "insufficient_fee_pool")
    assert [q.item_key for q in store.list_pending_items()] == [k2]
    before = _snapshot(store)
    with pytest.raises(BatchConflict):  # k1 is no longer pending: k2 is not rejected either
        store.reject_items([k2, k1], "x")
    assert _snapshot(store) == before
    with pytest.raises(BatchConflict):  # a refused item cannot be put in a batch
        store.put_batch(1, b"h", b"o", ROOT_A, item_keys=[k1])
    assert store.list_batches() == []


def test_a_group_is_one_transaction_after_the_log(store: Store) -> None:
    store.append_action("tick", None, {"now": 1}, None)
    store.append_event("trades", {"n": 0})
    records, numbers = store.append_group(
        [("order", "0xa", {"i": 1}, "k1"), ("cancel", "0xb", {"i": 2}, None)],
        [("trades", {"n": 1}), ("book:x", {"n": 2}), ("trades", {"n": 3})])
    assert [(r.seq, r.kind, r.payload) for r in records] == [(2, "order", {"i": 1}), (3, "cancel", {"i": 2})]
    assert numbers == [2, 1, 3]
    assert [r.seq for r in store.iter_actions()] == [1, 2, 3]
    assert [e.payload["n"] for e in store.iter_events("trades")] == [0, 1, 3]
    assert store.append_action("order", "0xa", {"i": 1}, "k1").duplicate  # the key was stored


def test_a_refused_group_writes_nothing(store: Store) -> None:
    store.append_action("order", "0xa", {"i": 0}, "k1")
    with pytest.raises(InvalidPayload):
        store.append_group([("order", "0xa", {"i": 1}, None), ("order", "0xa", {1: 2}, None)])  # type: ignore[dict-item]
    with pytest.raises(InvalidPayload):
        store.append_group([("order", "0xa", {"i": 1}, None)], [("", {"n": 1})])
    with pytest.raises(StoreError):  # a key already stored: the whole group is refused
        store.append_group([("order", "0xb", {"i": 1}, None), ("order", "0xa", {"i": 2}, "k1")])
    assert store.get_last_action_seq() == 1 and store.iter_events("trades") == []
