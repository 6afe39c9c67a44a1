"""The batcher against the real Settlement contracts (in-process EVM) and a real SQLite store.

Items round-trip through their encoding; batches are stored, posted, included and finalised with
the header the contract keeps; a restarted batcher rebuilds the same state from the outbox and
re-posts a stored batch with the same bytes; a tampered outbox is refused; refused items leave the
queue with the STF's reason; account proofs verify against the contract's finalised root.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import update

from clearhouse.chain import InProcessChain
from clearhouse.errors import BatchConflict, InvalidPayload
from clearhouse.market.trades import Trade
from clearhouse.merkle.sparse import is_included
from clearhouse.messages.keccak import keccak256
from clearhouse.node.batcher import (
    Batcher,
    BatcherParams,
    compute_item_key,
    compute_stamp_limit,
    decode_item,
    encode_item,
    get_header_number,
)
from clearhouse.settlement import FeeSweep, QueuedDeposit, build_batch, compute_genesis_state
from clearhouse.settlement.batch import BatchItem
from clearhouse.settlement.state import (
    ACCOUNT_TREE_DEPTH,
    STATE_ROOT_PREFIX,
    compute_account_hash,
    get_state_root,
)
from clearhouse.sim.batcher_scenario import ACCOUNTS, DEPOSIT_USDC, make_actions, make_series
from clearhouse.sim.settlement_chain import WINDOW, SettlementSystem, deploy
from clearhouse.sim.settlement_world import NOW, make_ctx
from clearhouse.store import Store
from clearhouse.store.models import batches
from clearhouse.types import AccountId, Amount, Timestamp


@pytest.fixture
def system() -> SettlementSystem:
    s = deploy(InProcessChain())
    for i in range(ACCOUNTS):
        s.deposit(i, DEPOSIT_USDC)
    s.sync_time(NOW + 10)
    return s



def _batcher(store: Store, s: SettlementSystem, max_items: int = 256) -> Batcher:
    return Batcher(store, s.chain, s, BatcherParams(make_ctx, make_series(), max_items=max_items))


def _items(s: SettlementSystem) -> list[BatchItem]:
    return [item for action in make_actions(s.deposits) for item in action]


def _tick(b: Batcher, s: SettlementSystem) -> None:
    b.on_tick(s.chain.now())


def test_every_item_type_round_trips_through_its_encoding(system: SettlementSystem) -> None:
    items = [*_items(system), FeeSweep(Amount(5))]
    assert {type(i).__name__ for i in items} >= {"QueuedDeposit", "Trade", "CancelRequest",
                                                  "WithdrawalRequest", "FeeSweep"}
    assert any(isinstance(i, Trade) and i.legs == 2 for i in items)  # an RFQ leg (quote + accept)
    for item in items:
        assert decode_item(encode_item(item)) == item
        assert compute_item_key(encode_item(item)) == compute_item_key(encode_item(decode_item(encode_item(item))))
    assert len({compute_item_key(encode_item(i)) for i in items}) == len(items)
    with pytest.raises(InvalidPayload):
        decode_item({"$": "Exploit", "x": 1})
    with pytest.raises(InvalidPayload):
        encode_item("not an item")  # type: ignore[arg-type]


def test_batches_go_built_posted_included_final_with_the_contracts_header(
        system: SettlementSystem, store: Store) -> None:
    s, b = system, _batcher(store, system, max_items=4)
    seen: list[tuple[str, int]] = []
    b = Batcher(store, s.chain, s, b.params, observer=lambda what, r: seen.append((what, r.number)))
    assert b.add_items(_items(s)) == 10 and b.add_items(_items(s)) == 0
    for _ in range(4):
        _tick(b, s)
    stored = store.list_batches()
    assert [r.number for r in stored] == [1, 2, 3]  # 4 deposits, 2 trades + 2 RFQ legs, cancel + withdrawal
    assert all(r.status == "included" for r in stored)
    assert int(s.settlement.call("last_batch")) == 3
    for r in stored:
        assert bytes(s.settlement.call("batch_header_hash", r.number)) == keccak256(r.header)
        assert get_header_number(r.header) == r.number and r.tx_hash is not None
    assert not store.list_pending_items()
    s.chain.time_travel(WINDOW)
    _tick(b, s)
    assert [r.status for r in store.list_batches()] == ["final"] * 3
    assert int(s.settlement.call("last_finalized")) == 3
    assert [w for w, n in seen if n == 2] == ["stored", "posted", "included", "final"]
    # batching boundaries change nothing: one batch over the same items gives the same accounts
    whole = build_batch(compute_genesis_state(), _items(s), make_ctx(NOW + 10), make_series(), k=4)
    assert dict(b.state.accounts) == dict(whole.result.state.accounts)


def test_account_proofs_verify_against_the_finalised_root_on_chain(
        system: SettlementSystem, store: Store) -> None:
    s, b = system, _batcher(store, system)
    b.add_items(_items(s))
    _tick(b, s)
    assert b.get_account_proof(AccountId(1)).number == 0  # nothing final yet: genesis
    s.chain.time_travel(WINDOW)
    _tick(b, s)
    for account_id in range(ACCOUNTS + 1):  # id 4 never deposited: an exclusion proof
        p = b.get_account_proof(AccountId(account_id))
        assert p.number == 1
        assert bytes(s.settlement.call("batch_root", 1)) == p.state_root
        assert keccak256(STATE_ROOT_PREFIX + p.preimage) == p.state_root
        assert is_included(p.preimage[:32], account_id, compute_account_hash(p.leaf), p.proof,
                           ACCOUNT_TREE_DEPTH)
        assert (p.leaf is None) == (account_id == ACCOUNTS)
    forged = b.get_account_proof(AccountId(2))
    assert forged.leaf is not None
    assert not is_included(forged.preimage[:32], 2, compute_account_hash(
        replace(forged.leaf, balance=Amount(forged.leaf.balance + 1))), forged.proof, ACCOUNT_TREE_DEPTH)


def test_restart_reposts_a_built_batch_with_the_same_bytes(system: SettlementSystem, store: Store) -> None:
    s = system
    b = _batcher(store, s, max_items=4)
    b.add_items(_items(s))
    b.recover()
    record = b._build(Timestamp(s.chain.now()))  # stored as built, the process dies before posting
    assert record is not None and record.status == "built"
    assert int(s.settlement.call("last_batch")) == 0
    again = _batcher(store, s, max_items=4)
    again.recover()  # rebuilds batch 1 from its items, finds it built and not on chain: posts it
    posted = store.get_batch(1)
    assert posted is not None and posted.status == "included"
    assert (posted.header, posted.ops_data) == (record.header, record.ops_data)
    assert bytes(s.settlement.call("batch_header_hash", 1)) == keccak256(record.header)
    assert get_state_root(again.state) == record.state_root == get_state_root(b.state)


def test_a_tampered_outbox_is_refused_on_restart(system: SettlementSystem, store: Store) -> None:
    s = system
    b = _batcher(store, s, max_items=4)
    b.add_items(_items(s))
    _tick(b, s)
    with store.engine.begin() as conn:
        row = conn.execute(batches.select().where(batches.c.number == 1)).one()
        conn.execute(update(batches).where(batches.c.number == 1)
                     .values(ops_data=bytes(row.ops_data[:-1]) + bytes([row.ops_data[-1] ^ 1])))
    with pytest.raises(BatchConflict):
        _batcher(store, s, max_items=4).recover()


def test_refused_items_leave_the_queue_with_the_stf_reason(system: SettlementSystem, store: Store) -> None:
    s = system
    b = _batcher(store, s)
    deposits = _items(s)[:ACCOUNTS]
    b.add_items([FeeSweep(Amount(5))])  # alone and refused: no batch, out of the queue
    _tick(b, s)
    assert store.list_batches() == [] and store.list_pending_items() == []
    assert [q.rejected for q in store.list_rejected_items()] == ["insufficient_fee_pool"]  # the STF's reason
    assert b.refused_total == 1 and b.get_health()["recentRefusals"][0]["batch"] is None
    b.add_items([*deposits, FeeSweep(Amount(7))])
    _tick(b, s)
    [batch] = store.list_batches()
    kept = store.list_batch_items(batch.number)
    assert [q.rejected for q in kept] == [None] * ACCOUNTS + ["insufficient_fee_pool"]
    assert b.state.counters.deposit_count == ACCOUNTS
    health = b.get_health()
    assert (health["status"], health["refusedItems"]) == ("degraded", 2)
    assert [(r["kind"], r["batch"]) for r in health["recentRefusals"]] == [("FeeSweep", None), ("FeeSweep", 1)]
    restarted = _batcher(store, s)
    restarted.recover()  # the alarm is read back from the store
    assert restarted.get_health() == health


def test_the_stamp_limit_is_the_first_signed_items_clock_plus_the_lag(system: SettlementSystem) -> None:
    items = _items(system)
    deposits, timed = items[:ACCOUNTS], [i for i in items if not isinstance(i, QueuedDeposit)]
    trade = next(i for i in timed if isinstance(i, Trade))
    first = trade.time
    assert compute_stamp_limit(Timestamp(0), deposits, 3600) is None  # nothing signed: any stamp
    assert compute_stamp_limit(Timestamp(0), [*deposits, *timed], 3600) == first + 3600
    late = replace(trade, time=Timestamp(first + 10_000))  # the clock never goes back: the first decides
    assert compute_stamp_limit(Timestamp(0), [*timed, late], 3600) == first + 3600
    assert compute_stamp_limit(Timestamp(first + 50), timed, 3600) == first + 50 + 3600  # clock ahead


def test_items_timed_after_the_batch_wait_for_a_later_batch(system: SettlementSystem, store: Store) -> None:
    s = system
    items = _items(s)
    late = next(i for i in items if isinstance(i, Trade))
    b = _batcher(store, s)
    b.add_items([*items[:ACCOUNTS], replace(late, time=Timestamp(s.chain.now() + 1000))])
    _tick(b, s)
    assert [len(store.list_batch_items(r.number)) for r in store.list_batches()] == [ACCOUNTS]
    assert len(store.list_pending_items()) == 1
    s.chain.time_travel(1000)
    _tick(b, s)
    assert len(store.list_batches()) == 2 and not store.list_pending_items()
